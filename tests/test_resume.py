"""Exact resume: interrupted runs leave bitwise the same metrics, best checkpoints,
averaged model, evaluation and weights as uninterrupted ones."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import edit_config

from launcher.components.callbacks.checkpoints import resume_checkpoint
from launcher.status_file import read_status

EXACT = ["+model.dropout=0.3", "trainer.max_epochs=3", "++trainer.checkpoint_every_n_steps=1"]
# 64 train samples in batches of 16: steps 4, 8 and 12 end the three epochs.
EPOCH_ENDS = [4, 8, 12]


def final_weights(run_dir: Path) -> str:
    return json.loads((run_dir / "probe.rank0.json").read_text())["weights_sha"]


def only_run_dir(exp: Path) -> Path:
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    return run_dir


def full_recipe(recipe: Path, manual: bool = False, validate_every: int = 1) -> None:
    """Train then evaluate; keep and average the two best epochs; with a validation every
    epoch, halve the learning rate whenever valid/loss stalls (an epoch-end step that
    reads a metric). `manual`: one named optimizer, stepped by the module."""
    def change(config: dict) -> None:
        config.update(stages=["train", "evaluate"],
                      lightning_module={"_target_": "src.probe.InterruptingProbe"},
                      best_model_criterion=[["valid/loss", 2, "min"]])
        config["dataset"]["test"] = {"_target_": "src.model.ToyData", "size": 32, "seed": 2}
        config["trainer"].update(average_checkpoints=True,
                                 check_val_every_n_epoch=validate_every)
        plateau = {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "factor": 0.5,
                   "patience": 0, "threshold": 0.5, "monitor": "valid/loss"}
        scheduler = {"scheduler": plateau} if validate_every == 1 else {}
        if manual:
            config["optims"] = [{"name": "all", "params": ["encoder", "decoder"],
                                 "optim": config.pop("optim"), **scheduler}]
        else:
            config.update(scheduler)

    edit_config(recipe, change)


def metrics_by_key(run_dir: Path) -> dict[tuple[str, str, str], str]:
    """metrics.csv as {(epoch, step, column): value}; a value logged twice fails."""
    values = {}
    with open(run_dir / "metrics.csv", newline="") as file:
        for row in csv.DictReader(file):
            for column, value in row.items():
                if column in ("epoch", "step") or value == "":
                    continue
                key = (row["epoch"], row["step"], column)
                assert key not in values, f"{key} logged twice"
                values[key] = value
    return values


def tensors_equal(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_same_outcome(run_dir: Path, clean_dir: Path) -> None:
    """Everything training leaves behind, not only the final weights (which can be
    equal while an epoch's validation, its best checkpoint and the average are not)."""
    import torch

    assert metrics_by_key(run_dir) == metrics_by_key(clean_dir)
    best = sorted(p.name for p in (clean_dir / "checkpoints").glob("valid_loss.*.ckpt"))
    assert best
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("valid_loss.*.ckpt")) == best
    for name in best:
        ours, theirs = (torch.load(d / "checkpoints" / name, weights_only=False)["state_dict"]
                        for d in (run_dir, clean_dir))
        assert tensors_equal(ours, theirs), name
    averaged = f"valid.loss.ave_{len(best)}best.pth"
    assert tensors_equal(torch.load(run_dir / averaged), torch.load(clean_dir / averaged))
    evaluated = [json.loads((d / "evaluate.json").read_text()) for d in (run_dir, clean_dir)]
    assert evaluated[0]["metrics"] == evaluated[1]["metrics"]
    assert evaluated[0]["weights"].endswith(averaged)
    assert final_weights(run_dir) == final_weights(clean_dir)


def run_clean(launch_cli, recipe: Path) -> Path:
    clean = recipe / "clean"
    assert launch_cli(recipe, f"exp_root={clean}", *EXACT)[0] == 0
    return only_run_dir(clean)


