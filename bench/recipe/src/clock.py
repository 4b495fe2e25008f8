"""The clock every benchmarked training path carries: the same few calls per step.

No Lightning import here, so the plain PyTorch loop uses it as it is (the
Lightning callback around it is `src.timing.StepTimer`). Rank 0 appends JSON
lines to the file named by `$BENCH_EVENTS`:

- `first_step`, written at once when this process finished its first step
  (so it survives a process that is requeued or killed right after): wall
  times of process start, fit start, checkpoint restore and that first step;
- `steps`, written when training ends: `perf_counter` time of every step end.

Wall times (`time.time()`) are comparable across processes on one machine,
which is what time to first step and resume latency are measured with.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

EVENTS_ENV = "BENCH_EVENTS"


def process_start_time() -> float:
    """Wall time at which this process started (Linux /proc; 10 ms resolution)."""
    try:
        with open("/proc/self/stat") as file:
            ticks = int(file.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as file:
            boot = next(int(line.split()[1]) for line in file if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        return float("nan")


class StepClock:
    """Step-end timestamps and a few named wall-clock marks of one process."""

    def __init__(self, path: str | None = None, rank: int = 0) -> None:
        self.path = path if path is not None else os.environ.get(EVENTS_ENV)
        self.rank = rank
        self.marks: dict[str, float] = {"process_start": process_start_time()}
        self.steps: list[float] = []

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()

    def step(self, global_step: int) -> None:
        self.steps.append(time.perf_counter())
        if len(self.steps) == 1:
            self.mark("first_step")
            self._append({"event": "first_step", "global_step": global_step,
                          "restart": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
                          "pid": os.getpid(), **self.marks})

    def finish(self, world_size: int = 1, **details: Any) -> None:
        self._append({"event": "steps", "world_size": world_size, "steps": self.steps,
                      **self.marks, **details})

    def _append(self, record: dict[str, Any]) -> None:
        if self.path and self.rank == 0:
            with open(self.path, "a") as file:
                file.write(json.dumps(record) + "\n")
