"""What each job of a launch gives back to Hydra: a `JobReturn`, as Hydra's contract says.

A job that ran to the end returns the `JobReturn` Hydra's own `run_job` made in
the job (the task's return value, its overrides, cfg and working dir), so
any sweeper, Optuna's included, reads results as from Hydra's basic
launcher. A failed job comes back FAILED with a `JobFailed` that names the
error line and the log holding the traceback (reading `return_value` raises
it, as Hydra does). A job that was only queued (SLURM without waiting) has
no result yet: COMPLETED with the value None, its working dir set. Our own
records of the jobs (`jobs.json`) are kept beside these, never inside them.
"""

from __future__ import annotations

from typing import Any

from launcher.errors import LauncherError
from launcher.executors.registry import ALREADY_DONE, SubmittedJob


class JobFailed(LauncherError):
    """A job of a sweep failed; the message says why and where its traceback is."""

    exit_code = 1


def failure(record: SubmittedJob) -> JobFailed:
    from launcher.executors.outcome import failure_line

    return JobFailed(failure_line(record))


def job_returns(jobs: dict[int, Any], records: list[SubmittedJob], waited: bool) -> list:
    """One `JobReturn` per record, in order; `jobs` maps a record's position to its
    submitit job (finished runs that were not submitted again have none)."""
    return [_returned(jobs.get(i), record, waited) for i, record in enumerate(records)]


def _returned(job: Any, record: SubmittedJob, waited: bool) -> Any:
    from hydra.core.utils import JobReturn, JobStatus

    if waited and job is not None and record.state == "COMPLETED":
        (ret, *_) = job.results()  # rank 0's; the others return theirs too
        return ret
    ret = JobReturn(overrides=list(record.overrides), working_dir=record.run_dir)
    if waited and record.failed:
        ret.status, ret.return_value = JobStatus.FAILED, failure(record)
    else:  # queued, not awaited; or finished before this launch
        ret.status = JobStatus.COMPLETED
        ret.return_value = _finished_before(record) if record.note == ALREADY_DONE else None
    return ret


def _finished_before(record: SubmittedJob) -> Any:
    """A run that completed before this launch: what its task returned then."""
    from launcher.job.task import RunResult
    from launcher.metrics_file import best_value

    return RunResult(record.run_dir, best_value(record.run_dir))
