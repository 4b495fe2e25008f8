"""What a run's own files say: its status, progress, tracked metric and its history.

Read without torch, from any shell, whatever state the files are in: a damaged
file gives what it can and a one-line note (`launcher.bookkeeping`)."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.bookkeeping import Damaged, read_json
from launcher.metrics_file import DEFAULT_METRIC, metric_history
from launcher.status_file import STATUS_FILE

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # of `started` and `updated` in status.json
_PLAIN_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")
# The top-level `best_model_criterion:` entry of a config.yaml, with its indented lines.
_CRITERION = re.compile(r"^best_model_criterion:.*\n?(?:[ -].*\n?)*", re.MULTILINE)


def run_status(run_dir: str, problems: list[str]) -> dict[str, Any]:
    """status.json, with a problem noted (and {} returned) when it cannot be read.

    Fields with a wrong value are noted and left out, so the rest is still used."""
    path = Path(run_dir) / STATUS_FILE
    run = _plain_status(os.path.join(run_dir, STATUS_FILE))
    if run is None:  # absent or damaged: the careful read says which, and how
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


def _plain_status(path: str) -> dict[str, Any] | None:
    """status.json read the quick way (a sweep has thousands); None unless it is a
    readable JSON object with a state."""
    import json

    try:
        with open(path, "rb") as file:
            found = json.loads(file.read().decode("utf-8"))
    except (OSError, ValueError):  # absent or damaged: `run_status` reads it carefully
        return None
    return found if isinstance(found, dict) and "state" in found else None


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of a local time written as TIME_FORMAT; None for anything
    else. The form the launcher writes skips strptime (a sweep has thousands of runs)."""
    if not isinstance(value, str):
        return None
    plain = _PLAIN_TIME.fullmatch(value)
    if plain:
        fields = tuple(map(int, plain.groups()))
        if 1 <= fields[1] <= 12 and 1 <= fields[2] <= _days_in(fields[0], fields[1]) \
                and fields[3] < 24 and fields[4] < 60 and fields[5] < 60:
            return time.mktime((*fields, 0, 0, -1))
    try:
        return time.mktime(time.strptime(value, TIME_FORMAT))
    except ValueError:
        return None


def _days_in(year: int, month: int) -> int:
    import calendar

    return calendar.monthrange(year, month)[1]


def live_dir(run_dir: str) -> Path:
    """Where a run writes its progress and metrics: its folder, or for a run in
    phases (launcher.systems.curriculum), the phase that wrote last."""
    run = Path(run_dir)
    if os.path.isfile(os.path.join(run_dir, layout.PROGRESS_FILE)) or \
            not os.path.isdir(os.path.join(run_dir, layout.PHASES_DIR)):
        return run  # most runs have no phases: no glob (a sweep has thousands)
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


def glance_best(run_dir: str) -> tuple[tuple[str, str], str]:
    """The tracked metric and its best value as `metric_values` shows it ("-" before
    the first), read the quick way for a big sweep's summary: only the config's
    `best_model_criterion` entry is parsed, only the metric's column is read, and a
    damaged file gives what it can without a note (the rows shown read it in full)."""
    metric = _glanced_metric(run_dir)
    values = _column(os.path.join(live_dir(run_dir), layout.METRICS_FILE), metric[0])
    if not values:
        return metric, "-"
    return metric, f"{min(values) if metric[1] == 'min' else max(values):.4g}"


_criteria: dict[str, tuple[str, str]] = {}  # the runs of a sweep mostly share theirs


def _glanced_metric(run_dir: str) -> tuple[str, str]:
    """`tracked_metric` without parsing all of config.yaml: a YAML parser in Python takes
    milliseconds for one, minutes for a sweep of ten thousand."""
    text = _text(os.path.join(run_dir, layout.CONFIG_FILE))
    entry = _CRITERION.search(text) if "best_model_criterion" in text else None
    if entry is None:
        return DEFAULT_METRIC
    if entry.group(0) not in _criteria:
        import yaml

        try:
            config = yaml.safe_load(entry.group(0))
        except yaml.YAMLError:  # as a damaged config.yaml: the default metric
            config = None
        criteria = config.get("best_model_criterion") if isinstance(config, dict) else None
        first = criteria[0] if isinstance(criteria, list) and criteria else None
        _criteria[entry.group(0)] = (str(first[0]), str(first[2])) \
            if isinstance(first, list | tuple) and len(first) == 3 else DEFAULT_METRIC
    return _criteria[entry.group(0)]


def _column(path: str, metric: str) -> list[float]:
    """The values of one column of metrics.csv at finite steps, as `metric_history`
    reads them (a last line cut short is left out), without a dict per row: a sweep
    has thousands of these files, each a row per logging step."""
    text = _text(path)
    if not text.endswith(("\n", "\r")):
        text = text[:text.rfind("\n") + 1]
    table = list(csv.reader(io.StringIO(text, newline="")))
    if not table or metric not in table[0]:
        return []
    column, step = table[0].index(metric), _index(table[0], "step")
    steps = "".join([row[step] for row in table[1:] if len(row) > step])
    try:
        if not steps or steps.isdigit():  # whole steps (the rule): finite, nothing to check
            return [float(row[column]) for row in table[1:] if len(row) > column and row[column]]
    except ValueError:  # a value that is not a number (damaged): row by row, below
        pass
    return [float(row[column]) for row in table[1:]
            if len(row) > column and _number(row[column]) is not None
            and (len(row) <= step or _finite(row[step] or "0"))]


def _index(header: list[str], name: str) -> int:
    return header.index(name) if name in header else len(header)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _finite(text: str) -> bool:
    number = _number(text)
    return number is not None and math.isfinite(number)


def _text(path: str) -> str:
    """A file's text; "" when it is absent or cannot be read: a summary counts such a
    run without a best value, and its row, when shown, names the problem."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""
