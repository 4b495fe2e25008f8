"""`launch --dry-run`: what would run, with which classes, and the exact batch script."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.components.selection import COMPONENTS
from launcher.plan.checks import checked_class, selected
from launcher.plan.recipe import Recipe


def render(recipe: Recipe, planned: Sequence[Any], backend: str, sweep_dir: Path,
           overrides: Sequence[str]) -> str:
    from omegaconf import OmegaConf

    from launcher.executors.base import SUBMITIT_DIR
    from launcher.executors.registry import shown as shown_overrides
    from launcher.executors.request import executor_parameters, job_name, make_executor
    from launcher.job.config import job_config
    from launcher.plan.devices import described
    from launcher.plan.settings import job_time_as_text

    parts = [f"dry run: {len(planned)} job(s) on the {backend} executor; nothing is submitted"]
    devices = [described(job.config, backend) for job in planned]
    shared = all(d == devices[0] for d in devices)  # else each job shows its own
    for i, job in enumerate(planned):
        parts.append(f"\n=== job {i}: {shown_overrides(job.overrides)}")
        parts.append(f"run directory: {job.run_dir}")
        if devices[i] is not None and not shared:
            parts.append(f"devices: {devices[i][0]}")
            parts.extend(f"  {line}" for line in devices[i][1])
        parts.append("classes:")
        for name in COMPONENTS:
            cls = checked_class(job.config, name, recipe.dir)
            parts.append(f"  {name:<17} {selected(job.composed, name)}  ({_where(cls)})")
        parts.append("config:")
        shown = job_config(job.composed, recipe.dir, job.run_dir, translate=False)
        # Resolved before `recipe_dir` is left out, as `${recipe_dir}/data` needs it.
        shown = OmegaConf.to_container(OmegaConf.create(job_time_as_text(
            OmegaConf.to_container(shown))), resolve=True)
        shown.pop("recipe_dir", None)
        parts.append(_indent(OmegaConf.to_yaml(shown)))
    from launcher.plan.executor_options import launcher_options
    from launcher.signals import RequeuePolicy

    max_parallel = launcher_options(overrides, backend)["max_parallel"]
    parameters = executor_parameters(backend, planned[0].config, job_name(recipe.dir),
                                     max_parallel,
                                     RequeuePolicy.from_config(planned[0].config.get("requeue")))
    if shared and devices[0] is not None:
        every = "every job" if len(planned) > 1 else "the job"
        parts.append(f"\n=== devices of {every}: {devices[0][0]}")
        parts.extend(f"  {line}" for line in devices[0][1])
    if backend == "slurm":
        executor = make_executor(backend, sweep_dir / SUBMITIT_DIR / "%j", parameters)
        from launcher.executors.request import sbatch_script

        parts.append(f"\n=== sbatch script (one submission for all {len(planned)} job(s))")
        parts.append(sbatch_script(executor, len(planned)))
    else:
        parts.append(f"\n=== local executor: {parameters['tasks_per_node']} process(es) per job, "
                     f"at most {max_parallel} job(s) at once")
    return "\n".join(parts)


def _where(cls: type) -> str:
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        return cls.__module__


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.rstrip().splitlines())
