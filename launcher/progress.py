"""Progress as plain log lines, for log files where a redrawn bar is unreadable.

In a batch job (no terminal) the Trainer logs a line every
`progress_interval_s` seconds and at each epoch end: epoch, step, smoothed
loss, throughput and time left in the epoch. Either way the same figures go
to `progress.json` in the run directory, for `launch status`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pytorch_lightning.callbacks import Callback

log = logging.getLogger("launcher.progress")


class ProgressLog(Callback):
    def __init__(self, exp_dir: str, interval_s: float = 30.0, lines: bool = True) -> None:
        self.exp_dir = exp_dir
        self.interval_s = interval_s
        self.lines = lines
        self._loss: float | None = None
        self._epoch_start = self._last = 0.0
        self._done = 0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_start = self._last = time.monotonic()
        self._done = 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            value = float(loss)
            self._loss = value if self._loss is None else 0.9 * self._loss + 0.1 * value
        self._done = batch_idx + 1
        if time.monotonic() - self._last >= self.interval_s:
            self._report(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._report(trainer)

    def _report(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        now = time.monotonic()
        self._last = now
        elapsed = max(now - self._epoch_start, 1e-9)
        total = trainer.num_training_batches
        rate = self._done / elapsed
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
                 f"batch {self._done}/{total}", f"step {trainer.global_step}"]
        if self._loss is not None:
            parts.append(f"loss {self._loss:.4g}")
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


def write_progress(exp_dir: str, progress: dict) -> None:
    import json
    import os
    from pathlib import Path

    path = Path(exp_dir) / "progress.json"
    tmp = path.with_name(f".progress.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(progress))
    tmp.replace(path)
