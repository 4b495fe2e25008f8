"""Executors: Hydra launchers that submit through submitit, locally or to SLURM.

`hydra/launcher=local` (the default) runs each job as subprocesses of
`launch`, one per rank, at most `max_parallel` jobs at a time.
`hydra/launcher=slurm` submits a sweep as ONE job array (one sbatch call);
each rank is an srun task. Both build on hydra-submitit-launcher; the
request comes from the resource spec (`launcher.resources`) and nowhere else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

from launcher import rundir
from launcher.errors import LauncherError
from launcher.resources import ClusterProfile, Resources
from launcher.runstate import OUT_OF_RETRIES, read_status

# Run directories of this launch that are already complete with the same config;
# set by `launcher.launch.launch`, which composed every job's config anyway.
FINISHED_RUNS: set[str] = set()
REGISTRY = "jobs.json"
ALREADY_DONE = "already complete: not submitted again"
SUBMITIT_DIR = ".submitit"
POLL_S = 2.0
DONE_STATES = ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL",
               "PREEMPTED", "BOOT_FAIL", "DEADLINE")
# Kept when scrubbing a parent job's variables: it only says where the cluster is.
KEEP = ("SLURM_CONF",)
DISTRIBUTED = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
               "LOCAL_WORLD_SIZE")


@dataclass
class SubmittedJob:
    """One job of a launch, as `launch` reports it and `jobs.json` records it."""

    index: int
    overrides: list[str]
    run_dir: str
    job_id: str = ""
    stdout: str = ""
    stderr: str = ""
    state: str = "QUEUED"
    error: str | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.state not in ("COMPLETED", "QUEUED", "RUNNING", "PENDING")


class SweepFailed(LauncherError):
    def __init__(self, jobs: list[SubmittedJob]) -> None:
        self.jobs = jobs
        failed = [j for j in jobs if j.failed]
        super().__init__(f"{len(failed)} of {len(jobs)} job(s) failed; see the logs named above")


def job_name(recipe_dir: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(Path(recipe_dir).parts[-2:]))


def executor_parameters(backend: str, config: Mapping, name: str,
                        max_parallel: int) -> dict[str, Any]:
    """The submitit parameters of one job of this launch, from its config."""
    from launcher.preemption import RequeuePolicy

    resources = Resources.from_config(config.get("resources"))
    cluster = ClusterProfile.from_config(config.get("cluster"))
    request = resources.scheduler_request(backend, cluster)
    if backend == "slurm":
        request.update(cluster.slurm_extras(), job_name=name, array_parallelism=max_parallel)
        # The launcher owns the warning signal (see launcher.preemption).
        policy = RequeuePolicy.from_config(config.get("requeue"))
        request["additional_parameters"] = {**request["additional_parameters"],
                                            "signal": policy.sbatch_signal()}
        request.pop("signal_delay_s", None)
    return request


def make_executor(backend: str, folder: Path, parameters: Mapping[str, Any]) -> Any:
    import submitit

    cls = submitit.SlurmExecutor if backend == "slurm" else submitit.LocalExecutor
    executor = cls(folder=str(folder))
    executor.update_parameters(**parameters)
    return executor


def sbatch_script(executor: Any, num_jobs: int) -> str:
    """The exact batch script `launch` submits for a sweep of `num_jobs` jobs."""
    from submitit.slurm.slurm import _make_sbatch_string

    parameters = dict(executor.parameters)
    if num_jobs > 1:
        parameters["map_count"] = num_jobs
    return _make_sbatch_string(command=executor._submitit_command_str, folder=executor.folder,
                               **parameters)


@contextlib.contextmanager
def scrubbed_scheduler_env() -> Iterator[None]:
    """Submit without the SLURM_* variables of an allocation we may be running in.

    sbatch exports the submitting environment; a parent job's SLURM_NTASKS or
    SLURM_CPUS_PER_TASK would otherwise steer the new job's srun.
    """
    hidden = {k: os.environ.pop(k) for k in list(os.environ)
              if (k.startswith(("SLURM_", "SLURMD_", "SRUN_", "SBATCH_", "SUBMITIT_"))
                  or k in DISTRIBUTED) and k not in KEEP}
    try:
        yield
    finally:
        os.environ.update(hidden)


class SweepLauncher(BaseSubmititLauncher):
    """Submits every job of a launch and reports what became of each."""

    _EXECUTOR = "local"

    def __init__(self, max_parallel: int = 2, wait: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.max_parallel = int(max_parallel)
        self.wait = bool(wait)

    # ---- in the job -----------------------------------------------------------
    def __call__(self, *args: Any) -> str:
        from hydra.core.utils import JobStatus

        ret = super().__call__(*args)
        if ret.status == JobStatus.FAILED:
            raise ret._return_value  # the job must end as failed for the scheduler too
        return ret._return_value

    # ---- in `launch` ------------------------------------------------------------
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import JobReturn, JobStatus

        config = self.config
        recipe_dir = rundir.recipe_dir_of(config.hydra.runtime.config_sources)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        executor = make_executor(self._EXECUTOR, sweep_dir / SUBMITIT_DIR / "%j",
                                 executor_parameters(self._EXECUTOR, config,
                                                     job_name(recipe_dir), self.max_parallel))
        records = [SubmittedJob(initial_job_idx + i, list(o),
                                str(rundir.run_dir(recipe_dir, config.get("exp_root"), o)))
                   for i, o in enumerate(job_overrides)]
        # A finished run is never trained again: relaunching a sweep only submits the rest.
        todo = [i for i, r in enumerate(records) if r.run_dir not in FINISHED_RUNS]
        for i, record in enumerate(records):
            if i not in todo:
                record.state, record.job_id = "COMPLETED", "-"
                record.note = ALREADY_DONE
        arguments = [(list(job_overrides[i]), "hydra.sweep.dir", records[i].index,
                      f"job_id_for_{records[i].index}", Singleton.get_state()) for i in todo]
        jobs = self._submit(executor, arguments, [records[i] for i in todo], sweep_dir) \
            if todo else []
        write_registry(sweep_dir, self._EXECUTOR, records)
        if self.wait and jobs:
            wait_for(jobs, [records[i] for i in todo])
            write_registry(sweep_dir, self._EXECUTOR, records)
            if any(r.failed for r in records):
                raise SweepFailed(records)
        returns = []
        for record in records:
            ret = JobReturn(status=JobStatus.COMPLETED)
            ret._return_value = record
            returns.append(ret)
        return returns

    def _submit(self, executor: Any, arguments: list, records: list[SubmittedJob],
                sweep_dir: Path) -> list:
        with scrubbed_scheduler_env():
            jobs = executor.map_array(self, *zip(*arguments, strict=True))
        for job, record in zip(jobs, records, strict=True):
            note_submission(job, record)
        return jobs


class LocalSweepLauncher(SweepLauncher):
    _EXECUTOR = "local"

    def _submit(self, executor: Any, arguments: list, records: list[SubmittedJob],
                sweep_dir: Path) -> list:
        """Start jobs one by one, never more than `max_parallel` at once."""
        jobs: list = []
        for args, record in zip(arguments, records, strict=True):
            while sum(not j.done() for j in jobs) >= self.max_parallel:
                time.sleep(0.5)
            with scrubbed_scheduler_env():
                job = executor.submit(self, *args)
            note_submission(job, record)
            jobs.append(job)
        return jobs


class SlurmSweepLauncher(SweepLauncher):
    _EXECUTOR = "slurm"

    def __init__(self, max_parallel: int = 16, wait: bool = False, **params: Any) -> None:
        super().__init__(max_parallel=max_parallel, wait=wait, **params)


def note_submission(job: Any, record: SubmittedJob) -> None:
    record.job_id = str(job.job_id)
    record.stdout = str(job.paths.stdout)
    record.stderr = str(job.paths.stderr)
    print(f"submitted job {record.job_id}: {shown(record.overrides)}", flush=True)


def write_registry(sweep_dir: Path, backend: str, records: list[SubmittedJob]) -> None:
    """jobs.json: what was submitted where, so it can be followed from any shell."""
    data = {"backend": backend, "sweep_dir": str(sweep_dir),
            "jobs": [asdict(r) for r in records]}
    tmp = sweep_dir / f".{REGISTRY}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(sweep_dir / REGISTRY)


def wait_for(jobs: list, records: list[SubmittedJob]) -> None:
    """Block until every job ended; print one line as each one does."""
    pending = dict(enumerate(jobs))
    while pending:
        for i, job in list(pending.items()):
            if not job.done():
                continue
            del pending[i]
            settle(job, records[i])
            print(describe(records[i]), flush=True)
        if pending:
            time.sleep(POLL_S)


def settle(job: Any, record: SubmittedJob) -> None:
    """Record how a finished job ended: its scheduler state and its first error line."""
    try:
        job.results()
        record.state = "COMPLETED"
    except Exception as exc:  # a failed job is reported, not raised: the others carry on
        state = str(getattr(job, "state", "") or "FAILED").split()[0]
        record.state = state if state in DONE_STATES and state != "COMPLETED" else "FAILED"
        record.error = _last_line(str(exc))
    run_state = read_status(record.run_dir).get("state")
    if run_state == OUT_OF_RETRIES:
        record.state = "OUT_OF_RETRIES"
        record.error = "requeue budget used up (requeue.max_requeues)"


def shown(overrides: Sequence[str]) -> str:
    """The overrides that make this run what it is, as the user typed them."""
    kept = [o.removeprefix("++") for o in overrides if rundir.defines_run(o)]
    return " ".join(kept) or "(defaults)"


def describe(record: SubmittedJob) -> str:
    what = shown(record.overrides)
    line = f"job {record.job_id} {record.state}: {what}\n  run directory: {record.run_dir}"
    if record.failed:
        log = Path(record.run_dir) / "run.log"
        line += (f"\n  error: {record.error}\n  traceback: {log if log.exists() else record.stderr}"
                 f"\n  scheduler log: {record.stderr}")
    return line


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return (errors or lines or ["unknown error"])[-1][:300]
