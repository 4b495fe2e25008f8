"""`launch status`: one table for a sweep or a run, from any shell, without torch.

Per refresh: one `squeue` and one `sacct` call for all jobs, then small files
from each run directory (status.json, progress.json, the tail of metrics.csv).
A file that cannot be read does not stop the table: its run is shown with
what could be read and a note naming the file and the problem.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import layout, liveness
from launcher.executors.registry import SubmittedJob, Sweep
from launcher.followups import slurm_queries as scheduler
from launcher.followups.run_files import (
    died_note,
    elapsed_of,
    glance_best,
    last_seen,
    metric_values,
    progress_text,
    read_progress,
    run_status,
)
from launcher.metrics_file import DEFAULT_METRIC, tracked_metric
from launcher.states import FINISHED, SLURM_ENDED, Shown, shown_from_slurm
from launcher.status_file import STATUS_FILE

QUEUED, RUNNING, REQUEUED = Shown.QUEUED, Shown.RUNNING, Shown.REQUEUED
COMPLETED, FAILED, TIMED_OUT, CANCELLED = (Shown.COMPLETED, Shown.FAILED, Shown.TIMED_OUT,
                                           Shown.CANCELLED)
OUT_OF_RETRIES, STOPPED = Shown.OUT_OF_RETRIES, Shown.STOPPED
DIED, MISSING, DAMAGED = Shown.DIED, Shown.MISSING, Shown.DAMAGED

COLUMNS = ("job_id", "what", "state", "epoch_step", "latest", "best", "elapsed", "log", "note")
CLIP = {"what": 48, "note": 1000}  # widest cell of a column; others 200


@dataclass
class Row:
    job_id: str
    what: str
    state: str
    epoch_step: str
    latest: str
    best: str
    elapsed: str
    log: str
    note: str = ""  # what is wrong with the run's bookkeeping, or how it died
    metric: tuple[str, str] = DEFAULT_METRIC  # its tracked metric, (name, min|max)
    brief: bool = False  # only its state and best value, for a summary that leaves it out


@dataclass
class Look:
    """What a run's own files say about it, before the scheduler is asked."""

    run: dict[str, Any]    # status.json ({} when absent or unreadable)
    damaged: bool          # status.json exists but cannot be read
    folder: bool           # the run folder exists
    alive: bool | None     # liveness of the process named in status.json
    local_pid: int | None  # the job's process, for a job of a local sweep
    problems: list[str] = field(default_factory=list)


def rows(sweep: Sweep, jobs: list[SubmittedJob], brief: bool = False) -> list[Row]:
    """One row per job, a job with damaged bookkeeping included.

    With `brief`, for a summary (`launcher.followups.status_summary`), only the rows it
    shows are read in full; the others hold their state and best value, which is what
    choosing needs: ten thousand runs' files read in full take a minute. Those of runs
    that ended are kept in the sweep folder between calls (`status_cache`)."""
    if brief:
        from launcher.followups.status_cache import brief_rows

        return brief_rows(sweep, jobs)
    looks = [look_at(sweep, job) for job in jobs]
    live = scheduler.query(scheduler_ids(sweep, jobs, looks))
    return [row_of(sweep, job, look, live) for job, look in zip(jobs, looks, strict=True)]


def scheduler_ids(sweep: Sweep, jobs: list[SubmittedJob], looks: list[Look]) -> list[str]:
    """What to ask the scheduler about: a SLURM sweep's jobs, and the allocations that
    runs started in-process ran in (`allocation_of`)."""
    ids = [j.job_id for j in jobs if not j.problem] if sweep.backend == "slurm" else []
    return ids + [a for a in map(allocation_of, looks) if a]


def brief_row(sweep: Sweep, job: SubmittedJob, look: Look,
              live: dict[str, scheduler.SchedulerState]) -> Row:
    """A job's state and best value, read as quickly as they can be (`glance_best`)."""
    if job.problem:
        return row_of(sweep, job, look, live)
    sched = live.get(job.job_id) if sweep.backend == "slurm" else None
    state = state_of(job, look, sched, live.get(allocation_of(look)))
    metric, best = glance_best(job.run_dir) if look.folder else (DEFAULT_METRIC, "-")
    return Row(job.job_id or "-", "", state, "", "", best, "", "", metric=metric, brief=True)


