"""This recipe's own Trainer: what the job ran on, how fast it went, and options checked early.

Selected with `trainer._target_` only:

    launch egs3/tones/asr1 +trainer._target_=src.trainer.ClusterTrainer

It adds a `ClusterInfo` callback, which writes to the run directory

- `cluster.json`: per rank, the node, SLURM job and task, CPUs, threads,
  accelerator and GPUs (name, memory), gathered on rank 0;
- `throughput.csv`: per epoch, batches, samples (all ranks), seconds and
  samples per second, appended across resumes;

and refuses, before anything is queued, options this cluster does not want:
fp16 mixed precision (its GPUs do bf16, which needs no loss scaling) and
runs without an end (a job has a time limit; an endless run would be
requeued forever).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import Callback

from launcher.components.trainers.trainer import ESPnet3LightningTrainer
from launcher.errors import ConfigError

CLUSTER_FILE = "cluster.json"
THROUGHPUT_FILE = "throughput.csv"
THROUGHPUT_COLUMNS = ("epoch", "batches", "samples", "seconds", "samples_per_s")
FP16 = ("16", "16-mixed", "16-true")


class ClusterTrainer(ESPnet3LightningTrainer):
    def extra_callbacks(self) -> list:
        return [ClusterInfo(self.exp_dir)]

    @classmethod
    def check_options(cls, config: Mapping) -> None:
        super().check_options(config)
        if str(config.get("precision", "32-true")) in FP16:
            raise ConfigError("fp16 is not used on this cluster", key="trainer.precision",
                              hint="use trainer.precision=bf16-mixed")
        endless = config.get("max_epochs") == -1 and config.get("max_steps", -1) == -1
        if endless and not config.get("max_time"):
            raise ConfigError("this run has no end (max_epochs: -1 and no max_steps or "
                              "max_time), but a job has a time limit",
                              key="trainer.max_epochs", hint="set trainer.max_epochs")


class ClusterInfo(Callback):
    """Node and GPU facts at fit start; samples per second at each epoch end."""

    def __init__(self, exp_dir: str | Path) -> None:
        self.exp_dir = Path(exp_dir)
        self._start = 0.0
        self._batches = self._samples = 0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        ranks = gather(node_facts(trainer), trainer)
        if trainer.is_global_zero:
            write_json(self.exp_dir / CLUSTER_FILE,
                       {"world_size": trainer.world_size, "ranks": ranks})

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.monotonic()
        self._batches = self._samples = 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batches += 1
        self._samples += batch_size(batch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or not self._batches:
            return
        seconds = max(time.monotonic() - self._start, 1e-9)
        samples = self._samples * trainer.world_size  # ranks see equal shares
        row = (trainer.current_epoch + 1, self._batches, samples, round(seconds, 3),
               round(samples / seconds, 2))
        path = self.exp_dir / THROUGHPUT_FILE
        new = not path.exists()
        with path.open("a") as file:
            if new:
                file.write(",".join(THROUGHPUT_COLUMNS) + "\n")
            file.write(",".join(str(v) for v in row) + "\n")


def node_facts(trainer: Any) -> dict[str, Any]:
    import torch

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"index": i, "name": props.name,
                         "memory_gb": round(props.total_memory / 2**30, 1)})
    env = os.environ
    return {
        "global_rank": trainer.global_rank, "local_rank": trainer.local_rank,
        "node_rank": trainer.node_rank, "host": socket.gethostname(),
        "node": env.get("SLURMD_NODENAME", socket.gethostname()),
        "slurm_job_id": env.get("SLURM_JOB_ID"), "slurm_array_job_id":
            env.get("SLURM_ARRAY_JOB_ID"), "slurm_array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "pid": os.getpid(), "cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "accelerator": type(trainer.accelerator).__name__,
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"), "gpus": gpus,
    }


def gather(facts: dict, trainer: Any) -> list[dict]:
    """Every rank's facts, on every rank (one list when training alone)."""
    import torch.distributed as dist

    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return [facts]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, facts)
    return gathered


def batch_size(batch: Any) -> int:
    """The leading size of the first tensor in the batch."""
    import torch

    if isinstance(batch, Mapping):
        values = list(batch.values())
    else:
        values = list(batch) if isinstance(batch, list | tuple) else [batch]
    for value in values:
        if torch.is_tensor(value) and value.dim() > 0:
            return int(value.shape[0])
    return 0


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
