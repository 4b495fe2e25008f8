"""Launch a recipe: compose and check every job, then run it here or submit it.

Everything that can be wrong with the input is found before Hydra creates a
run directory or anything is queued, so a rejected launch leaves nothing.
A single run on the local executor with one process runs in this process;
everything else (sweeps, several processes, SLURM) goes through an executor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import rundir
from launcher.errors import ConfigError
from launcher.recipe import Recipe, compose_sweep, find_recipe
from launcher.runstate import is_complete

# Keys every recipe has, whether or not its config file spells them out: the
# launcher's own settings and the optional class selections.
LAUNCHER_KEYS = ("exp_root", "seed", "stages", "resume", "lightning_module", "system",
                 "resources", "requeue")
GROUPS = ("cluster",)
BACKENDS = ("local", "slurm")


@dataclass
class PlannedJob:
    overrides: list[str]
    run_dir: Path
    config: Any  # the job config, as the System will see it
    composed: Any  # the config as composed from the recipe's files and the overrides


def with_launcher_keys(overrides: Sequence[str]) -> list[str]:
    """`exp_root=/x` or `cluster=mine` work on any recipe: added when missing."""
    out = []
    for o in overrides:
        root = rundir.override_key(o).split(".", 1)[0]
        if o.startswith(("+", "~")):
            out.append(o)
        elif root in LAUNCHER_KEYS:
            out.append(f"++{o}")
        elif root in GROUPS and "=" in o:
            out.append(f"+{o}")
        else:
            out.append(o)
    return out


def backend_of(overrides: Sequence[str]) -> str:
    """The executor chosen with hydra/launcher=..., local by default."""
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")]
    backend = chosen[-1] if chosen else "local"
    if backend not in BACKENDS:
        raise ConfigError(f"unknown executor '{backend}'", key="hydra/launcher",
                          hint=f"choose one of: {', '.join(BACKENDS)}")
    return backend


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
        if override.is_hydra_override():
            continue
        if override.is_sweep_override():
            axes.append(_sweep_values(override))
        else:
            axes.append([override.input_line])
    return [list(job) for job in itertools.product(*axes)]


def _sweep_values(override: Any) -> list[str]:
    """A grid axis; for a search range (Optuna's interval) its bounds, enough to check."""
    from hydra.core.override_parser.types import IntervalSweep

    key = override.get_key_element()
    if isinstance(override.value(), IntervalSweep):
        sweep = override.value()
        return [f"{key}={sweep.start}", f"{key}={sweep.end}"]
    return [f"{key}={value}" for value in override.sweep_string_iterator()]


def plan(recipe: Recipe, overrides: Sequence[str], multirun: bool) -> list[PlannedJob]:
    """Compose and check every job. Writes nothing."""
    from launcher.preflight import check
    from launcher.safety import refuse_shell_overrides

    task = [o for o in overrides if not o.startswith("hydra")]
    refuse_shell_overrides(task)
    jobs = expand_sweep(task) if multirun else [task]
    planned = []
    for job_overrides, config in zip(jobs, compose_sweep(recipe, jobs), strict=True):
        run_dir = _checked_run_dir(recipe, config, job_overrides)
        planned.append(PlannedJob(job_overrides, run_dir,
                                  check(config, recipe, run_dir, job_overrides), config))
    _check_same_resources(planned)
    return planned


def _checked_run_dir(recipe: Recipe, config: Any, overrides: Sequence[str]) -> Path:
    """The run folder, once its path and the batch script's setup lines are safe."""
    from launcher.preflight import origin
    from launcher.safety import check_path, check_setup_lines

    root = rundir.exp_root(recipe.dir, config.get("exp_root"))
    try:
        check_path(root, "exp_root")
        rundir.quote(str(root))  # the sweep folder is handed to Hydra as an override
        check_setup_lines(config.get("cluster"))
    except ConfigError as exc:
        raise exc.located(origin(exc.key, overrides, recipe.config_file)) from None
    return root / rundir.run_name(overrides)


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


def launch(recipe_path: str | Path, overrides: Sequence[str] = (), *,
           config_name: str | None = None, multirun: bool = False, wait: bool | None = None,
           dry_run: bool = False) -> Any:
    """Run or submit a recipe (or a sweep of it).

    Returns the list of `SubmittedJob`s, or the dry-run text with `dry_run`.
    """
    from launcher.launcher_options import launcher_options

    recipe = find_recipe(recipe_path, config_name)
    overrides = with_launcher_keys(overrides)
    backend = backend_of(overrides)
    launcher_options(overrides, backend)
    planned = plan(recipe, overrides, multirun)
    refusal = allocation_refusal(recipe, planned[0], backend)
    sweep_dir = rundir.new_sweep_dir(recipe.dir, planned[0].config.get("exp_root"))
    if dry_run:  # shown, not refused: a script for another cluster may be previewed here
        from launcher.dry_run import render

        text = render(recipe, planned, backend, sweep_dir, overrides)
        return text + (f"\n\n=== a launch here would be refused: {refusal}" if refusal else "")
    if refusal is not None:
        raise refusal
    wait_until_free(planned, bool(wait))
    if planned[0].config.get("resume", True) is False:
        for job in planned:
            archive_run(job.run_dir)
    finished = {str(j.run_dir) for j in planned if _complete(j)}
    if not multirun and backend == "local" and resources_of(planned[0]).world_size == 1:
        return [run_here(recipe, overrides, sweep_dir, planned[0], bool(wait))]
    launcher_args = [] if any(o.startswith("hydra/launcher=") for o in overrides) else [
        f"hydra/launcher={backend}"]
    if not any(o.startswith("hydra/sweeper=") for o in overrides):
        launcher_args.append("hydra/sweeper=planned")  # plan() has checked every job
    if optimising(overrides):
        wait = True  # a sweeper that learns from results needs them
    if wait is not None and backend == "slurm":
        launcher_args.append(f"hydra.launcher.wait={str(wait).lower()}")
    from launcher import submit

    submit.FINISHED_RUNS = finished
    try:
        returns = _run_hydra(recipe, [*overrides, *launcher_args], sweep_dir, multirun=True)
    finally:
        submit.FINISHED_RUNS = set()
    if returns is None:  # an optimising sweeper: its summary is in the sweep folder
        return best_trial(sweep_dir)
    return [ret._return_value for ret in returns]


def allocation_refusal(recipe: Recipe, job: PlannedJob, backend: str) -> ConfigError | None:
    """Why the machine or cluster here cannot give what the job asks for, if it cannot."""
    from launcher.allocation_check import check_allocation
    from launcher.preflight import origin
    from launcher.resources import ClusterProfile

    try:
        check_allocation(resources_of(job), backend,
                         ClusterProfile.from_config(job.config.get("cluster")))
    except ConfigError as exc:
        return exc.located(origin(exc.key, job.overrides, recipe.config_file))
    return None


def _complete(job: PlannedJob) -> bool:
    return is_complete(job.run_dir, rundir.config_fingerprint(job.composed))


def wait_until_free(planned: Sequence[PlannedJob], wait: bool) -> None:
    """Refuse (or with `wait`, wait out) runs whose folder another process owns now."""
    import time

    from launcher.runlock import RunBusy, describe, holder_of

    for job in planned:
        holder = holder_of(job.run_dir)
        if holder is not None and not wait:
            raise RunBusy(job.run_dir, holder)
        if holder is not None:
            print(f"waiting for {describe(holder)} to release {job.run_dir}", flush=True)
        while holder is not None:
            time.sleep(2.0)
            holder = holder_of(job.run_dir)


def run_here(recipe: Recipe, overrides: Sequence[str], sweep_dir: Path, job: PlannedJob,
             wait: bool) -> Any:
    """A single one-process run, in this process, which owns the run folder meanwhile."""
    from launcher import runlock
    from launcher.registry import ALREADY_DONE, SubmittedJob

    with runlock.owning(job.run_dir, wait=wait):
        done = _complete(job)  # perhaps finished by the launch this one waited for
        if not done:
            _run_hydra(recipe, overrides, sweep_dir, multirun=False)
    return SubmittedJob(0, job.overrides, str(job.run_dir), state="COMPLETED",
                        note=ALREADY_DONE if done else "")


def optimising(overrides: Sequence[str]) -> bool:
    return any(o.startswith("hydra/sweeper=") and "optuna" in o for o in overrides)


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


def archive_run(run_dir: Path) -> Path | None:
    """`resume=false`: start over, keeping the old run beside the new one."""
    import time

    if not run_dir.exists():
        return None
    target = run_dir.with_name(f"{run_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        target, n = target.with_name(f"{target.name}-{n}"), n + 1
    run_dir.rename(target)
    print(f"resume=false: moved the previous run to {target}", flush=True)
    return target


def _run_hydra(recipe: Recipe, overrides: Sequence[str], sweep_dir: Path,
               multirun: bool) -> list | None:
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from launcher.job import run_job

    version.setbase("1.3")
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(
        task_name="run", config_search_path=create_config_search_path(str(recipe.conf_dir)))
    arguments = [*overrides, *rundir.hydra_overrides(sweep_dir)]
    try:
        if multirun:
            results = hydra.multirun(config_name=recipe.config_name, task_function=run_job,
                                     overrides=arguments)
            return None if results is None else [r for batch in results for r in batch]
        failure: list[BaseException] = []
        result = hydra.run(config_name=recipe.config_name, task_function=_keeping(failure),
                           overrides=arguments)
        if failure:  # raised here, where the CLI turns it into one line
            raise failure[0]
        return [result]
    finally:
        GlobalHydra.instance().clear()


def _keeping(failure: list[BaseException]) -> Any:
    """The task function, its exception kept instead of raised through Hydra, which
    would print its own 'Error executing job' line before re-raising."""
    from launcher.job import run_job

    def task(cfg: Any) -> Any:
        try:
            return run_job(cfg)
        except BaseException as exc:  # re-raised by _run_hydra once Hydra has finished
            failure.append(exc)
            return None

    return task
