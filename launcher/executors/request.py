"""The submitit executor of a launch and its parameters, from the job's config.

The request comes from the resource spec (`launcher.resources`) and the
cluster profile, and nowhere else; `--dry-run` shows the very batch script
these parameters make."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.executors.arrays import ClusterLimits, chunks
from launcher.resources import ClusterProfile, Resources


def job_name(recipe_dir: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(Path(recipe_dir).parts[-2:]))


def executor_parameters(backend: str, config: Mapping, name: str, max_parallel: int,
                        requeue: Any) -> dict[str, Any]:
    """The submitit parameters of one job of this launch, from its config; `requeue`
    (a `RequeuePolicy`) says when SLURM warns of the time limit."""
    resources = Resources.from_config(config.get("resources"))
    cluster = ClusterProfile.from_config(config.get("cluster"))
    request = resources.scheduler_request(backend, cluster)
    if backend == "slurm":
        request.update(cluster.slurm_extras(), job_name=name, array_parallelism=max_parallel)
        # The launcher owns the warning signal (see launcher.signals).
        request["additional_parameters"] = {**request["additional_parameters"],
                                            "signal": requeue.sbatch_signal()}
        request.pop("signal_delay_s", None)
    return request


def make_executor(backend: str, folder: Path, parameters: Mapping[str, Any]) -> Any:
    import submitit

    cls = submitit.SlurmExecutor if backend == "slurm" else submitit.LocalExecutor
    executor = cls(folder=str(folder))
    executor.update_parameters(**parameters)
    return executor


def sbatch_scripts(executor: Any, num_jobs: int, limits: ClusterLimits) -> str:
    """The batch scripts `launch` submits for a sweep of `num_jobs` jobs, as the dry run
    shows them: the whole script of the first array, and of each further array the lines
    that differ (its size, and the array it waits for)."""
    from launcher.compat.submitit import sbatch_text

    parts = chunks(num_jobs, limits)
    first = sbatch_text(executor, parts[0].count)
    if len(parts) == 1:
        return f"\n=== sbatch script (one submission for all {num_jobs} job(s))\n{first}"
    extra = dict(executor.parameters.get("additional_parameters") or {})
    lines = [f"\n=== {num_jobs} jobs as {len(parts)} arrays: this cluster's MaxArraySize is "
             f"{limits.max_array_size}, so an array holds at most {limits.max_array_size} "
             "jobs; each array waits for the one before it to end (afterany), so that "
             f"max_parallel ({executor.parameters.get('array_parallelism')}) caps the "
             "whole sweep",
             f"--- array 1: jobs 0-{parts[0].last}, sbatch script:", first]
    for number, part in enumerate(parts[1:], start=2):
        # The id is known once the array before is queued: 0 stands for it here.
        executor.update_parameters(additional_parameters={**extra, "dependency": "afterany:0"})
        script = sbatch_text(executor, part.count)
        changed = [line.replace("afterany:0", f"afterany:<id of array {number - 1}>")
                   for line in script.splitlines()
                   if line.startswith("#SBATCH") and line not in first.splitlines()]
        lines.append(f"--- array {number}: jobs {part.first}-{part.last}, the same script "
                     f"but: {'  '.join(changed)}")
    executor.update_parameters(additional_parameters=extra)
    return "\n".join(lines)
