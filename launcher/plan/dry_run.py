"""`launch --dry-run`: what would run, with which classes, and the exact batch script."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.components.selection import COMPONENTS
from launcher.identity import canonical
from launcher.plan.checks import checked_class, selected
from launcher.plan.recipe import Recipe


def render(recipe: Recipe, planned: Sequence[Any], backend: str, sweep_dir: Path,
           overrides: Sequence[str], limits: Any = None) -> str:
    """The plan as text. The first job is shown in full (classes, config); a job that
    differs from it only in a few values shows those (printing ten thousand configs
    took longer than planning them). `limits`: the cluster's (`ClusterLimits`), which
    say how a sweep is split into arrays; None where no SLURM cluster answered."""
    from launcher.executors.base import SUBMITIT_DIR
    from launcher.executors.registry import shown as shown_overrides
    from launcher.executors.request import executor_parameters, job_name, make_executor
    from launcher.plan.devices import described

    parts = [f"dry run: {len(planned)} job(s) on the {backend} executor; nothing is submitted"]
    devices = [described(job.config, backend) for job in planned[:1]]
    devices += [devices[0] if job.settings_of_first else described(job.config, backend)
                for job in planned[1:]]
    shared = all(d == devices[0] for d in devices)  # else each job shows its own
    brief = [i for i, job in enumerate(planned) if i > 0 and job.changes is not None]
    for i, job in enumerate(planned):
        parts.append(f"\n=== job {i}: {shown_overrides(job.overrides)}")
        parts.append(f"run directory: {job.run_dir}")
        if devices[i] is not None and not shared:
            parts.append(f"devices: {devices[i][0]}")
            parts.extend(f"  {line}" for line in devices[i][1])
        if i in brief:
            parts.append("values: " + ", ".join(f"{key}: {canonical(value)}"
                                                 for key, value in job.changes.items()))
        else:
            parts.extend(_in_full(recipe, job))
        if i == 0 and brief:
            parts.append(f"\n({len(brief)} job(s) below differ from job 0 only in the values "
                         "shown with each; their classes and config are job 0's otherwise)")
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
        from launcher.executors.arrays import ClusterLimits
        from launcher.executors.request import sbatch_scripts

        parts.append(sbatch_scripts(executor, len(planned), limits or ClusterLimits()))
    else:
        parts.append(f"\n=== local executor: {parameters['tasks_per_node']} process(es) per job, "
                     f"at most {max_parallel} job(s) at once")
    return "\n".join(parts)


def _in_full(recipe: Recipe, job: Any) -> list[str]:
    """A job's classes and config, as the job will see them."""
    from omegaconf import OmegaConf

    from launcher.job.config import job_config
    from launcher.plan.settings import job_time_as_text

    lines = ["classes:"]
    for name in COMPONENTS:
        where = _file_of(job.composed, name, recipe.dir)
        if where is None:
            where = _where(checked_class(job.config, name, recipe.dir))
        lines.append(f"  {name:<17} {selected(job.composed, name)}  ({where})")
    lines.append("config:")
    shown = job_config(job.composed, recipe.dir, job.run_dir, translate=False)
    # Resolved before `recipe_dir` is left out, as `${recipe_dir}/data` needs it.
    shown = OmegaConf.to_container(OmegaConf.create(job_time_as_text(
        OmegaConf.to_container(shown))), resolve=True)
    shown.pop("recipe_dir", None)
    lines.append(_indent(OmegaConf.to_yaml(shown)))
    return lines


def _file_of(config: Any, name: str, recipe_dir: Path) -> str | None:
    """The file that defines the selected class, found without importing it: planning has
    checked the class already, and importing the recipe's model to show its file would
    import torch and Lightning (seconds). None where it takes an import to know: a class
    of another package, or one nested in another."""
    import importlib.util

    from launcher.components.selection import target_of

    if name == "model" and config.get("task"):
        return None
    module = target_of(config, name).rpartition(".")[0]
    top = module.split(".")[0]
    if top == "src":  # the recipe's own code
        base = recipe_dir.joinpath(*module.split("."))
        found = [f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()]
        return str(found[0]) if found else None
    if top != "launcher":
        return None
    spec = importlib.util.find_spec(module)
    return spec.origin if spec is not None and spec.origin else None


def _where(cls: type) -> str:
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        return cls.__module__


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.rstrip().splitlines())
