"""Plan the jobs of a sweep over values from its first job, which is checked in full.

Checking a job costs milliseconds of OmegaConf work, and a sweep may have ten
thousand. A job of a sweep over values (`launcher.plan.planning_values`) is
the first job with other numbers at a few keys. When those keys are not the
launcher's settings (resources, cluster, requeue, best_model_criterion, the
Trainer, the stages, where runs go), no interpolation reads them, and each
job's numbers have the first job's types, every check reads in each job what
it read in the first one: the settings and every interpolation are the same,
and the check key (`launcher.plan.check_cache`, which holds a number's type,
not its value) is the first job's, whose pass is remembered. What does
differ is computed per job, as for the first: the run's name and
fingerprint, its folder, and the statistics files that folder would hold.
Anything that cannot be shown to be the same (a string, another type, an
interpolation that reads the values or a Trainer that reads the run folder,
a System of the recipe's own, whose `check_config` may read anything, a pass
that was not remembered) is planned and checked in full, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError
from launcher.identity import (
    RUN_KEY,
    Fingerprints,
    RunIdentity,
    defines_run,
    defining_value,
    name_of,
    origin,
    override_key,
)
from launcher.job.config import PER_JOB_KEYS, run_dir_in
from launcher.layout import STATS_DIR
from launcher.plan.planning import Later, PlannedJob
from launcher.plan.planning_taint import links, reached, within
from launcher.plan.planning_values import ValueSweep
from launcher.plan.recipe import Recipe, is_config_group

# Keys whose values the launcher reads to plan, place or run a job (`callbacks` and
# `logger`: a Lightning app's Trainer settings): a sweep over them is planned job by job.
SETTING_ROOTS = ("resources", "cluster", "requeue", "best_model_criterion", "trainer",
                 "stages", "num_nodes", "num_device", "exp_root", "exp_dir", "run_dir",
                 "recipe_dir", "stats_dir", "exp_tag", "snapshot", "search", "resume",
                 "hydra", "system", "task", "callbacks", "logger", RUN_KEY)
OPTIMIZER_ROOTS = ("model", "optims", "optimizers")  # key_of resolves them, see there


@dataclass
class SweepShape:
    """What the jobs of a sweep over values share with its first job, checked once."""
    recipe: Recipe
    sweep: ValueSweep
    fingerprint: Fingerprints  # of the first job's composed config with other values
    types: list[type]  # of the first job's values
    names: list[tuple[int, tuple[str, Any] | None]]  # (override, its defining pair or None
    # where it varies) for each override that defines the run
    root: Path
    exp_dir: Path | None
    statistics: Callable[[Path], None] | None

    def planned(self, i: int, overrides: list[str]) -> PlannedJob | None:
        """Job `i`, planned from the first; None when it must be planned in full."""
        values = self.sweep.values[i]
        if values is None or any(type(v) is not t for v, t in zip(values, self.types,
                                                                   strict=True)):
            return None
        changes = dict(zip(self.sweep.keys, values, strict=True))
        name = name_of([pair or (override_key(overrides[j]), changes[override_key(overrides[j])])
                        for j, pair in self.names])
        run_dir = run_dir_in(self.exp_dir, self.root, name)
        if self.statistics is not None:
            try:
                self.statistics(run_dir)
            except ConfigError as exc:
                raise exc.located(origin(exc.key, overrides, self.recipe.config_file)) from None
        composed = Later(lambda: self.sweep.composed(i))
        config = Later(lambda: _job_config(composed(), self.recipe.dir, run_dir))
        identity = RunIdentity(name, self.fingerprint(values))
        return PlannedJob(overrides, run_dir, identity, config, composed, changes, True)


def sweep_shape(recipe: Recipe, sweep: ValueSweep, first: PlannedJob,
                passed: Callable[[Any], bool]) -> SweepShape | None:
    """The shape of a sweep whose first job passed its checks; None when its other jobs
    must be checked in full. `passed(job config)`: whether the check cache holds a pass
    of the first job's imports (a pass that compared numbers is not remembered)."""
    from omegaconf import OmegaConf

    from launcher.components.modeling.optimizer_config import named_optimizers
    from launcher.components.selection import COMPONENTS, target_of
    from launcher.job.config import configured_exp_dir
    from launcher.layout import exp_root

    keys = sweep.keys
    plain = OmegaConf.to_container(sweep.first, resolve=False)
    read = links(plain)
    per_job = reached(read, PER_JOB_KEYS)
    others = [override_key(o) for j, o in enumerate(sweep.jobs[0]) if j not in sweep.varying]
    if sweep.values[0] is None or any(k.split(".")[0] in SETTING_ROOTS for k in keys) \
            or reached(read, keys) != set(keys) or within("trainer", per_job) \
            or any(within(o, keys) for o in others) \
            or target_of(plain, "system") != COMPONENTS["system"].default \
            or (named_optimizers(plain) and any(within(r, [*keys, *per_job])
                                                for r in OPTIMIZER_ROOTS)) \
            or not passed(first.config):
        return None
    statistics = _statistics(first.config, recipe.dir, per_job)
    if statistics is False:
        return None
    names = [(j, None if j in sweep.varying
              else defining_value(sweep.first, o, lambda key: is_config_group(recipe, key)))
             for j, o in enumerate(sweep.jobs[0]) if defines_run(o)]
    return SweepShape(recipe, sweep, Fingerprints(plain, keys),
                      [type(v) for v in sweep.values[0]], names,
                      exp_root(recipe.dir, sweep.first.get("exp_root")),
                      configured_exp_dir(sweep.first, recipe.dir), statistics)


