"""A CSV logger that continues `metrics.csv` when a run resumes.

Lightning's CSVLogger deletes an existing metrics file when a new Trainer
starts in the same folder; after a requeue that would throw away the
history of the run. This one keeps the rows and the header and appends.
"""

from __future__ import annotations

import os

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from launcher.compat.lightning import AppendingExperimentWriter


class ResumableCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir or ".", exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
