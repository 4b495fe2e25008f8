"""A search slot: one job that runs trials one after another until the study has all
of them. Slots pull their next trial the moment one ends, so no slot waits for
another (no batches). Each trial is a run of its own in `<study>/trials/<n>`,
with its config (the launch's, plus the trial's parameters), `run.log`,
checkpoints and status.

A slot stopped mid-trial (preempted, requeued, killed, Ctrl-C) leaves the trial
running in the study; the requeued slot, or a slot of the next launch once the
old one is gone, takes it over and resumes it from its checkpoint.
"""

from __future__ import annotations

import copy
import importlib
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.identity import RUN_KEY
from launcher.search.spec import SearchSpec
from launcher.signals import JobEnds, restart_count
from launcher.status_file import COMPLETED, RUNNING, STOPPED, write_status

log = logging.getLogger("launcher")


def is_slot(cfg: Any) -> bool:
    search = cfg.get("search")
    return search is not None and search.get("slot") is not None


def run_slot(cfg: Any, slot_dir: Path, recipe_dir: Path) -> Any:
    """Run trials until the study has `n_trials`; the slot's folder holds its log."""
    from hydra.core.hydra_config import HydraConfig

    from launcher.job.runlock import identity
    from launcher.job.task import RunResult
    from launcher.search.study import heartbeat, next_trial, open_study, release

    sweep_dir = Path(str(HydraConfig.get().sweep.dir))
    spec = SearchSpec.read(sweep_dir)
    if spec is None:
        raise FileNotFoundError(f"{sweep_dir}/search.json, the search this slot runs")
    slot = int(cfg.search.slot)
    owner = {"sweep": str(sweep_dir), "slot": slot, **identity()}
    write_status(slot_dir, RUNNING, started_trials=[], **identity())
    importlib.import_module("pytorch_lightning")  # before a trial is asked for: its
    # time in the study is then its own, not the seconds torch takes to import
    study = open_study(spec, salt=f"{slot}:{restart_count()}")
    ran: list[int] = []
    log.info("search %s: slot %d of %d, study in %s", spec.study, slot, spec.slots, spec.dir)
    while (claim := next_trial(study, spec, owner)) is not None:
        ran.append(claim.number)
        write_status(slot_dir, RUNNING, started_trials=ran)
        with heartbeat(claim.path, max(1.0, spec.grace_s / 4)):
            run_trial(cfg, study, claim, spec, recipe_dir)
        release(claim)
    log.info("search %s: the study has its %d trials; slot %d ran %s", spec.study,
             spec.n_trials, slot, ", ".join(map(str, ran)) or "none")
    write_status(slot_dir, COMPLETED, started_trials=ran)
    return RunResult(str(slot_dir), None)


@dataclass
class TrialReporter:
    """Reports a trial's metric to the study; steps reported before (by an earlier
    attempt of the trial) are not reported again."""

    trial: Any
    metric: str
    reported: set[int] = field(default_factory=set)

    def report(self, value: float, step: int) -> bool:
        if step not in self.reported and math.isfinite(value):
            self.trial.report(value, step)
            self.reported.add(step)
        return bool(self.trial.should_prune())


def run_trial(cfg: Any, study: Any, claim: Any, spec: SearchSpec, recipe_dir: Path) -> str:
    """Run one trial to its end and tell the study how it ended: complete, pruned
    or failed. A slot ending mid-trial (requeue, stop) leaves it running."""
    from optuna.trial import TrialState

    from launcher.components.callbacks.trial_report import TrialPruned, reporting_to
    from launcher.job import runlock
    from launcher.job.task import run_stages
    from launcher.search.space import params_text

    run_dir = spec.trial_dir(claim.number)
    reporter = TrialReporter(claim.trial, spec.metrics[0], set(claim.reported))
    reporting = reporting_to(reporter) if not spec.multi_objective else nullcontext()
    try:  # Optuna takes no intermediate values (nor prunes) with several metrics
        with runlock.owning(run_dir), trial_log(run_dir), reporting:
            log.info("trial %d of study %s%s: %s (run folder %s)", claim.number, spec.study,
                     ", taken over from a slot that stopped" if claim.resumed else "",
                     params_text(claim.params),
                     run_dir)
            run_stages(trial_config(cfg, claim.params), run_dir, recipe_dir, True)
    except TrialPruned as pruned:
        write_status(run_dir, STOPPED, error=str(pruned))
        study.tell(claim.trial, state=TrialState.PRUNED)
        log.info("trial %d: %s", claim.number, pruned)
        return "pruned"
    except JobEnds:
        raise  # the trial stays running; its slot's next attempt takes it over
    except Exception as exc:  # the trial failed; the study goes on with the next one
        claim.trial.set_user_attr("error", error_line(exc))
        study.tell(claim.trial, state=TrialState.FAIL)
        log.error("trial %d failed: %s (its log: %s)", claim.number, exc,
                  layout.run_log(run_dir))
        return "failed"
    values = trial_values(run_dir, spec)
    if values is None:
        missing = ", ".join(spec.metrics)
        claim.trial.set_user_attr("error", f"the run logged no value of {missing}")
        study.tell(claim.trial, state=TrialState.FAIL)
        log.error("trial %d failed: the run logged no value of %s", claim.number, missing)
        return "failed"
    study.tell(claim.trial, values)
    log.info("trial %d complete: %s", claim.number,
             ", ".join(f"{m} {v:.6g}" for m, v in zip(spec.metrics, values, strict=True)))
    return "complete"


def error_line(exc: Exception) -> str:
    """The failure in one line: a user error's own words, else the exception's type too."""
    from launcher.errors import LauncherError

    text = (str(exc).strip().splitlines() or [""])[0]
    return (text if isinstance(exc, LauncherError) else f"{type(exc).__name__}: {text}")[:500]


def trial_config(cfg: Any, params: dict[str, Any]) -> Any:
    """The launch's config with the trial's parameters, as a run's config (no search)."""
    from omegaconf import OmegaConf, open_dict

    trial = copy.deepcopy(cfg)
    with open_dict(trial):
        trial.pop("search", None)
        trial.pop(RUN_KEY, None)
        for key, value in params.items():
            OmegaConf.update(trial, key, value, merge=False, force_add=True)
    return trial


def trial_values(run_dir: Path, spec: SearchSpec) -> list[float] | None:
    """Each metric's best value in the run's metrics.csv (None if one was never logged)."""
    from launcher.metrics_file import metric_history

    values = []
    for metric, direction in zip(spec.metrics, spec.directions, strict=True):
        logged = [v for _, v in metric_history(str(run_dir), metric, [])
                  if math.isfinite(v)]
        if not logged:
            return None
        values.append(min(logged) if direction == "minimize" else max(logged))
    return values


@contextmanager
def trial_log(run_dir: Path) -> Iterator[None]:
    """The trial's own run.log, besides the slot's log, for as long as it runs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(run_dir / layout.LOG_FILE)
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    handler.setFormatter(files[0].formatter if files else
                         logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - "
                                           "%(message)s"))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
