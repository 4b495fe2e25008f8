"""`launch status`: one table for a sweep or a run, from any shell, without torch.

Per refresh: one `squeue` and one `sacct` call for all jobs, then small files
from each run directory (status.json, progress.json, the tail of metrics.csv).
A file that cannot be read does not stop the table: its run is shown with
what could be read and a note naming the file and the problem.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import liveness, scheduler
from launcher.bookkeeping import Damaged, Readout, read_csv, read_json, read_yaml
from launcher.registry import SubmittedJob, Sweep
from launcher.runstate import STATUS_FILE

# The words for a job's state, here and in every follow-up command.
QUEUED, RUNNING, REQUEUED = "queued", "running", "requeued"
COMPLETED, FAILED, TIMED_OUT, CANCELLED = "completed", "failed", "timed out", "cancelled"
OUT_OF_RETRIES, STOPPED = "out of retries", "stopped"
DIED = "died"          # its process is gone, and it never recorded how it ended
MISSING = "missing"    # its run folder does not exist
DAMAGED = "damaged"    # its bookkeeping cannot be read, so its state is unknown
# States that do not change by themselves: `--watch` stops, `launch cancel` leaves them.
FINISHED = (COMPLETED, FAILED, TIMED_OUT, CANCELLED, OUT_OF_RETRIES, STOPPED, DIED, MISSING,
            DAMAGED)
RETRYABLE = (FAILED, CANCELLED, TIMED_OUT, OUT_OF_RETRIES, STOPPED, DIED)

PROGRESS_FILE = "progress.json"
PHASES_DIR = "phases"  # launcher.curriculum.PHASES_DIR (not imported: it imports more)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # of `started` and `updated` in status.json
DEFAULT_METRIC = ("valid/loss", "min")
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


@dataclass
class Look:
    """What a run's own files say about it, before the scheduler is asked."""

    run: dict[str, Any]    # status.json ({} when absent or unreadable)
    damaged: bool          # status.json exists but cannot be read
    folder: bool           # the run folder exists
    alive: bool | None     # liveness of the process named in status.json
    local_pid: int | None  # the job's process, for a job of a local sweep
    problems: list[str] = field(default_factory=list)


def rows(sweep: Sweep, jobs: list[SubmittedJob]) -> list[Row]:
    """One row per job, a job with damaged bookkeeping included."""
    looks = [look_at(sweep, job) for job in jobs]
    ids = [j.job_id for j in jobs if not j.problem] if sweep.backend == "slurm" else []
    ids += [a for a in map(allocation_of, looks) if a]
    live = scheduler.query(ids)
    return [row_of(sweep, job, look, live) for job, look in zip(jobs, looks, strict=True)]


def look_at(sweep: Sweep, job: SubmittedJob) -> Look:
    local_pid = int(job.job_id) if sweep.backend == "local" and job.job_id.isdigit() else None
    if job.problem:
        return Look({}, False, False, None, local_pid, [job.problem])
    problems: list[str] = []
    run = run_status(job.run_dir, problems)
    damaged = not run and (Path(job.run_dir) / STATUS_FILE).exists()
    alive = liveness.is_alive(run) if run.get("state") in ("running", "requeued") else None
    return Look(run, damaged, Path(job.run_dir).is_dir(), alive, local_pid, problems)


def allocation_of(look: Look) -> str:
    """The SLURM job a run started in-process ran in, when only SLURM can tell
    whether it still runs (it ran on another host)."""
    job_id = look.run.get("slurm_job_id")
    if look.alive is not None or look.run.get("state") not in ("running", "requeued"):
        return ""
    return str(job_id) if isinstance(job_id, str | int) and not isinstance(job_id, bool) else ""


