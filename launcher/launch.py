"""Launch a recipe: compose, check, then hand the run or sweep to Hydra.

Everything that can be wrong with the input is found before Hydra creates a
run directory, so a rejected launch leaves nothing behind.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from launcher import rundir
from launcher.errors import ConfigError
from launcher.recipe import Recipe, compose, find_recipe


# Keys every recipe has, whether or not its config file spells them out: the
# launcher's own settings and the optional class selections.
LAUNCHER_KEYS = ("exp_root", "seed", "stages", "resume", "lightning_module", "system")


def with_launcher_keys(overrides: Sequence[str]) -> list[str]:
    """`exp_root=/x` works on any recipe: launcher-owned keys are added if missing."""
    return [f"++{o}" if _root(o) in LAUNCHER_KEYS and not o.startswith(("+", "~")) else o
            for o in overrides]


def _root(override: str) -> str:
    return rundir.override_key(override).split(".", 1)[0]


def expand_sweep(overrides: Sequence[str]) -> list[list[str]]:
    """The overrides of each job of a grid sweep (`a=1,2 b=x,y` -> 4 jobs), in Hydra's order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(str(exc).strip().splitlines()[0],
                          hint="quote values with spaces or commas: key='a b'") from None
    axes = []
    for override in parsed:
        if override.is_sweep_override():
            key = override.get_key_element()
            axes.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            axes.append([override.input_line])
    return [list(job) for job in itertools.product(*axes)]


def plan(recipe: Recipe, overrides: Sequence[str], multirun: bool) -> list[Path]:
    """Compose and check every job; return their run directories. Writes nothing."""
    from launcher.preflight import check

    jobs = expand_sweep(overrides) if multirun else [list(overrides)]
    run_dirs = []
    for job_overrides in jobs:
        config = compose(recipe, job_overrides)
        run_dir = rundir.run_dir(recipe.dir, config.get("exp_root"), job_overrides)
        check(config, recipe, run_dir, job_overrides)
        run_dirs.append(run_dir)
    return run_dirs


def launch(recipe_path: str | Path, overrides: Sequence[str] = (), *,
           config_name: str | None = None, multirun: bool = False) -> list[Path]:
    """Run a recipe (or a sweep of it); return the run directories."""
    recipe = find_recipe(recipe_path, config_name)
    overrides = with_launcher_keys(overrides)
    run_dirs = plan(recipe, overrides, multirun)
    _run_hydra(recipe, overrides, multirun)
    return run_dirs


def _run_hydra(recipe: Recipe, overrides: Sequence[str], multirun: bool) -> None:
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobStatus

    from launcher.job import run_job

    version.setbase("1.3")
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(
        task_name="run", config_search_path=create_config_search_path(str(recipe.conf_dir)))
    arguments = [*overrides, *rundir.HYDRA_OVERRIDES]
    try:
        if multirun:
            results = hydra.multirun(config_name=recipe.config_name, task_function=run_job,
                                     overrides=arguments)
            returns = [r for batch in results for r in batch]
        else:
            returns = [hydra.run(config_name=recipe.config_name, task_function=run_job,
                                 overrides=arguments)]
    finally:
        GlobalHydra.instance().clear()
    for ret in returns:
        if ret.status == JobStatus.FAILED:
            raise ret._return_value
