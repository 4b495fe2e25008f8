"""What-if: `launch` with the fixes proposed for sweep submission, patched in at run time.

    python bench/proposed_fixes.py RECIPE [OVERRIDES ...] -m ...   (same arguments as launch)

Nothing in launcher/ is changed: this script replaces three functions in
memory, then runs `launcher.cli.main`, so B3 can measure what the proposed
changes would buy on this machine, next to the unchanged `launch`. The
profile in RESULTS.md shows where the time goes without them:

1. `plan()` composes every job from scratch (~45 ms each, all of it Hydra's
   defaults-list machinery). Jobs of a sweep that differ only in values are
   composed once and the values applied to a copy, as Hydra itself applies
   value overrides; job 0 is also composed in full and compared, and any
   difference (say, a config-group override) falls back to the old path.
2. Hydra's BasicSweeper composes every job a second time
   (`validate_batch_is_legal`) after `plan()` has composed and checked it.
3. `SweepLauncher.launch` calls `Singleton.get_state()` (a deep copy of all
   of Hydra's singletons, the ConfigStore included) once per job; once is
   enough, every job gets the same state.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any


def fast_plan(original: Any) -> Any:
    """`launcher.launch.plan` composing a value-only sweep once."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from launcher import launch as launch_module
    from launcher import rundir
    from launcher.preflight import check
    from launcher.recipe import compose

    def plan(recipe: Any, overrides: Sequence[str], multirun: bool) -> list:
        task = [o for o in overrides if not o.startswith("hydra")]
        jobs = launch_module.expand_sweep(task) if multirun else [task]
        if len(jobs) < 2:
            return original(recipe, overrides, multirun)
        varying = [i for i in range(len(jobs[0])) if len({job[i] for job in jobs}) > 1]
        base = compose(recipe, [o for i, o in enumerate(jobs[0]) if i not in varying])
        parser = OverridesParser.create()
        planned = []
        for n, job in enumerate(jobs):
            config = copy.deepcopy(base)
            ConfigLoaderImpl._apply_overrides_to_config(
                parser.parse_overrides([job[i] for i in varying]), config)
            if n == 0 and config != compose(recipe, job):
                return original(recipe, overrides, multirun)
            run_dir = rundir.run_dir(recipe.dir, config.get("exp_root"), job)
            planned.append(launch_module.PlannedJob(
                job, run_dir, check(config, recipe, run_dir, job), config))
        launch_module._check_same_resources(planned)
        return planned

    return plan


def apply() -> None:
    from hydra.core.singleton import Singleton
    from hydra.plugins.sweeper import Sweeper

    from launcher import launch as launch_module
    from launcher import submit

    launch_module.plan = fast_plan(launch_module.plan)
    # On the base class: Hydra's plugin scan loads BasicSweeper's module afresh.
    Sweeper.validate_batch_is_legal = lambda self, batch: None
    original_launch = submit.SweepLauncher.launch
    get_state = Singleton.get_state

    def launch_once_state(self: Any, job_overrides: Any, initial_job_idx: int) -> list:
        state = get_state()
        Singleton.get_state = staticmethod(lambda: state)
        try:
            return original_launch(self, job_overrides, initial_job_idx)
        finally:
            Singleton.get_state = staticmethod(get_state)

    submit.SweepLauncher.launch = launch_once_state


if __name__ == "__main__":
    apply()
    from launcher.cli import main

    sys.exit(main(sys.argv[1:]))
