"""Hydra as the launcher drives it: one run, or a multirun through a launcher plugin.

The recipe's conf/ is the primary config folder; the launcher's own groups sit
behind it. Where runs and sweeps go is decided by the launcher, not by
Hydra's defaults: a single run's folder is `hydra.run.dir`, a sweep's
bookkeeping goes to `hydra.sweep.dir` and each of its jobs to the folder its
plan names (`launcher.executors.plan_file`). Each job's identity travels in
its config (`run_identity`), computed once while planning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.conf import SEARCH_PATH
from launcher.errors import ConfigError
from launcher.identity import RUN_KEY, RunIdentity
from launcher.job.espnet3_resolvers import register_espnet3_resolvers
from launcher.job.log_files import FILENAME, register_log_name_resolver


def quote(value: str) -> str:
    """A Hydra override value that is taken literally."""
    if any(c in value for c in ("'", "\\", "${")):
        raise ConfigError(f"the path {value!r} contains a quote, a backslash or '${{'",
                          key="exp_root", hint="choose a plainer exp_root")
    return f"'{value}'"


def where_runs_go(sweep_dir: Path, run_dir: Path | None = None) -> list[str]:
    """Hydra's folders and log file, as the launcher decides them."""
    chosen = [f"hydra.run.dir={quote(str(run_dir))}"] if run_dir is not None else []
    return [*chosen, f"hydra.sweep.dir={quote(str(sweep_dir))}", "hydra.job.name=run",
            f"hydra.job_logging.handlers.file.filename={FILENAME}", SEARCH_PATH]


def overrides_for_run(run_dir: Path, identity: RunIdentity) -> list[str]:
    """What a job of a sweep is given besides its own overrides: its folder and identity."""
    return [f"hydra.sweep.subdir={quote(str(run_dir))}",
            f"++{RUN_KEY}.name={quote(identity.name)}",
            f"++{RUN_KEY}.fingerprint={identity.fingerprint}"]


def identity_overrides(identity: RunIdentity) -> list[str]:
    return overrides_for_run(Path("."), identity)[1:]


def best_trial(sweep_dir: Path) -> str:
    from omegaconf import OmegaConf

    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        raise ConfigError(f"the sweeper wrote no results to {path}")
    results = OmegaConf.load(path)
    best = results.get("best_params") or {}
    value = results.get("best_value", results.get("best_values"))
    params = " ".join(f"{k}={v}" for k, v in best.items())
    return f"best trial: {params} -> {value}\nall trials: {sweep_dir}/jobs.json, {path}"


def run_hydra(conf_dir: Path, config_name: str, overrides: Sequence[str],
              multirun: bool) -> list | None:
    """Run Hydra's single run or multirun of the task function; a failure of the single
    run is raised here as itself."""
    from hydra import version
    from hydra.core.global_hydra import GlobalHydra

    from launcher.compat.hydra import main_hydra
    from launcher.job.task import run_job
    from launcher.snapshot.use import source_recipe_dir

    version.setbase("1.3")
    register_log_name_resolver()
    register_espnet3_resolvers(source_recipe_dir(conf_dir))  # the jobs register them again
    GlobalHydra.instance().clear()
    hydra = main_hydra(conf_dir, task_name="run")
    try:
        if multirun:
            results = hydra.multirun(config_name=config_name, task_function=run_job,
                                     overrides=list(overrides))
            return None if results is None else [r for batch in results for r in batch]
        failure: list[BaseException] = []
        result = hydra.run(config_name=config_name, task_function=_keeping(failure),
                           overrides=list(overrides))
        if failure:  # raised here, where the CLI turns it into one line
            raise failure[0]
        return [result]
    finally:
        GlobalHydra.instance().clear()


def _keeping(failure: list[BaseException]) -> Any:
    """The task function, its exception kept instead of raised through Hydra, which
    would print its own 'Error executing job' line before re-raising."""
    from launcher.job.task import run_job

    def task(cfg: Any) -> Any:
        try:
            return run_job(cfg)
        except BaseException as exc:  # re-raised by run_hydra once Hydra has finished
            failure.append(exc)
            return None

    return task