def row_of(sweep: Sweep, job: SubmittedJob, look: Look,
           live: dict[str, scheduler.SchedulerState]) -> Row:
    from launcher.registry import shown

    if job.problem:
        return Row(job.job_id or "?", "?", DAMAGED, "?", "-", "-", "", "-", job.problem)
    notes = look.problems
    sched = live.get(job.job_id) if sweep.backend == "slurm" else None
    state = state_of(job, look, sched, live.get(allocation_of(look)))
    metric = tracked_metric(job.run_dir, notes)
    folder, progress = read_progress(job.run_dir, notes)
    latest, best = metric_values(str(folder), metric, notes)
    until = None
    if state == DIED:
        notes.insert(0, died_note(look.run, progress, job.run_dir))
        until = last_seen(job.run_dir)
    elif state == MISSING:
        notes.insert(0, "run folder does not exist")
    return Row(job.job_id or "-", shown(job.overrides), state,
               progress_text(job.run_dir, folder, progress), latest, best,
               (sched.elapsed if sched else "") or elapsed_of(look.run, until),
               str(Path(job.run_dir) / "run.log"), "; ".join(dict.fromkeys(notes)), metric)


def state_of(job: SubmittedJob, look: Look, sched: scheduler.SchedulerState | None,
             allocation: scheduler.SchedulerState | None = None) -> str:
    """Our word for a job's state, from the scheduler and the run's own files."""
    own = look.run.get("state")
    if job.problem:
        return DAMAGED
    if own == "out_of_retries":
        return OUT_OF_RETRIES
    if job.note and own == "completed":
        return COMPLETED
    if sched is not None:
        return scheduler_word(sched, own)
    if look.damaged:
        return DAMAGED
    if not look.folder:
        return QUEUED if _may_still_start(job, look) else MISSING
    if own in (None, "running", "requeued") and _lives(look, allocation) is False:
        return DIED
    return (own or QUEUED).replace("_", " ")


def scheduler_word(sched: scheduler.SchedulerState, own: str | None) -> str:
    word = sched.state
    if word in ("PENDING", "CONFIGURING"):
        return REQUEUED if own == "requeued" or sched.restarts else QUEUED
    if word in ("RUNNING", "COMPLETING", "SUSPENDED"):
        return RUNNING
    if word in ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED"):
        return REQUEUED
    if word == "COMPLETED":
        if own in ("running", "requeued"):
            return DIED  # the job ended, the run never recorded how
        return COMPLETED if own in (None, "completed") else own.replace("_", " ")
    if word == "TIMEOUT":
        return TIMED_OUT
    if word.startswith("CANCELLED"):
        return CANCELLED
    return FAILED


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


def run_status(run_dir: str, problems: list[str]) -> dict[str, Any]:
    """status.json, with a problem noted (and {} returned) when it cannot be read.

    Fields with a wrong value are noted and left out, so the rest is still used."""
    path = Path(run_dir) / STATUS_FILE
    run = read_json(path, absent={}, required=("state",)).noted(problems)
    if run and not isinstance(run["state"], str):
        problems.append(str(Damaged(path, "field 'state' is not a string")))
        return {}
    for name in ("started", "updated"):
        if name in run and parse_time(run[name]) is None:
            problems.append(str(Damaged(path, f"field '{name}' is not a time "
                                              f"like 2024-01-31T12:00:00")))
            run = {k: v for k, v in run.items() if k != name}
    return run


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return time.mktime(time.strptime(value, TIME_FORMAT))
    except ValueError:
        return None


def live_dir(run_dir: str) -> Path:
    """Where a run writes its progress and metrics: its folder, or for a run in
    phases (launcher.curriculum), the phase that wrote last."""
    run = Path(run_dir)
    if (run / PROGRESS_FILE).is_file():
        return run
    phases = [p for p in (run / PHASES_DIR).glob("*") if (p / PROGRESS_FILE).is_file()]
    return max(phases, key=lambda p: (p / PROGRESS_FILE).stat().st_mtime_ns, default=run)


def read_progress(run_dir: str, problems: list[str] | None = None
                  ) -> tuple[Path, dict[str, Any] | None]:
    """The folder the run writes to now and its progress.json (None when absent)."""
    folder = live_dir(run_dir)
    readout = read_json(folder / PROGRESS_FILE, required=("epoch", "max_epochs", "step"))
    return folder, readout.noted(problems)


