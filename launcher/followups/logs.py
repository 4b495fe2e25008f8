"""`launch logs RUN [-f] [--err]`: print a run's log, or follow it until the run ends."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from launcher import layout
from launcher.errors import LauncherError
from launcher.executors.registry import SubmittedJob, Sweep, find


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
    path = Path(job.stderr if err else Path(job.run_dir) / layout.LOG_FILE)
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
    from launcher.followups.status import rows
    from launcher.states import FINISHED

    return rows(sweep, [job])[0].state in FINISHED
