"""Plan a launch: compose and check every job, name its run folder. Writes nothing.

Everything that can be wrong with the input is found here, before Hydra creates
a run directory or anything is queued, so a rejected launch leaves nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError
from launcher.identity import RunIdentity, identity_of, origin
from launcher.layout import exp_root
from launcher.plan.overrides import expand_sweep
from launcher.plan.recipe import Recipe, compose_sweep, is_config_group
from launcher.status_file import is_complete


@dataclass
class PlannedJob:
    overrides: list[str]  # as the executor receives them
    run_dir: Path
    identity: RunIdentity  # computed here, once; every later part reads it
    config: Any  # the job config, as the System will see it
    composed: Any  # the config as composed from the recipe's files and the overrides


def plan(recipe: Recipe, overrides: Sequence[str], multirun: bool) -> list[PlannedJob]:
    """Compose and check every job. Writes nothing."""
    from launcher.plan.check_cache import user_cache
    from launcher.plan.checks import check
    from launcher.plan.safety import refuse_shell_overrides

    task = [o for o in overrides if not o.startswith("hydra")]
    refuse_shell_overrides(task)
    jobs = expand_sweep(task) if multirun else [task]
    planned, cache = [], user_cache()
    for typed, config in zip(jobs, compose_sweep(recipe, jobs), strict=True):
        identity = identity_of(config, typed, lambda key: is_config_group(recipe, key))
        run_dir = _checked_run_dir(recipe, config, typed, identity.name)  # errors blame `typed`
        planned.append(PlannedJob(typed if multirun else _as_the_sweeper_spells(typed), run_dir,
                                  identity, check(config, recipe, run_dir, typed, cache),
                                  config))
    _check_same_resources(planned)
    return planned


def _as_the_sweeper_spells(overrides: list[str]) -> list[str]:
    """A single run's overrides as an executor receives them from Hydra's sweeper (the
    plan file finds the job by them); as typed where they do not make one job."""
    from launcher.errors import LauncherError

    try:
        jobs = expand_sweep(overrides)
    except LauncherError:
        return overrides
    return jobs[0] if len(jobs) == 1 else overrides


def _checked_run_dir(recipe: Recipe, config: Any, overrides: Sequence[str],
                     name: str) -> Path:
    """The run's folder, once its path and the batch script's setup lines are safe."""
    from launcher.executors.hydra_app import quote
    from launcher.job.config import configured_exp_dir, run_dir_in
    from launcher.plan.safety import check_path, check_setup_lines

    try:
        root = exp_root(recipe.dir, config.get("exp_root"))
        exp_dir = configured_exp_dir(config, recipe.dir)
        for key, folder in (("exp_root", root), ("exp_dir", exp_dir)):
            if folder is not None:
                check_path(folder, key)
                quote(str(folder))  # the folders are handed to Hydra as overrides
        check_setup_lines(config.get("cluster"))
    except ConfigError as exc:
        raise exc.located(origin(exc.key, overrides, recipe.config_file)) from None
    return run_dir_in(exp_dir, root, name)


def _check_same_resources(planned: list[PlannedJob]) -> None:
    first = planned[0].config.get("resources")
    for job in planned[1:]:
        if job.config.get("resources") != first:
            raise ConfigError("the jobs of one sweep ask for different resources",
                              key="resources",
                              hint="sweep hyperparameters, not resources: launch one sweep "
                                   "per resource shape")


def resources_of(job: PlannedJob) -> Any:
    from launcher.resources import Resources

    return Resources.from_config(job.config.get("resources"))


def allocation_refusal(recipe: Recipe, job: PlannedJob, backend: str) -> ConfigError | None:
    """Why the machine or cluster here cannot give what the job asks for, if it cannot."""
    from launcher.plan.allocation import check_allocation
    from launcher.resources import ClusterProfile

    try:
        check_allocation(resources_of(job), backend,
                         ClusterProfile.from_config(job.config.get("cluster")))
    except ConfigError as exc:
        return exc.located(origin(exc.key, job.overrides, recipe.config_file))
    return None


def is_finished(job: PlannedJob) -> bool:
    """Completed before, with the same config as now: not trained again."""
    return is_complete(job.run_dir, job.identity.fingerprint, job.config.get("stages") or ())
