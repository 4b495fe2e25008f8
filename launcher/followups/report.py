"""`launch report SWEEP`: one CSV row per run and figures that say which setting won.

Written into the sweep folder: report.csv, curves.png (the tracked metric of
every run on one plot, legends naming the overrides) and best_vs_<key>.png
for each swept hyperparameter. A search has its own report
(`launcher.followups.search_report`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from launcher import layout
from launcher.executors.registry import SubmittedJob, Sweep, find
from launcher.followups.status import rows
from launcher.metrics_file import DEFAULT_METRIC, metric_history
from launcher.search.spec import SearchSpec


def overrides_by_key(job: SubmittedJob) -> dict[str, str]:
    from launcher.identity import defines_run, override_key

    return {override_key(o): o.split("=", 1)[1] for o in job.overrides
            if defines_run(o) and "=" in o}


def swept_keys(jobs: list[SubmittedJob]) -> list[str]:
    """The keys whose value differs between the runs."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for key, value in overrides_by_key(job).items():
            values.setdefault(key, set()).add(value)
    return sorted(k for k, v in values.items() if len(v) > 1 or len(jobs) == 1)


def write(target: str | None) -> list[Path]:
    """Write the report; a run whose files cannot be read is a row with a note."""
    sweep, jobs = find(target)
    out = Path(sweep.sweep_dir)
    search = SearchSpec.read(out)
    if search is not None:  # its jobs are slots; the trials are the runs
        from launcher.followups.search_report import write_search_report

        return write_search_report(search, out)
    table = rows(sweep, jobs)
    metric, mode = next((r.metric for j, r in zip(jobs, table, strict=True) if not j.problem),
                        DEFAULT_METRIC)
    keys = swept_keys([j for j in jobs if not j.problem])
    records, histories = [], []
    for job, row in zip(jobs, table, strict=True):
        problems: list[str] = []
        history = metric_history(job.run_dir, metric, problems) if not job.problem else []
        notes = [row.note, *(p for p in problems if p not in row.note)]
        histories.append(history)
        values = [v for _, v in history]
        best = (min(values) if mode == "min" else max(values)) if values else None
        records.append({
            "job_id": row.job_id, **{k: overrides_by_key(job).get(k, "") for k in keys},
            "state": row.state, f"best {metric}": best, f"final {metric}": values[-1]
            if values else None, "epochs": row.epoch_step.split("/")[0]
            if row.epoch_step not in ("-", "?") else "", "wall time": row.elapsed,
            "run_dir": _made(job, row.state), "note": "; ".join(n for n in notes if n)})
    written = [_write_csv(out / layout.REPORT_FILE, records)]
    written.append(_curves(out / layout.CURVES_FILE, sweep, jobs, histories, metric))
    for key in keys:
        written.append(_best_vs(out / f"best_vs_{_slug(key)}.png", key, records, metric, mode))
    for path in written:
        print(f"wrote {path}")
    return written


def _made(job: SubmittedJob, state: str) -> str:
    """The run folder, unless the job never made one (its note says what happened)."""
    from launcher.states import Shown

    return job.run_dir if state == Shown.MISSING or Path(job.run_dir).is_dir() else ""


def _write_csv(path: Path, records: list[dict]) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(records[0]) if records else ["job_id"])
        writer.writeheader()
        writer.writerows(records)
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(path: Path, sweep: Sweep, jobs: list[SubmittedJob],
            histories: list[list[tuple[int, float]]], metric: str) -> Path:
    from launcher.executors.registry import shown

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for job, history in zip(jobs, histories, strict=True):
        if history:
            steps, values = zip(*history, strict=True)
            ax.plot(steps, values, marker="o", markersize=3, label=shown(job.overrides))
    ax.set_xlabel("training step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per run ({Path(sweep.sweep_dir).name})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _best_vs(path: Path, key: str, records: list[dict], metric: str, mode: str) -> Path:
    plt = pyplot()
    points = [(r[key], r[f"best {metric}"]) for r in records if r[f"best {metric}"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    numeric = all(_is_number(x) for x, _ in points)
    if numeric and points:
        xs = [float(x) for x, _ in points]
        ax.scatter(xs, [y for _, y in points])
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
    elif points:
        labels = sorted({x for x, _ in points})
        ax.scatter([labels.index(x) for x, _ in points], [y for _, y in points])
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_xlabel(key)
    ax.set_ylabel(f"best {metric} ({mode})")
    ax.set_title(f"best {metric} against {key}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _slug(key: str) -> str:
    return re.sub(r"[^\w.-]", "_", key)
