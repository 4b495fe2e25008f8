"""`launch status`: one table for a sweep or a run, from any shell, without torch.

Per refresh: one `squeue` and one `sacct` call for all jobs, then small files
from each run directory (status.json, progress.json, the tail of metrics.csv).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

from launcher import scheduler
from launcher.registry import SubmittedJob, Sweep
from launcher.runstate import read_status

FINISHED = ("completed", "failed", "timed out", "cancelled", "out of retries", "stopped")
PROGRESS_FILE = "progress.json"
PHASES_DIR = "phases"  # launcher.curriculum.PHASES_DIR (not imported: it imports more)


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


def rows(sweep: Sweep, jobs: list[SubmittedJob]) -> list[Row]:
    from launcher.registry import shown

    live = scheduler.query([j.job_id for j in jobs]) if sweep.backend == "slurm" else {}
    table = []
    for job in jobs:
        run = read_status(job.run_dir)
        sched = live.get(job.job_id)
        metric = tracked_metric(job.run_dir)
        latest, best = metric_values(str(live_dir(job.run_dir)), metric)
        table.append(Row(job.job_id or "-", shown(job.overrides), state_of(job, run, sched),
                         progress_of(job.run_dir), latest, best,
                         (sched.elapsed if sched else "") or elapsed_of(run),
                         str(Path(job.run_dir) / "run.log")))
    return table


def state_of(job: SubmittedJob, run: dict, sched: scheduler.SchedulerState | None) -> str:
    """Our word for a job's state, from the scheduler and the run's own status file."""
    own = run.get("state")
    if own == "out_of_retries":
        return "out of retries"
    if job.note and own == "completed":
        return "completed"
    if sched is not None:
        word = sched.state
        if word in ("PENDING", "CONFIGURING"):
            return "requeued" if own == "requeued" or sched.restarts else "queued"
        if word in ("RUNNING", "COMPLETING", "SUSPENDED"):
            return "running"
        if word in ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED"):
            return "requeued"
        if word == "COMPLETED":
            return "completed" if own in (None, "completed") else own.replace("_", " ")
        if word == "TIMEOUT":
            return "timed out"
        if word.startswith("CANCELLED"):
            return "cancelled"
        return "failed"
    if own in (None, "running") and job.job_id.isdigit() and not _alive(int(job.job_id)):
        return "failed" if own == "running" else "queued"
    return (own or "queued").replace("_", " ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_dir(run_dir: str) -> Path:
    """Where a run writes its progress and metrics: its folder, or for a run in
    phases (launcher.curriculum), the phase that wrote last."""
    run = Path(run_dir)
    if (run / PROGRESS_FILE).is_file():
        return run
    phases = [p for p in (run / PHASES_DIR).glob("*") if (p / PROGRESS_FILE).is_file()]
    return max(phases, key=lambda p: (p / PROGRESS_FILE).stat().st_mtime_ns, default=run)


def progress_of(run_dir: str) -> str:
    import json

    folder = live_dir(run_dir)
    path = folder / PROGRESS_FILE
    if not path.is_file():
        return "-"
    progress = json.loads(path.read_text())
    phase = f"{folder.name} " if folder != Path(run_dir) else ""
    return f"{phase}{progress.get('epoch', '?')}/{progress.get('max_epochs', '?')} " \
           f"s{progress.get('step', '?')}"


def tracked_metric(run_dir: str) -> tuple[str, str]:
    """The first best_model_criterion of the run (valid/loss, min by default)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if path.is_file():
        criteria = (yaml.safe_load(path.read_text()) or {}).get("best_model_criterion") or []
        if criteria and len(criteria[0]) == 3:
            return str(criteria[0][0]), str(criteria[0][2])
    return "valid/loss", "min"


def metric_history(run_dir: str, metric: str) -> list[tuple[int, float]]:
    """(step, value) for every logged value of `metric` in the run's metrics.csv."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return [(int(float(row.get("step") or 0)), float(row[metric]))
                for row in csv.DictReader(file) if row.get(metric)]


def metric_values(run_dir: str, metric: tuple[str, str]) -> tuple[str, str]:
    history = metric_history(run_dir, metric[0])
    if not history:
        return "-", "-"
    values = [v for _, v in history]
    best = min(values) if metric[1] == "min" else max(values)
    return f"{values[-1]:.4g}", f"{best:.4g}"


def elapsed_of(run: dict) -> str:
    """Wall time of the current attempt, from the run's own status file."""
    started = run.get("started")
    if not started:
        return ""
    fmt = "%Y-%m-%dT%H:%M:%S"
    begin = time.mktime(time.strptime(started, fmt))
    end = time.time() if run.get("state") == "running" else time.mktime(
        time.strptime(run.get("updated", started), fmt))
    seconds = max(0, int(end - begin))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render(sweep: Sweep, table: list[Row]) -> str:
    header = Row("JOB", "OVERRIDES", "STATE", "EPOCH/STEP", "LATEST", "BEST", "ELAPSED", "LOG")
    metric = tracked_metric(table[0].log.rsplit("/", 1)[0])[0] if table else "metric"
    header.latest, header.best = f"{metric}", "best"
    cells = [[_clip(getattr(r, f), 48 if f == "what" else 200) for f in Row.__annotations__]
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
            return 1 if any(r.state != "completed" for r in table) else 0
        time.sleep(watch)
        if not os.isatty(1):
            print()