def look_at(sweep: Sweep, job: SubmittedJob) -> Look:
    local_pid = int(job.job_id) if sweep.backend == "local" and job.job_id.isdigit() else None
    if job.problem:
        return Look({}, False, False, None, local_pid, [job.problem])
    if not os.path.isdir(job.run_dir):  # not started (or gone): nothing in it to read
        return Look({}, False, False, None, local_pid)
    problems: list[str] = []
    run = run_status(job.run_dir, problems)
    damaged = not run and (Path(job.run_dir) / STATUS_FILE).exists()
    alive = liveness.is_alive(run) if run.get("state") in ("running", "requeued") else None
    return Look(run, damaged, True, alive, local_pid, problems)


def allocation_of(look: Look) -> str:
    """The SLURM job a run started in-process ran in, when only SLURM can tell
    whether it still runs (it ran on another host)."""
    job_id = look.run.get("slurm_job_id")
    if look.alive is not None or look.run.get("state") not in ("running", "requeued"):
        return ""
    return str(job_id) if isinstance(job_id, str | int) and not isinstance(job_id, bool) else ""


def row_of(sweep: Sweep, job: SubmittedJob, look: Look,
           live: dict[str, scheduler.SchedulerState]) -> Row:
    from launcher.executors.registry import shown

    if job.problem:
        return Row(job.job_id or "?", "?", DAMAGED, "?", "-", "-", "", "-", job.problem)
    notes = look.problems
    sched = live.get(job.job_id) if sweep.backend == "slurm" else None
    state = state_of(job, look, sched, live.get(allocation_of(look)))
    metric, folder, progress, (latest, best) = DEFAULT_METRIC, Path(job.run_dir), None, "--"
    if look.folder:  # else none of its files exists
        metric = tracked_metric(job.run_dir, notes)
        folder, progress = read_progress(job.run_dir, notes)
        latest, best = metric_values(str(folder), metric, notes)
    until = None
    if state == DIED:
        notes.insert(0, died_note(look.run, progress, job.run_dir))
        until = last_seen(job.run_dir)
    elif state == MISSING:
        notes.insert(0, "run folder does not exist")
    notes[:0] = _cause_notes(job, look, state)
    return Row(job.job_id or "-", shown(job.overrides), state,
               progress_text(job.run_dir, folder, progress), latest, best,
               (sched.elapsed if sched else "") or elapsed_of(look.run, until),
               log_of(job, look), "; ".join(dict.fromkeys(notes)), metric)


def log_of(job: SubmittedJob, look: Look) -> str:
    """The run's run.log once its folder exists; before that (or when the job ended
    without making one) the scheduler's stderr if it was written; else "-"."""
    if look.folder:
        return str(layout.run_log(job.run_dir))
    return job.stderr if job.stderr and Path(job.stderr).is_file() else "-"


def _cause_notes(job: SubmittedJob, look: Look, state: str) -> list[str]:
    """Why a job failed (its exception line), and that it never started when it
    ended without a run folder."""
    notes = []
    if state == CANCELLED and not look.folder:
        notes.append("not started: cancelled while queued")
    elif state in (FAILED, TIMED_OUT) and not look.folder:
        notes.append("not started: the job ended before its run folder was made")
    error = look.run.get("error") if look.run.get("state") == "failed" else None
    error = error if isinstance(error, str) and error else job.error
    if state == FAILED and error:
        notes.append(error.strip().splitlines()[0][:300])
    return notes


