"""The SLURM executor: a sweep is one job array (one sbatch call) when the cluster's
`MaxArraySize` allows, else several chained arrays (`launcher.executors.arrays`);
each rank is an srun task.

`launch` returns once the jobs are queued; `--wait` blocks."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from launcher.compat.submitit import job_of_arguments
from launcher.executors.arrays import ClusterLimits, chunks, read_limits
from launcher.executors.base import SweepLauncher, note_submission, scrubbed_scheduler_env
from launcher.executors.plan_file import planned_limits
from launcher.executors.registry import SubmittedJob, Sweep
from launcher.executors.shared_call import shared_call


class SlurmSweepLauncher(SweepLauncher):
    _EXECUTOR = "slurm"
    DEFAULTS: dict[str, Any] = {**SweepLauncher.DEFAULTS, "max_parallel": 16, "wait": False}

    def _submit(self, executor: Any, arguments: list, records: list[SubmittedJob],
                sweep: Sweep, stop: Any) -> list:
        """One array per chunk; each after the first waits for the one before, so that
        `max_parallel` caps the whole sweep."""
        extra = dict(executor.parameters.get("additional_parameters") or {})
        overrides, indices, states = zip(*map(job_of_arguments, arguments), strict=True)
        call = shared_call(self, states[0], Path(str(executor.folder)).parent, indices[0])
        jobs: list = []
        with scrubbed_scheduler_env(), cancelled_if_refused(jobs):
            for chunk in chunks(len(arguments), self._limits()):
                after = {"dependency": f"afterany:{array_id(jobs[-1])}"} if jobs else {}
                executor.update_parameters(additional_parameters={**extra, **after})
                part = slice(chunk.first, chunk.last + 1)
                jobs.extend(executor.map_array(call, list(overrides[part]),
                                               list(indices[part])))
        for job, record in zip(jobs, records, strict=True):
            note_submission(job, record)
        return jobs

    def _limits(self) -> ClusterLimits:
        """As `launch` read them for the plan (and the dry run); read here for a plain
        Hydra app, which has no plan."""
        if self.plan_file:
            return ClusterLimits.from_dict(planned_limits(self.plan_file))
        cluster = self.config.get("cluster") or {}
        return read_limits(cluster.get("account"), cluster.get("qos"))


def array_id(job: Any) -> str:
    return str(job.job_id).split("_", 1)[0]


@contextlib.contextmanager
def cancelled_if_refused(jobs: list) -> Iterator[None]:
    """When sbatch refuses an array after others were queued, those are cancelled, so
    that a refused launch leaves nothing queued (the sweep folder goes too)."""
    try:
        yield
    except Exception:
        queued = sorted({array_id(job) for job in jobs}, key=int, reverse=True)
        if queued:
            subprocess.run(["scancel", *queued], check=False)
            print(f"cancelled the {len(queued)} array(s) queued before the refusal: "
                  f"{' '.join(reversed(queued))}", flush=True)
        raise
