"""`StepTimer`: the benchmark clock (`src.clock.StepClock`) as a Lightning callback.

Both Lightning paths (the launcher's and the hand-written script) carry it,
so its own cost (one `perf_counter()` and one list append per step) is the
same on both sides of every ratio.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import Callback

from .clock import StepClock


class StepTimer(Callback):
    def __init__(self, path: str | None = None) -> None:
        self.clock = StepClock(path)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        # `setup`, not `on_fit_start`: Lightning restores a checkpoint in between.
        if stage == "fit":
            self.clock.rank = trainer.global_rank
            self.clock.mark("fit_start")

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
        self.clock.mark("restored")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.clock.step(trainer.global_step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        import os

        import torch

        self.clock.finish(trainer.world_size, threads=torch.get_num_threads(),
                          omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                          cpus=len(os.sched_getaffinity(0)))
