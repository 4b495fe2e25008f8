"""Plan a launch: compose and check every job, name its run folder. Writes nothing.

Everything that can be wrong with the input is found here, before Hydra creates
a run directory or anything is queued, so a rejected launch leaves nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError
from launcher.identity import RunIdentity, identity_of, origin
from launcher.layout import exp_root
from launcher.plan.overrides import expand_sweep
from launcher.plan.recipe import Recipe, compose, is_config_group
from launcher.status_file import is_complete


class Later:
    """A value made when first asked for: the config of a job of a sweep over values is
    made only if something reads it (`launcher.plan.planning_shape`)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make: Callable[[], Any] | None = make
        self._value: Any = None

    def __call__(self) -> Any:
        if self._make is not None:
            self._value, self._make = self._make(), None
        return self._value


@dataclass
class PlannedJob:
    overrides: list[str]  # as the executor receives them
    run_dir: Path
    identity: RunIdentity  # computed here, once; every later part reads it
    _config: Any  # the job config, as the System will see it (or a Later that makes it)
    _composed: Any  # the config as composed from the recipe's files and the overrides
    # The values at the keys where it differs from the first job, when that is all (a
    # sweep over values); and whether its settings are the first job's (checked once).
    changes: dict[str, Any] | None = None
    settings_of_first: bool = False

    @property
    def config(self) -> Any:
        return self._config() if isinstance(self._config, Later) else self._config

    @property
    def composed(self) -> Any:
        return self._composed() if isinstance(self._composed, Later) else self._composed


def plan(recipe: Recipe, overrides: Sequence[str], multirun: bool) -> list[PlannedJob]:
    """Compose and check every job. Writes nothing. A sweep over values is checked in
    full for its first job, and for each other job in what may differ from it
    (`launcher.plan.planning_shape`)."""
    from launcher.plan.check_cache import key_of, user_cache
    from launcher.plan.planning_shape import sweep_shape
    from launcher.plan.planning_values import value_sweep
    from launcher.plan.safety import refuse_shell_overrides

    task = [o for o in overrides if not o.startswith("hydra")]
    refuse_shell_overrides(task)
    jobs = expand_sweep(task) if multirun else [task]
    sweep = value_sweep(recipe, jobs)
    composed = [compose(recipe, job) for job in jobs] if sweep is None else None
    planned, cache, shape = [], user_cache(), None
    for i, typed in enumerate(jobs):
        job = shape.planned(i, typed) if shape is not None else None
        if job is None:
            config = composed[i] if sweep is None else sweep.composed(i)
            job = _planned(recipe, config, typed, cache)
            job.overrides = typed if multirun else _as_the_sweeper_spells(typed)
            job.changes = sweep.changes(i) if sweep is not None and i > 0 else None
        planned.append(job)
        if i == 0 and sweep is not None:
            shape = sweep_shape(recipe, sweep, job,
                                lambda config: cache.passed(key_of(config, recipe.dir)))
    _check_same_resources(planned)
    return planned


def _planned(recipe: Recipe, config: Any, overrides: list[str], cache: Any) -> PlannedJob:
    """One job, checked in full (errors blame `overrides`)."""
    from launcher.plan.checks import check

    identity = identity_of(config, overrides, lambda key: is_config_group(recipe, key))
    run_dir = _checked_run_dir(recipe, config, overrides, identity.name)
    return PlannedJob(overrides, run_dir, identity,
                      check(config, recipe, run_dir, overrides, cache), config)


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
    for job in (job for job in planned[1:] if not job.settings_of_first):
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
    """Completed before, with the same config as now: not trained again. (The stages are
    read only then: a job of a sweep over values makes its config only when asked.)"""
    return is_complete(job.run_dir, job.identity.fingerprint) and \
        is_complete(job.run_dir, job.identity.fingerprint, job.config.get("stages") or ())