def run_interrupted(launch_cli, recipe: Path, signal_at: str, steps: list[int]) -> Path:
    """Stopped by SIGTERM at each of `steps` (`signal_at`: see InterruptingProbe),
    launched again each time."""
    exp = recipe / "interrupted"
    args = [f"exp_root={exp}", *EXACT, f"+{signal_at}={steps}"]
    ends = [launch_cli(recipe, *args) for _ in range(len(steps) + 1)]
    assert [code for code, _, _ in ends] == [143] * len(steps) + [0], ends[-1][2][-3000:]
    run_dir = only_run_dir(exp)
    assert read_status(run_dir)["state"] == "completed"
    log = (run_dir / "run.log").read_text()
    assert log.count("resuming from") == log.count("stopped at step") == len(steps)
    return run_dir


def test_three_interruptions_mid_epoch_end_bitwise_equal(launch_cli, toy_recipe,
                                                         one_torch_thread):
    full_recipe(toy_recipe)
    clean = run_clean(launch_cli, toy_recipe)
    assert_same_outcome(run_interrupted(launch_cli, toy_recipe, "interrupt_at", [2, 5, 9]),
                        clean)


@pytest.mark.parametrize("validate_every", [1, 2])
def test_stops_on_the_last_batch_of_epochs_resume_as_if_uninterrupted(
        launch_cli, toy_recipe, one_torch_thread, validate_every):
    # Each stop is checkpointed before its epoch's validation (when there is one that
    # epoch) and end; the last one ends the last epoch.
    full_recipe(toy_recipe, validate_every=validate_every)
    clean = run_clean(launch_cli, toy_recipe)
    assert_same_outcome(run_interrupted(launch_cli, toy_recipe, "stop_at", EPOCH_ENDS), clean)


def test_killed_after_a_periodic_checkpoint_on_the_last_batch_resumes_as_if_uninterrupted(
        launch_cli, toy_recipe, one_torch_thread):
    # Under automatic optimization Lightning defers a periodic checkpoint due on an
    # epoch's last batch to the end of the validation; under manual it is taken at once.
    full_recipe(toy_recipe, manual=True)
    clean = run_clean(launch_cli, toy_recipe)

    exp = toy_recipe / "killed"
    args = [f"exp_root={exp}", *EXACT, "+kill_at=[4]"]
    killed = subprocess.run([sys.executable, "-m", "launcher.cli", str(toy_recipe), *args],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = only_run_dir(exp)
    assert resume_checkpoint(run_dir / "checkpoints").name == "periodic-step00000004.ckpt"
    assert launch_cli(toy_recipe, *args)[0] == 0
    assert_same_outcome(run_dir, clean)


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    import os
    import time

    import torch

    directory = tmp_path / "checkpoints"
    directory.mkdir()
    good = directory / "periodic-step00000004.ckpt"
    torch.save({"state_dict": {}, "loops": {}}, good)
    newest = directory / "last.ckpt"
    torch.save({"state_dict": {}, "loops": {}}, newest)
    newest.write_bytes(newest.read_bytes()[:40])  # truncated
    later = time.time() + 5
    os.utime(newest, (later, later))
    with caplog.at_level("WARNING"):
        assert resume_checkpoint(directory) == good
    assert "last.ckpt is unreadable" in caplog.text
    assert "resuming from the older checkpoint" in caplog.text


@pytest.mark.parametrize("size,world", [(10, 1), (10, 3), (7, 2)])
def test_resumed_batch_order_continues_the_epoch(size, world):
    from launcher.components.data.batch_order import ResumableBatchSampler

    def sampler(rank):
        s = ResumableBatchSampler(size, 2, shuffle=True, seed=5, rank=rank, world_size=world)
        s.set_epoch(3)
        return s

    for rank in range(world):
        full = list(sampler(rank))
        resumed = sampler(rank)
        resumed.resume(3, 2)
        assert list(resumed) == full[2:]
        assert list(resumed) == full  # the skip applies once
    shards = [i for r in range(world) for b in sampler(r) for i in b]
    assert set(shards) == set(range(size))
