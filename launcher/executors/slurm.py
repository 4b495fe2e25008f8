"""The SLURM executor: a sweep is ONE job array (one sbatch call); each rank an srun task.

`launch` returns once the jobs are queued; `--wait` blocks."""

from __future__ import annotations

from typing import Any

from launcher.executors.base import SweepLauncher


class SlurmSweepLauncher(SweepLauncher):
    _EXECUTOR = "slurm"
    DEFAULTS: dict[str, Any] = {**SweepLauncher.DEFAULTS, "max_parallel": 16, "wait": False}