def state_of(job: SubmittedJob, look: Look, sched: scheduler.SchedulerState | None,
             allocation: scheduler.SchedulerState | None = None) -> str:
    """Our word for a job's state, from the scheduler and the run's own files.

    How a job ended, once `--wait` recorded it in jobs.json, wins over a scheduler
    answer that lags (sacct still saying RUNNING) and over a run that never said how
    it ended: `launch status` right after `--wait` says what `--wait` said."""
    own = look.run.get("state")
    if job.problem:
        return DAMAGED
    if own == "out_of_retries":
        return OUT_OF_RETRIES
    if job.note and own == "completed":
        return COMPLETED
    settled = settled_word(job.state, own)
    if sched is not None and not (settled and sched.stale):
        return scheduler_word(sched, own)
    if look.damaged:
        return DAMAGED
    if not look.folder:
        if settled and settled != COMPLETED:  # it ended before making its folder
            return settled
        return QUEUED if _may_still_start(job, look) else MISSING
    if settled and own in (None, "running", "requeued"):
        return settled
    if own in (None, "running", "requeued") and _lives(look, allocation) is False:
        return DIED
    return (own or QUEUED).replace("_", " ")


def settled_word(recorded: str, own: str | None) -> str | None:
    """Our word for a final state recorded in jobs.json by `--wait`; None while the
    record says the job has not ended."""
    if recorded == "OUT_OF_RETRIES":
        return OUT_OF_RETRIES
    if recorded == "STOPPED":
        return STOPPED
    if recorded.split()[:1] and recorded.split()[0] in SLURM_ENDED:
        return shown_from_slurm(recorded.split()[0], own)
    return None


def scheduler_word(sched: scheduler.SchedulerState, own: str | None) -> str:
    return shown_from_slurm(sched.state, own, sched.restarts)


def _may_still_start(job: SubmittedJob, look: Look) -> bool:
    """A local job not started yet (no pid), or started a moment ago, has no folder yet."""
    if look.local_pid is not None:
        return liveness.pid_exists(look.local_pid)
    return not job.job_id


def _lives(look: Look, allocation: scheduler.SchedulerState | None) -> bool | None:
    """Whether the run's process lives: its host, pid and start time; else the
    allocation it ran in; else the pid of a local job. None: cannot tell."""
    if look.alive is not None:
        return look.alive
    if allocation is not None:
        return allocation.active
    if look.local_pid is not None:
        return liveness.pid_exists(look.local_pid)
    return None


def render(sweep: Sweep, table: list[Row], show_all: bool = False) -> str:
    """The title counting every job by state, then the rows (a summary of a big sweep
    unless `show_all`: `launcher.followups.status_summary`)."""
    from launcher.followups.status_summary import summarised

    everything, (table, left) = table, summarised(table, show_all)
    header = Row("JOB", "OVERRIDES", "STATE", "EPOCH/STEP", "LATEST", "BEST", "ELAPSED", "LOG",
                 "NOTE")
    header.latest = table[0].metric[0] if table else "metric"
    header.best = "best"
    columns = COLUMNS if any(r.note for r in table) else COLUMNS[:-1]
    cells = [[_clip(getattr(r, f), CLIP.get(f, 200)) for f in columns]
             for r in [header, *table]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip()
             for cell in cells]
    counts: dict[str, int] = {}
    for r in everything:
        counts[r.state] = counts.get(r.state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    title = f"sweep {sweep.sweep_dir} ({sweep.backend}): {summary}"
    return "\n".join([title, *lines, *([left] if left else [])])


def with_search(sweep: Sweep, text: str) -> str:
    """A search's slots, then its trials (`launcher.followups.trials`)."""
    from launcher.bookkeeping import Damaged
    from launcher.followups.trials import load_trials, summary
    from launcher.search.spec import SearchSpec

    try:
        spec = SearchSpec.read(sweep.sweep_dir)
        return text if spec is None else f"{text}\n\n{summary(spec, load_trials(spec))}"
    except Damaged as exc:
        return f"{text}\n\nsearch: note: {exc}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def show(target: str | None, watch: float | None = None, show_all: bool = False) -> int:
    """Print the table once, or every `watch` seconds until every job has ended."""
    from launcher.executors.registry import find

    sweep, jobs = find(target)
    while True:
        table = rows(sweep, jobs, brief=not show_all)
        text = with_search(sweep, render(sweep, table, show_all))
        if watch and os.isatty(1):
            print("\033[2J\033[H", end="")
        print(text, flush=True)
        if not watch:
            return 0
        if all(r.state in FINISHED for r in table):
            return 1 if any(r.state != COMPLETED for r in table) else 0
        time.sleep(watch)
        if not os.isatty(1):
            print()
