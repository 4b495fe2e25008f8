"""`launch cancel SWEEP|RUN`: cancel the jobs that have not ended.

SIGTERM reaches the training processes first, so each run checkpoints before
it stops; `launch retry` continues it later."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from launcher.executors.registry import SubmittedJob, find, shown


def cancel(target: str) -> int:
    """Cancel the jobs of a sweep (or one run) that have not ended.

    SIGTERM reaches the training processes first, so each run checkpoints
    before it stops; `launch retry` continues it later.
    """
    from launcher.followups.status import rows
    from launcher.states import FINISHED, Shown

    sweep, jobs = find(target)
    table = rows(sweep, jobs)
    for row in table:
        if row.state == Shown.DAMAGED:
            print(f"not cancelled, its state is unknown: job {row.job_id}: {row.note}")
    live = [j for j, r in zip(jobs, table, strict=True) if r.state not in FINISHED]
    if sweep.backend != "slurm":
        for job in [j for j in live if not j.job_id.isdigit()]:
            print(f"not cancelled, no process id recorded: {_named(job)}")
        live = [j for j in live if j.job_id.isdigit()]
    if not live:
        print("nothing to cancel: every job has ended")
        return 0
    if sweep.backend == "slurm":
        subprocess.run(["scancel", *[j.job_id for j in live]], check=True)
    else:
        for job in live:
            _terminate(int(job.job_id))
    for job in live:
        print(f"cancelled job {job.job_id}: {_named(job)}")
    return 0


def _named(job: SubmittedJob) -> str:
    """The job's run folder when it has one; a job still queued has none yet."""
    if Path(job.run_dir).is_dir():
        return job.run_dir
    return f"{shown(job.overrides)} (not started: it had no run folder yet)"


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
        os.kill(pid, signal.SIGTERM)
