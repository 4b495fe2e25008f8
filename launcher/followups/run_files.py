"""What a run's own files say: its status, progress, tracked metric and its history.

Read without torch, from any shell, whatever state the files are in: a damaged
file gives what it can and a one-line note (`launcher.bookkeeping`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.bookkeeping import Damaged, read_json
from launcher.metrics_file import metric_history
from launcher.status_file import STATUS_FILE

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # of `started` and `updated` in status.json


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
    phases (launcher.systems.curriculum), the phase that wrote last."""
    run = Path(run_dir)
    if (run / layout.PROGRESS_FILE).is_file():
        return run
    phases = [p for p in (run / layout.PHASES_DIR).glob("*")
              if (p / layout.PROGRESS_FILE).is_file()]
    return max(phases, key=lambda p: (p / layout.PROGRESS_FILE).stat().st_mtime_ns, default=run)


def read_progress(run_dir: str, problems: list[str] | None = None
                  ) -> tuple[Path, dict[str, Any] | None]:
    """The folder the run writes to now and its progress.json (None when absent)."""
    folder = live_dir(run_dir)
    readout = read_json(folder / layout.PROGRESS_FILE, required=("epoch", "max_epochs", "step"))
    return folder, readout.noted(problems)


def progress_of(run_dir: str, problems: list[str] | None = None) -> str:
    folder, progress = read_progress(run_dir, problems)
    return progress_text(run_dir, folder, progress)


def progress_text(run_dir: str, folder: Path, progress: dict[str, Any] | None) -> str:
    """"epoch/max_epochs s<step>"; "-" before the first, "?" when unreadable."""
    if progress is None:
        return "?" if (folder / layout.PROGRESS_FILE).exists() else "-"
    phase = f"{folder.name} " if folder != Path(run_dir) else ""
    return f"{phase}{progress['epoch']}/{progress['max_epochs']} s{progress['step']}"


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
    files = [Path(run_dir) / STATUS_FILE, live_dir(run_dir) / layout.PROGRESS_FILE]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=None)


def died_note(run: dict[str, Any], progress: dict[str, Any] | None, run_dir: str) -> str:
    step = (progress or {}).get("step", run.get("step"))
    seen = last_seen(run_dir)
    when = f" (last sign of life {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(seen))})" \
        if seen else ""
    where = f"died at step {step}" if step is not None else "died before its first step"
    return where + when
