"""`launch report` of a search: `trials.csv`, Optuna's optimisation history, parameter
importances, parallel coordinates and the trials' validation curves as PNGs in the
sweep folder, and the command that reruns the best trial as a plain run."""

from __future__ import annotations

import csv
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.followups.trials import TrialRow, best_rows, load_study, trials_of
from launcher.search.spec import SearchSpec

TRIALS_CSV = "trials.csv"


def write_search_report(spec: SearchSpec, out: Path) -> list[Path]:
    study = load_study(spec)
    rows = [] if study is None else trials_of(spec, study)
    written = [_csv(out / TRIALS_CSV, spec, rows)]
    if any(r.state == "complete" for r in rows):
        for name, plot in _plots(spec).items():
            path = _figure(out / name, study, plot)
            if path is not None:
                written.append(path)
    else:
        print("no figures yet: no trial is complete")
    for path in written:
        print(f"wrote {path}")
    for best in best_rows(spec, rows):
        print(f"best trial {best.number}; rerun it as a plain run with:\n  "
              f"{rerun_command(spec, best)}")
    return written


def rerun_command(spec: SearchSpec, row: TrialRow) -> str:
    from launcher.identity import override_value

    overrides = [o.removeprefix("++") for o in spec.overrides]
    added = {k.lstrip("+") for k in spec.params if k.startswith("+")}
    params = [f"{'+' if k in added else ''}{k}={override_value(v)}" for k, v in row.params.items()]
    return shlex.join(["launch", spec.recipe, *overrides, *params,
                       *([f"--config-name={spec.config_name}"]
                         if spec.config_name != "config" else [])])


def _csv(path: Path, spec: SearchSpec, rows: list[TrialRow]) -> Path:
    keys = [k.lstrip("+") for k in spec.params]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", "state", *spec.metrics, *keys, "epochs", "duration_s",
                         "run_dir", "note"])
        for r in rows:
            values = r.values or [None] * len(spec.metrics)
            writer.writerow([r.number, r.state, *values, *(r.params.get(k) for k in keys),
                             r.epochs, r.duration_s, r.run_dir, r.note])
    return path


def _plots(spec: SearchSpec) -> dict[str, Callable[..., Any]]:
    """File name -> plot; with several metrics each plot shows the first."""
    from optuna.visualization import matplotlib as plots

    target = {} if not spec.multi_objective else {
        "target": lambda t: t.values[0], "target_name": spec.metrics[0]}
    chosen = {
        "history.png": lambda s: plots.plot_optimization_history(s, **target),
        "importance.png": lambda s: plots.plot_param_importances(s, **target),
        "parallel.png": lambda s: plots.plot_parallel_coordinate(s, **target),
    }
    if spec.multi_objective:  # trials report no intermediate values then
        chosen["pareto.png"] = plots.plot_pareto_front
    else:
        chosen["intermediate.png"] = plots.plot_intermediate_values
    return chosen


def _figure(path: Path, study: Any, plot: Callable[..., Any]) -> Path | None:
    """One plot; one that the study cannot give yet (too few complete trials for
    importances) is said, not drawn."""
    import warnings

    from launcher.followups.report import pyplot

    plt = pyplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        try:
            axes = plot(study)
        except (ValueError, RuntimeError) as exc:
            print(f"not drawn: {path.name}: {str(exc).splitlines()[0]}")
            return None
    figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
    figure.set_size_inches(9, 5.5)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

