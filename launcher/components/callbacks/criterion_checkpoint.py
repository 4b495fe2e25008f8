"""The best-k checkpoints of one criterion, their average, and an early word on a
metric never logged.

Lightning notices a `best_model_criterion` metric that the module does not
log only when it first saves, after a whole epoch of training. This
checkpoint callback looks at the first validation instead (the sanity check
before training, when there is one) and fails then, listing the metrics
that are logged. Metrics of the training epoch (`train/...`) exist only at
its end, so they are looked for then. The default criterion (ESPnet's
`[valid/loss, 3, min]`, used when the config names none) is not required:
a module that logs no `valid/loss` gets one warning and no best checkpoints.

After each save that changed the best set, rank 0 rewrites their average
(`launcher.components.callbacks.averaging`), as ESPnet3 does at every
validation; it is done here, after the save, rather than in a callback of
its own, which Lightning would call before the checkpoints are written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

from launcher.errors import ConfigError

TRAIN_PREFIX = "train/"
log = logging.getLogger(__name__)


class CriterionCheckpoint(ModelCheckpoint):
    _checked = False
    _disabled = False

    def __init__(self, required: bool = True, average_into: Path | None = None,
                 **checkpoint: Any) -> None:
        super().__init__(**checkpoint)
        self.required = required
        self.average_into = average_into
        self._averaged: list[str] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not self.monitor.startswith(TRAIN_PREFIX):
            self._check_logged(trainer)
        if not self._disabled:
            super().on_validation_end(trainer, pl_module)
            self._average(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor.startswith(TRAIN_PREFIX):  # a validation may not be due this epoch
            self._check_logged(trainer)
        elif not self.required and self.monitor not in trainer.callback_metrics:
            return  # no validation at all: the default criterion has nothing to go by
        if not self._disabled:
            super().on_train_epoch_end(trainer, pl_module)
            self._average(trainer)

    def _average(self, trainer: Any) -> None:
        from launcher.components.callbacks.averaging import average_checkpoints

        best = sorted(self.best_k_models)
        if self.average_into is None or not trainer.is_global_zero or not best \
                or best == self._averaged or trainer.sanity_checking:
            return
        average_checkpoints(best, self.monitor, self.average_into)
        self._averaged = best

    def _check_logged(self, trainer: Any) -> None:
        if self._checked:
            return
        logged = sorted(trainer.callback_metrics)
        self._checked = True
        if self.monitor in logged:
            return
        if not self.required:
            log.warning("the default best_model_criterion [%s, %d, %s] is not logged, so no "
                        "best checkpoints are kept; logged: %s", self.monitor,
                        self.save_top_k, self.mode, ", ".join(logged) or "none")
            self._disabled = True
            return
        import difflib

        close = difflib.get_close_matches(self.monitor, logged, 1)
        raise ConfigError(
            f"the metric '{self.monitor}' is not logged; logged: {', '.join(logged) or 'none'}",
            key="best_model_criterion",
            hint=f"did you mean '{close[0]}'?" if close else "name one of the logged metrics")
