"""The submitit executor of a launch and its parameters, from the job's config.

The request comes from the resource spec (`launcher.resources`) and the
cluster profile, and nowhere else; `--dry-run` shows the very batch script
these parameters make."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def sbatch_script(executor: Any, num_jobs: int) -> str:
    """The exact batch script `launch` submits for a sweep of `num_jobs` jobs."""
    from launcher.compat.submitit import sbatch_text

    return sbatch_text(executor, num_jobs)
