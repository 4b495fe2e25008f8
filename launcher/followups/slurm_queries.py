"""Job states from SLURM: one `squeue` and one `sacct` call, whatever the number of jobs,
each asking only for the sweep's own jobs.

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
    live: bool = False    # from squeue (the controller now), not sacct (which lags)

    @property
    def active(self) -> bool:
        """The job has not ended; its processes may be alive."""
        return self.state in ACTIVE

    @property
    def stale(self) -> bool:
        """Says the job runs, but only accounting says so (squeue no longer lists it),
        or it is COMPLETING (it ended; only its epilog runs): a job that `--wait` saw
        end has ended, whatever this says."""
        return self.active and (not self.live or self.state == "COMPLETING")


def _base(job_id: str) -> str:
    return job_id.split("_", 1)[0]


def query(job_ids: Iterable[str]) -> dict[str, SchedulerState]:
    """States of these SLURM jobs (ids like 123 or 123_4)."""
    ids = [j for j in job_ids if j and j[0].isdigit()]
    if not ids or not shutil.which("squeue"):
        return {}
    states = _sacct(sorted({_base(j) for j in ids}))
    for job_id in ids:  # tasks that never started are one line for the array in sacct
        if job_id not in states and _never_started(states, _base(job_id)):
            states[job_id] = _never_started(states, _base(job_id))
    states.update(_squeue(set(ids)))  # live states win: accounting lags a little
    return states


def _squeue(wanted: set[str]) -> dict[str, SchedulerState]:
    """The live states of these jobs only (`-j` with their arrays' ids: the queue of a
    busy cluster holds tens of thousands of other jobs). squeue fails with "Invalid job
    id" when the controller knows none of them any more: then none is live."""
    bases = ",".join(sorted({_base(j) for j in wanted}))
    out = subprocess.run(["squeue", "-h", "-r", "-j", bases, "-o", "%i|%T|%M"],
                         capture_output=True, text=True)
    states = {}
    for line in out.stdout.splitlines():
        job_id, state, elapsed = [*line.split("|"), "", ""][:3]
        if job_id in wanted:
            states[job_id] = SchedulerState(state, elapsed, live=True)
    return states


def _never_started(states: dict[str, SchedulerState], base: str) -> SchedulerState | None:
    """The state sacct gives an array's tasks that never started: one line for all of
    them, `123` or `123_[4-7%2]` (a task that started has a line of its own)."""
    found = states.get(base)
    if found is None:
        found = next((s for k, s in states.items() if k.startswith(f"{base}_[")), None)
    return found


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
