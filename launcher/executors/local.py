"""The local executor: each job's ranks as subprocesses of `launch`.

At most `max_parallel` jobs at once, each on GPUs of its own
(CUDA_VISIBLE_DEVICES) when it asks for some; Ctrl-C or SIGTERM to `launch`
stops them (`launcher.executors.local_stop`)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from launcher.errors import LauncherError
from launcher.executors.base import SweepLauncher, note_submission, scrubbed_scheduler_env
from launcher.executors.registry import (
    SubmittedJob,
    Sweep,
)
from launcher.executors.waiting import Saving, wait_for

# How often a full `launch` looks for a job that ended, to start the next one in its
# place: only the running jobs (max_parallel of them) are looked at.
SLOT_POLL_S = 0.05


class LocalSweepLauncher(SweepLauncher):
    _EXECUTOR = "local"

    def _supervision(self) -> contextlib.AbstractContextManager:
        from launcher.executors.local_stop import StopRequests

        return StopRequests()

    def _submit(self, executor: Any, arguments: list, records: list[SubmittedJob],
                sweep: Sweep, stop: Any) -> list:
        """Start jobs one by one, never more than `max_parallel` at once, each on GPUs
        of its own (CUDA_VISIBLE_DEVICES) when it asks for some; none once `launch`
        is told to stop."""
        per_job = int(executor.parameters.get("gpus_per_node") or 0)
        pool = GpuPool(visible_gpus() if per_job else [], per_job)  # torch only for GPUs
        jobs: list = []
        running: list = []  # started, not yet seen to end: only these are polled
        saving = Saving(sweep)
        for args, record in zip(arguments, records, strict=True):
            while not stop.stopping:
                pool.release_finished()
                running = [job for job in running if not job.done()]  # reaps the ended
                if len(running) < self.max_parallel and pool.can_take():
                    break
                time.sleep(SLOT_POLL_S)
            if stop.stopping:
                record.state, record.job_id = "CANCELLED", "-"
                record.note = "not started: launch was stopped"
                continue
            gpus = pool.take()
            if gpus:
                executor.update_parameters(visible_gpus=gpus)
            with scrubbed_scheduler_env(), stop.spawning():
                job = executor.submit(self, *args)
            pool.hold(job, gpus)
            note_submission(job, record)
            jobs.append(job)
            running.append(job)
            saving.soon()
        stop.act(running)
        return jobs

    def _wait(self, jobs: list, records: list[SubmittedJob], sweep: Sweep, stop: Any) -> None:
        """Wait for the jobs started: the first ones, when `launch` was stopped before
        it started them all (the others are recorded as not started)."""
        wait_for(jobs, records[:len(jobs)], sweep, on_poll=lambda: stop.act(jobs))


def visible_gpus() -> list[int]:
    """GPUs this machine lets local jobs use, as a job's CUDA_VISIBLE_DEVICES names them.

    Under `launch`'s own CUDA_VISIBLE_DEVICES (say 2,3) torch counts two GPUs, and a
    job given "0,1" would see the machine's GPUs 0 and 1: the jobs get the entries
    of that variable instead. GPUs named by UUID (GPU-..., MIG-...) keep their names."""
    import torch

    count = torch.cuda.device_count()
    stated = os.environ.get("CUDA_VISIBLE_DEVICES")
    if stated is None:
        return list(range(count))
    names = [name.strip() for name in stated.split(",")][:count]  # torch stops there too
    return [int(name) if name.isdigit() else NamedGpu(i, name) for i, name in enumerate(names)]


class NamedGpu(int):
    """A GPU that CUDA_VISIBLE_DEVICES names by UUID: submitit takes a job's GPUs as
    integers and writes each into the job's CUDA_VISIBLE_DEVICES with str()."""

    name: str

    def __new__(cls, position: int, name: str) -> NamedGpu:
        gpu = super().__new__(cls, position)
        gpu.name = name
        return gpu

    def __getnewargs__(self) -> tuple[int, str]:
        return int(self), self.name

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


class GpuPool:
    """Hands each local job its own GPUs and takes them back when it ends."""

    def __init__(self, gpus: list[int], per_job: int) -> None:
        if per_job > len(gpus):
            raise LauncherError(
                f"each job asks for {per_job} GPU(s) (resources.gpus_per_node) but this "
                f"machine has {len(gpus)}; use hydra/launcher=slurm or fewer GPUs")
        self.free, self.per_job = list(gpus), per_job
        self.held: list[tuple[Any, list[int]]] = []

    def can_take(self) -> bool:
        return len(self.free) >= self.per_job

    def take(self) -> list[int]:
        taken, self.free = self.free[:self.per_job], self.free[self.per_job:]
        return taken

    def hold(self, job: Any, gpus: list[int]) -> None:
        if gpus:
            self.held.append((job, gpus))

    def release_finished(self) -> None:
        for job, gpus in list(self.held):
            if job.done():
                self.held.remove((job, gpus))
                self.free = sorted(self.free + gpus)
