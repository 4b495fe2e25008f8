"""Launch a recipe: plan every job (`launcher.plan`), then run it here or submit it.

Everything that can be wrong with the input is found while planning, before
Hydra creates a run directory or anything is queued, so a rejected launch
leaves nothing. A single run on the local executor with one process runs in
this process (`launcher.executors.in_process`); everything else (sweeps,
several processes, SLURM) goes through a Hydra launcher plugin
(`launcher.executors`), which reads the plan from the sweep folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from launcher.executors.arrays import ClusterLimits
from launcher.executors.base import discard_sweep
from launcher.executors.hydra_app import best_trial, quote, run_hydra, where_runs_go
from launcher.executors.in_process import run_here
from launcher.executors.plan_file import PlannedRun, write_plan
from launcher.executors.registry import REGISTRY, Sweep
from launcher.job.runlock import wait_until_free
from launcher.launch_file import hand_over, write_launch_file
from launcher.layout import new_sweep_dir
from launcher.plan.allocation import cluster_limits, queue_refusal
from launcher.plan.code_change import refuse_changed_code, resume_setting
from launcher.plan.executor_options import launcher_options
from launcher.plan.launch_code import LaunchCode
from launcher.plan.overrides import backend_of, optimising, with_launcher_keys
from launcher.plan.planning import (
    PlannedJob,
    allocation_refusal,
    is_finished,
    plan,
    resources_of,
)
from launcher.plan.recipe import Recipe, find_recipe
from launcher.plan.search_plan import check_trials, search_of
from launcher.resources import ClusterProfile


def launch(recipe_path: str | Path, overrides: Sequence[str] = (), *,
           config_name: str | None = None, multirun: bool = False, wait: bool | None = None,
           dry_run: bool = False, code_from: Path | None = None) -> Any:
    """Run or submit a recipe (or a sweep of it). `code_from`: a sweep folder whose code
    snapshot the jobs run again (`launch retry`), instead of a new one.

    Returns the list of `SubmittedJob`s, or the dry-run text with `dry_run`.
    """
    recipe = find_recipe(recipe_path, config_name)
    command = command_line(recipe_path, overrides, config_name, multirun, wait)
    overrides = with_launcher_keys(overrides)
    backend = backend_of(overrides)
    launcher_options(overrides, backend)
    search = search_of(recipe, overrides)
    if search is not None:  # the jobs are the search's slots, which run its trials
        overrides, multirun = search.slot_overrides, True
    planned = plan(recipe, overrides, multirun)
    resume = resume_setting(planned[0].config)
    refusal = allocation_refusal(recipe, planned[0], backend)
    limits = cluster_limits(backend, ClusterProfile.from_config(planned[0].config.get("cluster")))
    sweep_dir = new_sweep_dir(recipe.dir, planned[0].config.get("exp_root"))
    if search is not None:
        check_trials(recipe, search, planned)
        planned = search.slots_in(planned, sweep_dir)
    in_process = not multirun and backend == "local" and \
        resources_of(planned[0]).world_size == 1
    code = LaunchCode.of(recipe, planned, overrides, code_from,
                         snapshot=not in_process and planned[0].config.get("snapshot", True))
    # Read again by `submit`, after waiting for the runs' locks and `resume=false`'s
    # archiving: by then another launch may have finished a run, or it was moved away.
    refusal = refusal or queue_refusal(limits, sum(not is_finished(j) for j in planned))
    if dry_run:  # shown, not refused: a script for another cluster may be previewed here
        from launcher.plan.dry_run import render

        head, _, rest = render(recipe, planned, backend, sweep_dir, overrides,
                               limits).partition("\n")
        text = f"{head}\n{code.described(sweep_dir)}\n{rest}"
        if search is not None:
            text = f"{search.described()}\n{text}"
        return text + (f"\n\n=== a launch here would be refused: {refusal}" if refusal else "")
    if refusal is not None:
        raise refusal
    if resume is True:
        refuse_changed_code(planned, code.manifest, is_finished)
    wait_until_free([job.run_dir for job in planned], bool(wait))
    if resume is False:
        for job in planned:
            archive_run(job.run_dir)
    if in_process:
        job = planned[0]
        hand_over(*code.launch_facts(command, sweep_dir))
        return [run_here(recipe.conf_dir, recipe.config_name, overrides, sweep_dir,
                         job.run_dir, job.identity, lambda: is_finished(job), bool(wait))]
    with removed_unless_submitted(sweep_dir):
        conf_dir = code.conf_dir_in(sweep_dir)
        write_launch_file(sweep_dir, *code.launch_facts(command, sweep_dir))
        if search is not None:
            search.spec.write(sweep_dir)
        return submit(recipe, overrides, planned, backend, sweep_dir, wait, conf_dir, limits)


def command_line(recipe_path: str | Path, overrides: Sequence[str], config_name: str | None,
                 multirun: bool, wait: bool | None) -> list[str]:
    """The `launch` command that makes this launch, for the runs' records."""
    flags = [*(["-m"] if multirun else []),
             *(["--config-name", config_name] if config_name else []),
             *({True: ["--wait"], False: ["--no-wait"]}.get(wait, []))]
    return ["launch", str(recipe_path), *overrides, *flags]


@contextlib.contextmanager
def removed_unless_submitted(sweep_dir: Path) -> Iterator[None]:
    """A launch that fails before anything is queued leaves no sweep folder (nor its
    code snapshot) behind."""
    try:
        yield
    except BaseException:
        if sweep_dir.is_dir() and not (sweep_dir / REGISTRY).is_file():
            discard_sweep(sweep_dir)
        raise


def submit(recipe: Recipe, overrides: Sequence[str], planned: Sequence[PlannedJob],
           backend: str, sweep_dir: Path, wait: bool | None,
           conf_dir: Path | None = None, limits: ClusterLimits | None = None) -> Any:
    """Through the executor's Hydra launcher plugin, with the plan in the sweep folder;
    the jobs' configs are composed from `conf_dir` (the code snapshot's); `limits`: the
    cluster's, which say how the sweep is split into arrays."""
    plan_file = write_plan(sweep_dir, [
        PlannedRun(job.overrides, str(job.run_dir), job.identity.name,
                   job.identity.fingerprint, finished=is_finished(job)) for job in planned],
        limits.as_dict() if limits is not None else None)
    arguments = [*overrides, *where_runs_go(sweep_dir),
                 f"hydra.launcher.plan_file={quote(str(plan_file))}"]
    if not any(o.startswith("hydra/launcher=") for o in overrides):
        arguments.append(f"hydra/launcher={backend}")
    if not any(o.startswith("hydra/sweeper=") for o in overrides):
        arguments.append("hydra/sweeper=planned")  # plan() has checked every job
    if optimising(overrides):
        wait = True  # a sweeper that learns from results needs them
    if wait is not None and backend == "slurm":
        arguments.append(f"hydra.launcher.wait={str(wait).lower()}")
    returns = run_hydra(conf_dir or recipe.conf_dir, recipe.config_name, arguments,
                        multirun=True)
    if returns is None:  # an optimising sweeper: its summary is in the sweep folder
        return best_trial(sweep_dir)
    return Sweep.load(sweep_dir).jobs  # our records, kept beside Hydra's JobReturns


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
