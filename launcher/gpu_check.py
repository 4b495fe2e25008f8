"""Are there GPUs where the jobs will run? Asked before anything is submitted.

A GPU request on a machine or partition without GPUs otherwise fails late:
locally when Lightning starts ("no GPU available"), on SLURM as a job that
is refused or pends forever. Locally the visible CUDA devices are counted;
on SLURM the partition's generic resources (`sinfo %G`) must list a gpu.
"""

from __future__ import annotations

import shutil
import subprocess

from launcher.errors import ConfigError
from launcher.resources import ClusterProfile, Resources

KEY = "resources.gpus_per_node"


def check_gpus(resources: Resources, backend: str, cluster: ClusterProfile) -> None:
    if not resources.gpus_per_node:
        return
    if backend == "local":
        _check_local(resources.gpus_per_node)
    else:
        _check_partition(resources.partition or cluster.partition)


def _check_local(wanted: int) -> None:
    import torch

    found = torch.cuda.device_count()
    if found < wanted:
        raise ConfigError(f"each job asks for {wanted} GPU(s) but this machine has {found}"
                          " visible (CUDA_VISIBLE_DEVICES counts)", key=KEY,
                          hint="set resources.gpus_per_node=0 to train on CPU, or run on a "
                               "cluster with hydra/launcher=slurm")


def _check_partition(partition: str | None) -> None:
    if not shutil.which("sinfo"):
        return  # no SLURM client here: sbatch will say
    command = ["sinfo", "-h", "-o", "%P|%G"] + (["-p", partition] if partition else [])
    out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    rows = [line.split("|", 1) for line in out.stdout.splitlines() if "|" in line]
    if not partition:  # the default partition is marked with '*'
        rows = [r for r in rows if r[0].endswith("*")]
    if not rows:
        return  # an unknown partition: sbatch names it better than we can
    if not any("gpu" in gres for _, gres in rows):
        name = partition or rows[0][0].rstrip("*")
        raise ConfigError(f"partition '{name}' has no GPUs (sinfo lists no gpu resource)",
                          key=KEY, hint="choose a GPU partition with resources.partition=..., "
                                        "or set resources.gpus_per_node=0")
