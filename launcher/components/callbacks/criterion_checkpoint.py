"""The best-k checkpoints of one criterion, and an early word on a metric never logged.

Lightning notices a `best_model_criterion` metric that the module does not
log only when it first saves, after a whole epoch of training. This
checkpoint callback looks at the first validation instead (the sanity check
before training, when there is one) and fails then, listing the metrics
that are logged. Metrics of the training epoch (`train/...`) exist only at
its end, so they are looked for then.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

from launcher.errors import ConfigError

TRAIN_PREFIX = "train/"


class CriterionCheckpoint(ModelCheckpoint):
    _checked = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not self.monitor.startswith(TRAIN_PREFIX):
            self._check_logged(trainer)
        super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor.startswith(TRAIN_PREFIX):  # a validation may not be due this epoch
            self._check_logged(trainer)
        super().on_train_epoch_end(trainer, pl_module)

    def _check_logged(self, trainer: Any) -> None:
        if self._checked:
            return
        logged = sorted(trainer.callback_metrics)
        if self.monitor not in logged:
            import difflib

            close = difflib.get_close_matches(self.monitor, logged, 1)
            raise ConfigError(
                f"the metric '{self.monitor}' is not logged; logged: {', '.join(logged) or 'none'}",
                key="best_model_criterion",
                hint=f"did you mean '{close[0]}'?" if close else "name one of the logged metrics")
        self._checked = True
