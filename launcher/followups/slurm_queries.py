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
    live = _squeue(set(ids))
    queued_arrays = {_base(j) for j in live}
    pending_lines = {_base(k): k for k in states if "_[" in k}  # once, not per job
    for job_id in ids:
        if job_id in live:  # live states win: accounting lags a little
            states[job_id] = live[job_id]
        elif job_id not in states:  # it never started: no line of its own
            found = _never_started(states, pending_lines, job_id)
            if found is None and "_" in job_id and _base(job_id) in queued_arrays:
                # Its array is queued but it is not, and accounting does not know it yet:
                # it was cancelled while queued (SLURM keeps no record of such a task).
                found = SchedulerState("CANCELLED")
            if found is not None:
                states[job_id] = found
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


def _never_started(states: dict[str, SchedulerState], pending_lines: dict[str, str],
                   job_id: str) -> SchedulerState | None:
    """The state sacct gives an array's tasks that never started: one line for all of
    them, `123` or `123_[4-7%2]` (`pending_lines`: such lines by array). A task the
    array's line leaves out (`123_[4,6-7]`) was cancelled while queued: SLURM keeps no
    record of it."""
    base, _, index = job_id.partition("_")
    if base in states:
        return states[base]
    line = pending_lines.get(base)
    if line is None:
        return None
    if index.isdigit() and not _in_ranges(int(index), line[len(base) + 2:-1]):
        return SchedulerState("CANCELLED")
    return states[line]


def _in_ranges(index: int, spec: str) -> bool:
    """Whether SLURM's index list (`0,2-10%11`) holds `index`."""
    for part in spec.split("%", 1)[0].split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and int(first) <= index <= int(last or first):
            return True
    return False


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
