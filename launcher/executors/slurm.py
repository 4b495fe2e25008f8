"""The SLURM executor: a sweep is ONE job array (one sbatch call); each rank an srun task.

`launch` returns once the jobs are queued; `--wait` blocks."""

from __future__ import annotations

from typing import Any

from launcher.executors.base import SweepLauncher


class SlurmSweepLauncher(SweepLauncher):
    _EXECUTOR = "slurm"

    def __init__(self, max_parallel: int = 16, wait: bool = False, **params: Any) -> None:
        super().__init__(max_parallel=max_parallel, wait=wait, **params)
