"""The devices of a job as `--dry-run` shows them, and the checks of the options that
choose them.

From the resources and the trainer block as the job will hand it to the Trainer
(`launcher.resources.reconcile_trainer`): nodes x GPUs (or CPU processes), what
the executor is asked for, which GPU each rank uses, the strategy, the process
group backend and the precision. Each rank drives `cuda:<its local rank>` among
the GPUs its job sees: Lightning's device list is cuda:0..devices-1 and the
launcher's cluster environment gives each rank submitit's local rank. Which GPUs
a job sees is set by SLURM on a cluster (`--gpus-per-node`, CUDA_VISIBLE_DEVICES
on each node) and by the local executor here (its own CUDA_VISIBLE_DEVICES per
job, `launcher.executors.local`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from launcher.errors import ConfigError
from launcher.resources import Resources

# Unified names Lightning gives the short spellings of `precision`.
PRECISION_NAMES = {"16": "16-mixed", "bf16": "bf16-mixed", "32": "32-true", "64": "64-true"}
BACKENDS = ("nccl", "gloo", "mpi", "ucc", "xccl")
LABEL = 15


def described(config: Mapping, backend: str) -> tuple[str, list[str]] | None:
    """(a title, the lines under it) for a job's devices; None for one CPU process,
    which has nothing to bind or to talk to."""
    resources = Resources.from_config(_block(config, "resources"))
    trainer = _block(config, "trainer")
    if not isinstance(trainer, Mapping):
        return None
    gpus, ranks = resources.gpus_per_node, resources.world_size
    if not gpus and ranks == 1:
        return None
    per_node = f"{gpus} GPU(s)" if gpus else f"{resources.tasks_per_node} CPU process(es)"
    title = f"{resources.nodes} node(s) x {per_node} per node = {ranks} rank(s)"
    lines = [("request", _request(resources, backend)),
             ("accelerator", str(trainer.get("accelerator"))),
             *([("binding", _binding(resources, backend))] if gpus else []),
             ("strategy", _strategy_name(trainer.get("strategy", "auto"))),
             ("process group", process_group_backend(trainer, resources)),
             ("precision", _precision(trainer.get("precision"), gpus)),
             ("checkpoints", _checkpoint_kind(trainer.get("strategy", "auto")))]
    return title, [f"{label + ':':<{LABEL}} {text}" for label, text in lines]


def _request(resources: Resources, backend: str) -> str:
    tasks = resources.tasks_per_node
    if backend == "slurm":
        return f"sbatch {' '.join(sbatch_options(resources))} (#SBATCH lines below)" + (
            ": one rank per GPU" if resources.gpus_per_node else ", no GPUs")
    if resources.gpus_per_node:
        return (f"{resources.gpus_per_node} GPU(s) of this machine per job, one rank "
                f"process per GPU")
    return f"{tasks} rank process(es) per job, no GPUs (CUDA_VISIBLE_DEVICES empty)"


def sbatch_options(resources: Resources) -> list[str]:
    """The batch script's options that give a job its GPUs, ranks and nodes."""
    gpus = [f"--gpus-per-node={resources.gpus_per_node}"] if resources.gpus_per_node else []
    return [*gpus, f"--ntasks-per-node={resources.tasks_per_node}",
            f"--nodes={resources.nodes}"]


def _binding(resources: Resources, backend: str) -> str:
    gpus = resources.gpus_per_node
    if backend == "slurm":
        return (f"the rank with local rank l on node n uses cuda:l of the {gpus} GPUs SLURM "
                f"allocates on node n (CUDA_VISIBLE_DEVICES set by SLURM)")
    here = os.environ.get("CUDA_VISIBLE_DEVICES")
    seen = f" (CUDA_VISIBLE_DEVICES={here})" if here is not None else ""
    return (f"rank r uses cuda:r of the job's own {gpus} GPUs (its CUDA_VISIBLE_DEVICES, "
            f"chosen by the local executor from the GPUs visible here{seen}; jobs running "
            f"at once never share one)")


def _strategy_name(spec: Any) -> str:
    if isinstance(spec, Mapping):
        if "_target_" in spec:
            return str(spec["_target_"])
        options = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        return f"{spec.get('name')}" + (f" ({options})" if options else "")
    return str(spec)


def _checkpoint_kind(spec: Any) -> str:
    """Files, or folders of one shard per rank (docs/trainer.md)."""
    from launcher.components.trainers.options import sharded_checkpoints

    return ("sharded: a folder per checkpoint, one shard file per rank"
            if sharded_checkpoints(spec) else "one file per checkpoint, written by rank 0")


def process_group_backend(trainer: Mapping, resources: Resources) -> str:
    """The backend the ranks' process group will use, and why."""
    spec = trainer.get("strategy")
    if isinstance(spec, Mapping) and spec.get("process_group_backend") is not None:
        return f"{spec['process_group_backend']} (trainer.strategy.process_group_backend)"
    if resources.world_size == 1:
        return "none (one rank)"
    if resources.gpus_per_node:
        return "nccl (Lightning's default with GPUs)"
    return "gloo (Lightning's default on CPUs)"


def _precision(value: Any, gpus: int) -> str:
    if value is None:
        return "32-true (Lightning's default; trainer.precision is not set)"
    shown = f"{value} (trainer.precision, passed to the Trainer as it is"
    unified = PRECISION_NAMES.get(str(value), str(value))
    if unified != str(value):
        shown += f"; Lightning reads it as {unified}"
    if unified == "16-mixed" and not gpus:
        shown += "; on CPUs Lightning uses bf16-mixed instead"
    return shown + ")"


def check_process_group(config: Mapping) -> None:
    """A strategy block's `process_group_backend` that the job could not start with:
    an unknown name, or NCCL without GPUs (refused by torch only once the job runs)."""
    trainer = _block(config, "trainer")
    spec = trainer.get("strategy") if isinstance(trainer, Mapping) else None
    if not isinstance(spec, Mapping) or spec.get("process_group_backend") is None:
        return
    key = "trainer.strategy.process_group_backend"
    value = spec["process_group_backend"]
    names = [part.rpartition(":")[2] for part in str(value).split(",")]  # cpu:gloo,cuda:nccl
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not a process group backend", key=key,
                          hint=f"use one of: {', '.join(BACKENDS)} (nccl with GPUs, gloo "
                               "on CPUs)")
    gpus = Resources.from_config(_block(config, "resources")).gpus_per_node
    if value == "nccl" and not gpus:
        raise ConfigError("nccl needs GPUs, and this run has none", key=key,
                          hint="use gloo on CPUs, or set resources.gpus_per_node")


def _block(config: Mapping, key: str) -> Any:
    """A block of the job config as plain values (the job config is an OmegaConf one)."""
    from omegaconf import OmegaConf

    node = config.get(key)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
