"""Waiting for submitted jobs, and recording how each one ended.

A line as each job ends, a compact count of states whenever it changes (the
full table, redrawn, on a terminal), and for each finished job its
scheduler state, its first error line and the best value of its metric."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from launcher.executors.outcome import describe
from launcher.executors.registry import SubmittedJob, Sweep
from launcher.metrics_file import best_value
from launcher.states import (
    SLURM_ENDED,
    SLURM_REQUEUED,
    SLURM_RUNNING,
    SLURM_WAITING,
    Shown,
    shown_from_slurm,
)
from launcher.status_file import FAILED, OUT_OF_RETRIES, STOPPED, status_as_far_as_readable

POLL_S = 2.0
SAVE_EVERY_S = 1.0


class Saving:
    """Saves the sweep's jobs.json at most once every `SAVE_EVERY_S` while jobs start
    and end, and at once when asked: each save writes every job, and a save per job
    of a sweep of thousands is quadratic (a second per save at ten thousand)."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep, self.last, self.due = sweep, 0.0, False

    def soon(self) -> None:
        self.due = True
        if time.monotonic() - self.last >= SAVE_EVERY_S:
            self.now()

    def now(self) -> None:
        self.sweep.save()
        self.last, self.due = time.monotonic(), False

    def if_due(self) -> None:
        if self.due:
            self.now()


def wait_for(jobs: list, records: list[SubmittedJob], sweep: Sweep,
             on_poll: Any = None) -> None:
    """Block until every job ended: a line as each one does, and a count of states
    whenever it changes (`launch status` shows the whole table)."""
    pending = dict(enumerate(jobs))
    last, polls, saving = "", 0, Saving(sweep)
    try:
        while pending:
            if on_poll is not None:
                on_poll()
            for i, job in [(i, job) for i, job in pending.items() if job.done()]:
                del pending[i]
                settle(job, records[i])
                saving.soon()
                print(describe(records[i]), flush=True)
            if pending:
                text = f"sweep {sweep.sweep_dir} ({sweep.backend}): " \
                       f"{counts(jobs, records, pending)}"
                if text != last:
                    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)
                    last = text
                time.sleep(min(POLL_S, 0.1 * 1.5 ** polls))  # short jobs end quickly
                polls += 1
    finally:  # also when waiting is given up (Ctrl-C): what was settled is kept
        saving.if_due()


def counts(jobs: list, records: list[SubmittedJob], pending: dict[int, Any]) -> str:
    """`2 completed, 1 queued, 3 running`: ended jobs by their record, the `pending`
    ones (by position) as the scheduler (or, locally, the process) says."""
    words = Counter(_live_word(job) if i in pending else
                    record.state.lower().replace("_", " ")
                    for i, (job, record) in enumerate(zip(jobs, records, strict=True)))
    return ", ".join(f"{n} {word}" for word, n in sorted(words.items()))


def _live_word(job: Any) -> str:
    state = (str(job.state or "").split() or ["UNKNOWN"])[0]
    if state in (*SLURM_WAITING, *SLURM_RUNNING, *SLURM_REQUEUED):
        return shown_from_slurm(state, None)
    return Shown.QUEUED  # not known to accounting yet


def settle(job: Any, record: SubmittedJob) -> None:
    """Record how a finished job ended: its scheduler state and its first error line."""
    import submitit

    from launcher.compat.submitit import ended_without_waiting

    if isinstance(job, submitit.LocalJob):  # no slow NFS to wait for: the process ended
        ended_without_waiting(job)
    try:
        job.results()
        record.state = "COMPLETED"
    except Exception as exc:  # a failed job is reported, not raised: the others carry on
        state = str(getattr(job, "state", "") or "FAILED").split()[0]
        record.state = state if state in SLURM_ENDED and state != "COMPLETED" else "FAILED"
        record.error = _last_line(str(exc))
    record.value = best_value(record.run_dir)
    run = status_as_far_as_readable(record.run_dir)
    run_state = run.get("state")
    if record.state != "COMPLETED" and run_state == FAILED and isinstance(run.get("error"), str) \
            and str(run.get("updated", "")) >= record.submitted:  # not an earlier attempt's
        record.error = _first_line(run["error"])  # the run's own words, not submitit's
    if run_state == OUT_OF_RETRIES:
        record.state = "OUT_OF_RETRIES"
        record.error = "requeue budget used up (requeue.max_requeues)"
    elif run_state == STOPPED and record.state != "COMPLETED":
        record.state = "STOPPED"
        record.error = "stopped by a signal; launch retry (or the same command) continues it"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["unknown error"])[0][:300]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return (errors or lines or ["unknown error"])[-1][:300]