def progress_of(run_dir: str, problems: list[str] | None = None) -> str:
    folder, progress = read_progress(run_dir, problems)
    return progress_text(run_dir, folder, progress)


def progress_text(run_dir: str, folder: Path, progress: dict[str, Any] | None) -> str:
    """"epoch/max_epochs s<step>"; "-" before the first, "?" when unreadable."""
    if progress is None:
        return "?" if (folder / PROGRESS_FILE).exists() else "-"
    phase = f"{folder.name} " if folder != Path(run_dir) else ""
    return f"{phase}{progress['epoch']}/{progress['max_epochs']} s{progress['step']}"


def tracked_metric(run_dir: str, problems: list[str] | None = None) -> tuple[str, str]:
    """The first best_model_criterion of the run (valid/loss, min by default)."""
    config = read_yaml(Path(run_dir) / "config.yaml", absent={}).noted(problems) or {}
    criteria = config.get("best_model_criterion")
    if isinstance(criteria, list) and criteria and isinstance(criteria[0], list | tuple) \
            and len(criteria[0]) == 3:
        return str(criteria[0][0]), str(criteria[0][2])
    return DEFAULT_METRIC


def metric_history(run_dir: str, metric: str,
                   problems: list[str] | None = None) -> list[tuple[int, float]]:
    """(step, value) for every logged value of `metric` in the run's metrics.csv.

    With `problems`, a damaged file gives the values that could be read and a
    note; without, it raises `Damaged`."""
    path = Path(run_dir) / "metrics.csv"
    history, bad = [], []
    for line, row in read_csv(path).noted(problems):
        if not row.get(metric):
            continue
        value, step = _number(row[metric]), _number(row.get("step") or "0")
        if value is None or step is None or not math.isfinite(step):
            wrong = row[metric] if value is None else row.get("step")
            bad.append(Damaged(path, f"line {line}: {wrong!r} is not a number"))
            continue
        history.append((int(step), value))
    return Readout(history, bad[0] if bad else None).noted(problems)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def metric_values(run_dir: str, metric: tuple[str, str],
                  problems: list[str] | None = None) -> tuple[str, str]:
    history = metric_history(run_dir, metric[0], problems)
    if not history:
        return "-", "-"
    values = [v for _, v in history]
    best = min(values) if metric[1] == "min" else max(values)
    return f"{values[-1]:.4g}", f"{best:.4g}"


def elapsed_of(run: dict[str, Any], until: float | None = None) -> str:
    """Wall time of the current attempt, from the run's own status file: until now
    while it runs, until `until` when given (a dead run's last sign of life)."""
    begin = parse_time(run.get("started"))
    if begin is None:
        return ""
    if until is None:
        until = time.time() if run.get("state") == "running" else \
            parse_time(run.get("updated")) or begin
    seconds = max(0, int(until - begin))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def last_seen(run_dir: str) -> float | None:
    """When a run last wrote its status or progress: the last sign of its process."""
    files = [Path(run_dir) / STATUS_FILE, live_dir(run_dir) / PROGRESS_FILE]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=None)


def died_note(run: dict[str, Any], progress: dict[str, Any] | None, run_dir: str) -> str:
    step = (progress or {}).get("step", run.get("step"))
    seen = last_seen(run_dir)
    when = f" (last sign of life {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(seen))})" \
        if seen else ""
    where = f"died at step {step}" if step is not None else "died before its first step"
    return where + when


def render(sweep: Sweep, table: list[Row]) -> str:
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
    for r in table:
        counts[r.state] = counts.get(r.state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    title = f"sweep {sweep.sweep_dir} ({sweep.backend}): {summary}"
    return "\n".join([title, *lines])


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def show(target: str | None, watch: float | None = None) -> int:
    """Print the table once, or every `watch` seconds until every job has ended."""
    from launcher.registry import find

    sweep, jobs = find(target)
    while True:
        table = rows(sweep, jobs)
        text = render(sweep, table)
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
