"""Can the machine or the cluster give what the resources ask for? Asked before submitting.

A GPU request on a machine or partition without GPUs, or a partition that
does not exist, otherwise fails late: locally when Lightning starts ("no GPU
available"), on SLURM as an sbatch refusal after the sweep folder was made,
or a job that pends forever. Locally the visible CUDA devices are counted;
on SLURM `sinfo` lists the partitions and their generic resources (`%G`).
Without a SLURM client here, sbatch is left to answer.
"""

from __future__ import annotations

import shutil
import subprocess

from launcher.errors import ConfigError, LauncherError
from launcher.executors.arrays import ClusterLimits, read_limits, refusal
from launcher.resources import ClusterProfile, Resources

GPUS = "resources.gpus_per_node"


def check_allocation(resources: Resources, backend: str, cluster: ClusterProfile) -> None:
    if backend == "local":
        if resources.nodes > 1:  # the Trainer would count ranks that never start
            raise ConfigError(f"the local executor runs each job on this machine alone, "
                              f"not on {resources.nodes} nodes", key="resources.nodes",
                              hint="use hydra/launcher=slurm for several nodes, or "
                                   "resources.nodes=1")
        if resources.gpus_per_node:
            _check_local_gpus(resources.gpus_per_node)
        return
    partitions = _partitions()
    if partitions is None:
        return
    chosen = resources.partition or cluster.partition
    key = "resources.partition" if resources.partition else "cluster.partition"
    if chosen is not None and chosen not in partitions:
        raise ConfigError(f"the cluster has no partition '{chosen}'", key=key,
                          hint=f"choose one of: {', '.join(sorted(partitions))}")
    name = chosen or next((p for p, (default, _) in partitions.items() if default), None)
    if resources.gpus_per_node and name is not None and "gpu" not in partitions[name][1]:
        raise ConfigError(f"partition '{name}' has no GPUs (sinfo lists no gpu resource)",
                          key=GPUS, hint="choose a GPU partition with resources.partition=..., "
                                         "or set resources.gpus_per_node=0")


def _check_local_gpus(wanted: int) -> None:
    import torch

    found = torch.cuda.device_count()
    if found < wanted:
        raise ConfigError(f"each job asks for {wanted} GPU(s) but this machine has {found}"
                          " visible (CUDA_VISIBLE_DEVICES counts)", key=GPUS,
                          hint="set resources.gpus_per_node=0 to train on CPU, or run on a "
                               "cluster with hydra/launcher=slurm")


def _partitions() -> dict[str, tuple[bool, str]] | None:
    """{partition: (is the default, its generic resources)}; None without a SLURM client
    or when the controller does not answer."""
    if not shutil.which("sinfo"):
        return None
    out = subprocess.run(["sinfo", "-h", "-o", "%P|%G"], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        return None
    partitions: dict[str, tuple[bool, str]] = {}
    for line in out.stdout.splitlines():
        name, _, gres = line.partition("|")
        default = name.endswith("*")
        previous = partitions.get(name.rstrip("*"), (False, ""))
        partitions[name.rstrip("*")] = (default or previous[0], f"{previous[1]},{gres}")
    return partitions


def cluster_limits(backend: str, cluster: ClusterProfile) -> ClusterLimits | None:
    """The SLURM cluster's array and submission limits, read once per launch."""
    if backend != "slurm":
        return None
    return read_limits(cluster.account, cluster.qos)


def queue_refusal(limits: ClusterLimits | None, n_jobs: int) -> LauncherError | None:
    """Why the cluster would not take this many jobs from this user, if it would not."""
    reason = refusal(n_jobs, limits) if limits is not None else None
    return LauncherError(reason) if reason else None