def _statistics(job: Any, recipe_dir: Path,
                per_job: set[str]) -> Callable[[Path], None] | bool | None:
    """`check_statistics` for a copy in `run_dir`: None when the stages read no
    statistics; False when a path other than the run's folder differs between jobs."""
    from launcher.plan.stage_needs import (
        path_values,
        reads_statistics,
        refuse_uncollected,
        resolved,
        stages_of,
        stats_folder,
    )

    stages = stages_of(job)
    if not reads_statistics(stages):
        return None
    entries = [(k, str(p)) for k, p in path_values(job, recipe_dir)]
    if set(per_job) - set(PER_JOB_KEYS) or not set(PER_JOB_KEYS) <= {k for k, _ in entries}:
        return False
    configured = resolved(job, "stats_dir")
    fixed = str(stats_folder(configured, recipe_dir, job["run_dir"])) if configured else None
    real = _RealPaths()

    def check(run_dir: Path) -> None:
        own = real.of(run_dir)
        folder = fixed or real.joined(own, STATS_DIR)
        paths = [(k, own if k in PER_JOB_KEYS else p) for k, p in entries]
        if any(p.startswith(folder) for _, p in paths):  # else none is in it: passed
            refuse_uncollected(stages, Path(folder), [(k, Path(p)) for k, p in paths])
    return check


class _RealPaths:
    """`Path.resolve()` of run folders, which share a parent: the parent is resolved once,
    and a run folder (or a folder in it) is followed only where it is a link."""

    def __init__(self) -> None:
        self.parents: dict[Path, str] = {}

    def of(self, run_dir: Path) -> str:
        if run_dir.parent not in self.parents:
            self.parents[run_dir.parent] = os.path.realpath(run_dir.parent)
        return self.joined(self.parents[run_dir.parent], run_dir.name)

    @staticmethod
    def joined(real: str, name: str) -> str:
        path = os.path.join(real, name)
        return os.path.realpath(path) if name in ("", ".", "..") or os.path.islink(path) \
            else path


def _job_config(composed: Any, recipe_dir: Path, run_dir: Path) -> Any:
    from launcher.job.config import job_config

    return job_config(composed, recipe_dir, run_dir)


__all__: Sequence[str] = ("SweepShape", "sweep_shape")
