"""What the launcher uses of Lightning beyond its public API (pytorch-lightning 2.5-2.6),
besides the loop counters (`lightning_loops`) and the epoch's metrics
(`lightning_metrics`):

- `collect_rng_states` / `set_rng_states`: every random generator's state
  (`lightning_fabric.utilities.seed`), for an exact resume;
- `batch_index` / `batches_done_this_epoch`: the fit loop's batch counters;
- `take_sigterm_from`: Lightning's own SIGTERM handler marks
  `trainer._signal_connector.received_sigterm`; the launcher acts on it instead;
- `AppendingExperimentWriter`: the CSV logger's writer, told to continue an
  existing `metrics.csv` (`ExperimentWriter._check_log_dir_exists`);
- `EpochLearningRateMonitor`: Lightning's LearningRateMonitor, whose rows carry
  the epoch as every other row of `metrics.csv` does
  (`LearningRateMonitor._extract_stats`).
"""

from __future__ import annotations

import csv
import os
from typing import Any

from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


def collect_rng_states(include_cuda: bool) -> dict:
    from lightning_fabric.utilities.seed import _collect_rng_states

    return _collect_rng_states(include_cuda=include_cuda)


def set_rng_states(states: dict) -> None:
    from lightning_fabric.utilities.seed import _set_rng_states

    _set_rng_states(states)


def batch_index(trainer: Any) -> int:
    """The index of the current (or last) training batch, counted across epochs and
    resumes."""
    return int(trainer.fit_loop.epoch_loop.total_batch_idx)


def batches_done_this_epoch(trainer: Any) -> int:
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)


def take_sigterm_from(trainer: Any) -> bool:
    """Whether Lightning's SIGTERM handler saw a signal; it is cleared, so that
    Lightning does not stop the run on its own."""
    connector = getattr(trainer, "_signal_connector", None)
    if not getattr(connector, "received_sigterm", False):
        return False
    connector.received_sigterm = False
    return True


class AppendingExperimentWriter(ExperimentWriter):
    """Keeps an existing metrics file's rows and header, where Lightning deletes it."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                self.metrics_keys = list(next(csv.reader(file), []))


class EpochLearningRateMonitor(LearningRateMonitor):
    """A LearningRateMonitor whose logged rows also say the epoch."""

    def _extract_stats(self, trainer: Any, interval: str) -> dict:
        stats = super()._extract_stats(trainer, interval)
        return {**stats, "epoch": trainer.current_epoch} if stats else stats


def data_parallel_mesh(strategy: Any) -> None:
    """Make a ModelParallelStrategy left at its "auto" sizes shard over every rank (a
    data-parallel mesh of the world size, no tensor parallelism) instead of Lightning's
    default (data parallel over nodes, tensor parallel within one). Relies on the
    strategy's `_data_parallel_size` / `_tensor_parallel_size`, read in its
    `setup_environment`."""
    if strategy._data_parallel_size == "auto" and strategy._tensor_parallel_size == "auto":
        strategy._data_parallel_size = strategy.num_nodes * strategy.num_processes
        strategy._tensor_parallel_size = 1
