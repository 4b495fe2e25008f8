"""`launch logs`, `launch cancel`, `launch retry`: acting on what was launched.

They read the sweep registry (`jobs.json`) and the run directories, so they
work from any shell, after the submitting process is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from launcher.errors import LauncherError
from launcher.registry import SubmittedJob, Sweep, find


def logs(target: str, follow: bool = False, err: bool = False) -> int:
    """Print a run's log (the scheduler's stderr with `err`); `follow` keeps printing."""
    sweep, jobs = find(target)
    if len(jobs) != 1:
        raise LauncherError(f"{target} holds {len(jobs)} runs; give one run directory")
    job = jobs[0]
    if job.problem:
        raise LauncherError(f"cannot tell where job {job.job_id or '?'} logs: {job.problem}")
    if err and not job.stderr:
        raise LauncherError(f"no scheduler log is recorded for {job.run_dir}; try without --err")
    path = Path(job.stderr if err else Path(job.run_dir) / "run.log")
    if not err and not Path(job.run_dir).is_dir():
        raise LauncherError(f"the run folder {job.run_dir} does not exist")
    if not path.is_file():
        raise LauncherError(f"no log yet at {path} (the job may still be queued)")
    with open(path, errors="replace") as file:
        sys.stdout.write(file.read())
        sys.stdout.flush()
        while follow:
            chunk = file.read()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            elif _ended(sweep, job):
                return 0
            else:
                time.sleep(0.5)
    return 0


def _ended(sweep: Sweep, job: SubmittedJob) -> bool:
    from launcher.status import FINISHED, rows

    return rows(sweep, [job])[0].state in FINISHED


def cancel(target: str) -> int:
    """Cancel the jobs of a sweep (or one run) that have not ended.

    SIGTERM reaches the training processes first, so each run checkpoints
    before it stops; `launch retry` continues it later.
    """
    from launcher.status import DAMAGED, FINISHED, rows

    sweep, jobs = find(target)
    table = rows(sweep, jobs)
    for row in table:
        if row.state == DAMAGED:
            print(f"not cancelled, its state is unknown: job {row.job_id}: {row.note}")
    live = [j for j, r in zip(jobs, table, strict=True) if r.state not in FINISHED]
    if sweep.backend != "slurm":
        for job in [j for j in live if not j.job_id.isdigit()]:
            print(f"not cancelled, no process id recorded: {job.run_dir}")
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
        print(f"cancelled job {job.job_id}: {job.run_dir}")
    return 0


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
        os.kill(pid, signal.SIGTERM)


def retry(target: str) -> int:
    """Resubmit the failed, cancelled, timed-out, stopped or dead runs of a sweep;
    each continues from its own checkpoints. Finished runs are left alone, and so
    are runs whose bookkeeping cannot be read (said, with the problem)."""
    from launcher.launch import launch
    from launcher.registry import REGISTRY
    from launcher.status import DAMAGED, RETRYABLE, rows

    sweep, jobs = find(target)
    if "recipe" in sweep.defaulted:
        raise LauncherError(f"{Path(sweep.sweep_dir) / REGISTRY}: missing field 'recipe'; "
                            "cannot resubmit without it")
    if not sweep.recipe:
        raise LauncherError("this run was not submitted through an executor; run its launch "
                            "command again instead")
    table = rows(sweep, jobs)
    for row in table:
        if row.state == DAMAGED:
            print(f"skipped job {row.job_id}, cannot read its bookkeeping: {row.note}")
    again = [j for j, r in zip(jobs, table, strict=True) if r.state in RETRYABLE]
    if not again:
        print("nothing to retry: no job failed, died, was cancelled or timed out")
        return 0
    for job in again:
        (new,) = launch(sweep.recipe, [*job.overrides, f"hydra/launcher={sweep.backend}"],
                        config_name=sweep.config_name, multirun=True)
        # The sweep's own table follows the run to its new job.
        job.job_id, job.stdout, job.stderr = new.job_id, new.stdout, new.stderr
        job.state, job.submitted, job.error = new.state, new.submitted, None
        sweep.save()
    print(f"resubmitted {len(again)} run(s); follow with: launch status {sweep.sweep_dir}")
    return 0
