"""A search's trials as `launch status` shows them: read from the study's journal,
with each trial's run folder, log and, for a failed one, its error line.

A running trial whose slot is gone (killed, its job cancelled) is shown as
`orphaned`: the next launch of the same search takes it over and resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.bookkeeping import Damaged
from launcher.search.space import params_text
from launcher.search.spec import SearchSpec

STATES = ("running", "orphaned", "complete", "pruned", "failed", "waiting")


@dataclass
class TrialRow:
    number: int
    state: str
    values: list[float] | None
    params: dict[str, Any]
    epochs: int  # validations reported to the study
    run_dir: Path
    note: str = ""
    duration_s: float | None = None

    @property
    def log(self) -> Path:
        return layout.run_log(self.run_dir)


def load_study(spec: SearchSpec) -> Any:
    """The study; None before the first slot created it."""
    if not spec.journal.is_file():
        return None
    import optuna

    from launcher.search.study import storage_of

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=spec.study, storage=storage_of(spec))
    except KeyError:
        return None  # the journal has other studies, not this one yet
    except (ValueError, RuntimeError) as exc:
        raise Damaged(spec.journal, f"Optuna cannot read it: {exc}") from None


def load_trials(spec: SearchSpec) -> list[TrialRow]:
    """Every trial of the study, in order; none before the first slot started."""
    study = load_study(spec)
    return [] if study is None else trials_of(spec, study)


def trials_of(spec: SearchSpec, study: Any) -> list[TrialRow]:
    from launcher.search.study import is_abandoned

    rows = []
    for trial in study.get_trials(deepcopy=False):
        state = trial.state.name.lower().replace("fail", "failed")
        if state == "running" and is_abandoned(spec.claims / f"{trial.number}.json",
                                               spec.grace_s):
            state = "orphaned"
        duration = trial.duration.total_seconds() if trial.duration else None
        note = str(trial.user_attrs.get("error", "")) if state == "failed" else ""
        if state == "orphaned":
            note = "its slot is gone; launching the search again resumes it"
        rows.append(TrialRow(trial.number, state, list(trial.values) if trial.values else None,
                             dict(trial.params), len(trial.intermediate_values),
                             spec.trial_dir(trial.number), note, duration))
    return rows


def best_rows(spec: SearchSpec, rows: list[TrialRow]) -> list[TrialRow]:
    """The best trial; for several metrics, the trials no other trial beats on all."""
    done = [r for r in rows if r.state == "complete" and r.values]
    if not done:
        return []
    signs = [1.0 if d == "minimize" else -1.0 for d in spec.directions]

    def key(row: TrialRow) -> list[float]:
        return [s * v for s, v in zip(signs, row.values or [], strict=True)]

    if not spec.multi_objective:
        return [min(done, key=key)]
    return [r for r in done if not any(_dominates(key(o), key(r)) for o in done)]


def _dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def values_text(spec: SearchSpec, values: list[float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{m} {v:.6g}" for m, v in zip(spec.metrics, values, strict=True))


def summary(spec: SearchSpec, rows: list[TrialRow]) -> str:
    """The study's trials by state, the best so far, then one line per trial."""
    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    told = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [f"search '{spec.study}' ({spec.dir}): {len(rows)} of {spec.n_trials} trials"
             + (f": {told}" if told else "; none started yet")]
    label = "on the Pareto front so far" if spec.multi_objective else "best so far"
    for best in best_rows(spec, rows):
        lines.append(f"{label}: trial {best.number}: {values_text(spec, best.values)}  "
                     f"{params_text(best.params)}  ({best.run_dir})")
    table = [("TRIAL", "STATE", "VALUE", "EPOCHS", "PARAMS", "LOG", "NOTE")]
    for r in rows:
        table.append((str(r.number), r.state, values_text(spec, r.values),
                      str(r.epochs) if r.epochs else "-", params_text(r.params), str(r.log),
                      r.note))
    if len(table) > 1:
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                  for row in table]
    return "\n".join(lines)


def search_summary(sweep_dir: Path) -> str | None:
    """The summary of the search a sweep folder holds; None for any other sweep."""
    spec = SearchSpec.read(sweep_dir)
    return None if spec is None else summary(spec, load_trials(spec))
