"""`StepTimer`: the benchmark clock (`src.clock.StepClock`) as a Lightning callback.

Both Lightning paths (the launcher's and the hand-written script) carry it,
so its own cost (one `perf_counter()` and one list append per step) is the
same on both sides of every ratio.

With `$BENCH_PROFILE` set, it also profiles the training loop alone with
cProfile, from step `PROFILE_FROM` to the end of training (start-up left
out), and writes the stats there: what B1's profile compares.
"""

from __future__ import annotations

import os
from typing import Any

from pytorch_lightning.callbacks import Callback

from .clock import StepClock

PROFILE_ENV = "BENCH_PROFILE"
PROFILE_FROM = 10  # steps of warm-up before profiling starts


class StepTimer(Callback):
    def __init__(self, path: str | None = None) -> None:
        self.clock = StepClock(path)
        self.profile_to = os.environ.get(PROFILE_ENV)
        self.profiler: Any = None

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
        if self.profile_to and len(self.clock.steps) == PROFILE_FROM:
            import cProfile

            self.profiler = cProfile.Profile()
            self.profiler.enable()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        import torch

        if self.profiler is not None:
            self.profiler.disable()
            if trainer.global_rank == 0:
                self.profiler.dump_stats(self.profile_to)
        self.clock.finish(trainer.world_size, threads=torch.get_num_threads(),
                          omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                          cpus=len(os.sched_getaffinity(0)))
