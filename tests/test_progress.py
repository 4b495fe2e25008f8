"""Progress lines and progress.json: what a researcher reads in a batch job's log."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import torch

from launcher.components.callbacks import progress
from launcher.components.callbacks.last_checkpoint import LastCheckpoint


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trainer(step: int = 0) -> SimpleNamespace:
    optimizers = [SimpleNamespace(param_groups=[{"lr": 0.005}, {"lr": 1.0}])]
    return SimpleNamespace(is_global_zero=True, num_training_batches=100, current_epoch=0,
                           max_epochs=2, global_step=step, optimizers=optimizers)


def test_a_resumed_epoch_reports_its_own_rate_and_time_left(tmp_path, monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    log = progress.ProgressLog(str(tmp_path), interval_s=10)
    log.on_train_epoch_start(trainer(), None)
    for batch in range(60, 80):  # resumed at batch 60: 20 batches in 10 s
        clock.now += 0.5
        with caplog.at_level(logging.INFO, logger="launcher.components.callbacks.progress"):
            log.on_train_batch_end(trainer(batch + 1), None, {"loss": torch.tensor(1.0)},
                                   None, batch)
    line = caplog.records[-1].getMessage()
    assert "batch 80/100" in line and "lr 0.005  2.00 batch/s" in line, line
    assert "epoch ETA 00:00:10" in line, line
    assert json.loads((tmp_path / "progress.json").read_text())["batches_per_s"] == 2.0


def test_the_loss_shown_is_the_mean_since_the_last_line(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    log = progress.ProgressLog(str(tmp_path), interval_s=10, lines=False)
    log.on_train_epoch_start(trainer(), None)
    for batch, loss in enumerate([4.0, 2.0, 1.0, 1.0]):
        clock.now += 10 if batch in (1, 3) else 0  # a line after batches 1 and 3
        log.on_train_batch_end(trainer(batch + 1), None, torch.tensor(loss), None, batch)
        if batch == 1:
            assert json.loads((tmp_path / "progress.json").read_text())["loss"] == 3.0
    assert json.loads((tmp_path / "progress.json").read_text())["loss"] == 1.0
    log.on_train_epoch_end(trainer(4), None)  # no new loss: the last mean stays
    assert json.loads((tmp_path / "progress.json").read_text())["loss"] == 1.0


def test_the_last_checkpoint_callback_calls_each_duty_after_its_own_hook(monkeypatch):
    from pytorch_lightning.callbacks import ModelCheckpoint

    calls = []
    monkeypatch.setattr(ModelCheckpoint, "on_train_start",
                        lambda self, *args: calls.append(("checkpoint", "start")))
    monkeypatch.setattr(ModelCheckpoint, "on_train_batch_end",
                        lambda self, *args: calls.append(("checkpoint", args[-1])))

    class Progress:
        def on_train_batch_end(self, *args):
            calls.append(("progress", args[-1]))

    class Watch:
        def on_train_start(self, *args):
            calls.append(("watch", "start"))

        def on_train_batch_end(self, *args):
            calls.append(("watch", args[-1]))

    hooks = LastCheckpoint((Progress(), Watch()), dirpath="unused", save_last=True, save_top_k=0)
    hooks.on_train_start(None, None)
    hooks.on_train_epoch_start(None, None)
    hooks.on_train_batch_end(None, None, None, None, 7)
    assert calls == [("checkpoint", "start"), ("watch", "start"),
                     ("checkpoint", 7), ("progress", 7), ("watch", 7)]


def test_a_line_every_log_every_n_steps_steps_as_espnet3_logs_them(tmp_path, caplog):
    log = progress.ProgressLog(str(tmp_path), interval_s=3600)
    log.on_train_epoch_start(trainer(), None)
    steps = [1, 2, 2, 3, 4]  # step 2 spans two batches (gradient accumulation)
    with caplog.at_level(logging.INFO, logger="launcher.components.callbacks.progress"):
        for batch, step in enumerate(steps):
            every_two = SimpleNamespace(**{**vars(trainer(step)), "log_every_n_steps": 2})
            log.on_train_batch_end(every_two, None, torch.tensor(float(batch)), None, batch)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split("  ")[2] for line in lines] == ["step 2", "step 4"], lines
    assert "loss 0.5" in lines[0] and "loss 3" in lines[1]  # the mean since the last line
