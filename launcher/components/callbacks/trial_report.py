"""A search trial's validation metric, reported to its study after each validation, and
the study's verdict: a hopeless trial stops at the end of that epoch (its checkpoints
saved as at any epoch's end) and leaves by `TrialPruned`.

The slot running the trial (`launcher.job.search_worker`) sets the reporter for
the duration of the trial; every other run has none and gets no callback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from pytorch_lightning.callbacks import Callback

from launcher.signals import JobEnds

log = logging.getLogger("launcher")


class Reporter(Protocol):
    metric: str

    def report(self, value: float, step: int) -> bool:
        """Record `value` at `step` (the epoch); True when the trial should stop."""


class TrialPruned(JobEnds):
    """The study stopped this trial early. Not a failure: the trial's slot records it as
    pruned and goes on to its next trial."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why

    def __str__(self) -> str:
        return self.why


_CURRENT: list[Reporter] = []


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    _CURRENT.append(reporter)
    try:
        yield
    finally:
        _CURRENT.pop()


def trial_callbacks() -> list:
    """The callback of the trial this process runs now, if it runs one."""
    return [TrialReport(_CURRENT[-1])] if _CURRENT else []


class TrialReport(Callback):
    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.pruned: tuple[int, float] | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.reporter.metric)
        if value is None:
            return
        epoch, value = trainer.current_epoch, float(value)
        if self.reporter.report(value, epoch) and self.pruned is None:
            self.pruned = (epoch, value)
            trainer.should_stop = True  # the epoch ends as usual, its checkpoints saved
            log.info("trial pruned by the search after epoch %d (%s %.6g); it stops at the "
                     "end of this epoch", epoch, self.reporter.metric, value)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.pruned is not None:
            epoch, value = self.pruned
            raise TrialPruned(f"pruned after epoch {epoch} ({self.reporter.metric} "
                              f"{value:.6g})")
