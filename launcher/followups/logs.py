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
        raise LauncherError(f"no scheduler log is recorded for job {job.job_id or '?'}; "
                            "try without --err")
    if not err and not Path(job.run_dir).is_dir():
        raise LauncherError(_no_folder(sweep, job))
    path = Path(job.stderr) if err else layout.run_log(job.run_dir)
    if not path.is_file():
        raise LauncherError(_no_log(sweep, job, path))
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


def _no_folder(sweep: Sweep, job: SubmittedJob) -> str:
    """What is the case when a job has no run folder: queued, never started, or the
    folder was removed; and the scheduler's log, when it wrote one."""
    from launcher.followups.status import rows
    from launcher.states import Shown

    row = rows(sweep, [job])[0]
    name = f"job {job.job_id or '?'}"
    if row.state == Shown.QUEUED:
        return f"{name} is queued and has not started; its log appears once it runs"
    if row.state == Shown.MISSING:
        return f"the run folder of {name}, {job.run_dir}, does not exist any more"
    stderr = Path(job.stderr) if job.stderr else None
    said = f"; its scheduler log is {stderr}" if stderr and stderr.is_file() \
        else "; it wrote no log"
    return f"{name} never started ({row.state}): it has no run folder{said}"


def _no_log(sweep: Sweep, job: SubmittedJob, path: Path) -> str:
    from launcher.followups.status import rows
    from launcher.states import Shown

    state = rows(sweep, [job])[0].state
    if state == Shown.QUEUED:
        return f"job {job.job_id or '?'} is queued and has not started; no log at {path} yet"
    return f"job {job.job_id or '?'} ({state}) wrote no log at {path}"


def _ended(sweep: Sweep, job: SubmittedJob) -> bool:
    from launcher.followups.status import rows
    from launcher.states import FINISHED

    return rows(sweep, [job])[0].state in FINISHED
