"""Progress as plain log lines, for log files where a redrawn bar is unreadable.

In a batch job (no terminal) the Trainer logs a line every
`progress_interval_s` seconds and at each epoch end: epoch, step, smoothed
loss, throughput and time left in the epoch.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pytorch_lightning.callbacks import Callback

log = logging.getLogger("launcher.progress")


class ProgressLog(Callback):
    def __init__(self, interval_s: float = 30.0) -> None:
        self.interval_s = interval_s
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
        log.info("  ".join(parts))
