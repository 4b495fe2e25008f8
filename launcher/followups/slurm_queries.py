"""Job states from SLURM: one `squeue` and one `sacct` call, whatever the number of jobs.

`squeue` knows the jobs that are pending or running now; `sacct` knows how the
others ended. Array tasks are asked for through their array's id, so a sweep
of 100 tasks is still one argument.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

# SLURM's words for a job that has not ended: it runs, or may still (again).
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
          "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED", "RESIZING", "SIGNALING", "STAGE_OUT")


@dataclass(frozen=True)
class SchedulerState:
    state: str            # SLURM's word: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ...
    elapsed: str = ""     # [D-]HH:MM:SS as SLURM prints it
    restarts: int = 0

    @property
    def active(self) -> bool:
        """The job has not ended; its processes may be alive."""
        return self.state in ACTIVE


def _base(job_id: str) -> str:
    return job_id.split("_", 1)[0]


def query(job_ids: Iterable[str]) -> dict[str, SchedulerState]:
    """States of these SLURM jobs (ids like 123 or 123_4)."""
    ids = [j for j in job_ids if j and j[0].isdigit()]
    if not ids or not shutil.which("squeue"):
        return {}
    states = _sacct(sorted({_base(j) for j in ids}))
    states.update(_squeue(set(ids)))  # live states win: accounting lags a little
    return states


def _squeue(wanted: set[str]) -> dict[str, SchedulerState]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%M"], capture_output=True,
                         text=True)
    states = {}
    for line in out.stdout.splitlines():
        job_id, state, elapsed = [*line.split("|"), "", ""][:3]
        if job_id in wanted:
            states[job_id] = SchedulerState(state, elapsed)
    return states


def _sacct(bases: list[str]) -> dict[str, SchedulerState]:
    out = subprocess.run(["sacct", "-n", "-P", "-X", "--duplicates",
                          "--format=JobID,State,Elapsed", "-j", ",".join(bases)],
                         capture_output=True, text=True)
    states: dict[str, SchedulerState] = {}
    for line in out.stdout.splitlines():
        job_id, state, elapsed = [*line.split("|"), "", ""][:3]
        previous = states.get(job_id)
        restarts = previous.restarts + 1 if previous else 0
        # with --duplicates a requeued job appears once per start; the last is current
        states[job_id] = SchedulerState(state.split()[0] if state else "", elapsed, restarts)
    return states
