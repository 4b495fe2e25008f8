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
        subprocess.run(["scancel", *slurm_targets(live, sweep.jobs)], check=True)
    else:
        for job in live:
            _terminate(int(job.job_id))
    for job in live:
        print(f"cancelled job {job.job_id}: {_named(job)}")
    return 0


def slurm_targets(live: list[SubmittedJob], every: list[SubmittedJob]) -> list[str]:
    """What scancel is given: an array's id when every job of it (of `every`, the sweep's
    jobs) is live, one argument for a thousand tasks; else the live tasks. The newest
    array goes first: a large sweep's arrays each wait for the one before to end, and
    one whose predecessor was cancelled first could start in between."""
    by_array: dict[str, list[str]] = {}
    for job in every:  # the whole sweep's: a run's own job must not take its array along
        by_array.setdefault(job.job_id.split("_", 1)[0], []).append(job.job_id)
    alive = {job.job_id for job in live}
    targets = []
    for array in sorted(by_array, key=lambda a: int(a) if a.isdigit() else -1, reverse=True):
        members = [j for j in by_array[array] if j in alive]
        whole = "_" in by_array[array][0] and len(members) == len(by_array[array])
        targets.extend([array] if whole else members)
    return targets


def _named(job: SubmittedJob) -> str:
    """The job's run folder when it has one; a job still queued has none yet."""
    if Path(job.run_dir).is_dir():
        return job.run_dir
    return f"{shown(job.overrides)} (not started: it had no run folder yet)"


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
        os.kill(pid, signal.SIGTERM)
