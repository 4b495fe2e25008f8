"""Progress as plain log lines, for log files where a redrawn bar is unreadable.

In a batch job (no terminal) the Trainer logs a line every
`trainer.log_every_n_steps` steps (as ESPnet3 does), every
`progress_interval_s` seconds when steps are slow, and at each epoch end:
epoch, step, mean loss since the last line, learning rates, throughput and
time left in the epoch. Either way the
same figures go to `progress.json` in the run directory, for `launch status`.
The loss stays a tensor until a line is written: reading it every step would
wait for the GPU every step.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from launcher import layout

log = logging.getLogger("launcher.components.callbacks.progress")


class ProgressLog:
    """Called by `last_checkpoint.LastCheckpoint`, with Lightning's hook arguments."""

    def __init__(self, exp_dir: str, interval_s: float = 30.0, lines: bool = True) -> None:
        self.exp_dir = exp_dir
        self.interval_s = interval_s
        self.lines = lines
        self._loss: float | None = None  # as last reported
        self._losses: list = []  # since then, as the steps returned them
        self._epoch_start = self._last = 0.0
        self._first: int | None = None  # the first batch this process ran in the epoch
        self._done = 0
        self._step_reported = -1  # with gradient accumulation, a step spans batches

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_start = self._last = time.monotonic()
        self._first, self._done = None, 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(loss.detach() if getattr(loss, "requires_grad", False)
                                else loss)
        if self._first is None:  # a resumed epoch starts part-way through
            self._first = batch_idx
        self._done = batch_idx + 1
        every, step = getattr(trainer, "log_every_n_steps", 0), trainer.global_step
        due = every and step % every == 0 and step != self._step_reported  # ESPnet3's cadence
        if due or time.monotonic() - self._last >= self.interval_s:
            self._step_reported = step
            self._report(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._report(trainer)

    def _report(self, trainer: Any) -> None:
        now = time.monotonic()
        self._last = now
        if self._losses:
            self._loss = float(sum(self._losses)) / len(self._losses)
            self._losses = []
        if not trainer.is_global_zero:
            return
        elapsed = max(now - self._epoch_start, 1e-9)
        total = trainer.num_training_batches
        rate = (self._done - (self._first or 0)) / elapsed
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
                 f"batch {self._done}/{total}", f"step {trainer.global_step}"]
        if self._loss is not None:
            parts.append(f"loss {self._loss:.4g}")
        parts.extend(f"lr {lr:.3g}" for lr in _learning_rates(trainer))
        parts.append(f"{rate:.2f} batch/s")
        if isinstance(total, int) and rate > 0:
            left = time.gmtime((total - self._done) / rate)
            parts.append(f"epoch ETA {time.strftime('%H:%M:%S', left)}")
        if self.lines:
            log.info("  ".join(parts))
        write_progress(self.exp_dir, {"epoch": trainer.current_epoch + 1,
                                      "max_epochs": trainer.max_epochs,
                                      "step": trainer.global_step, "loss": self._loss,
                                      "batches_per_s": round(rate, 3)})


def _learning_rates(trainer: Any) -> list[float]:
    """The first parameter group's learning rate of each optimizer."""
    return [float(o.param_groups[0]["lr"]) for o in trainer.optimizers if o.param_groups]


def write_progress(exp_dir: str, progress: dict) -> None:
    import json
    from pathlib import Path

    from launcher.atomic import write_text

    write_text(Path(exp_dir) / layout.PROGRESS_FILE, json.dumps(progress))
