"""A run's tracked metric and its history in metrics.csv, read without torch.

The tracked metric is the first `best_model_criterion` of the run's config
(`valid/loss`, min, without one). A damaged file gives what it can, with a
one-line note (`launcher.bookkeeping`): the status table, the report and an
optimising sweeper all read it."""

from __future__ import annotations

import math
from pathlib import Path

from launcher import layout
from launcher.bookkeeping import Damaged, Readout, read_csv, read_yaml

DEFAULT_METRIC = ("valid/loss", "min")


def tracked_metric(run_dir: str, problems: list[str] | None = None) -> tuple[str, str]:
    """The first best_model_criterion of the run (valid/loss, min by default)."""
    config = read_yaml(Path(run_dir) / layout.CONFIG_FILE, absent={}).noted(problems) or {}
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
    path = Path(run_dir) / layout.METRICS_FILE
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


def best_value(run_dir: str | Path) -> float | None:
    """The best value of the run's tracked metric; None before any was logged."""
    problems: list[str] = []  # a damaged metrics.csv gives what it can; status notes it
    metric, mode = tracked_metric(str(run_dir), problems)
    values = [v for _, v in metric_history(str(run_dir), metric, problems)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
