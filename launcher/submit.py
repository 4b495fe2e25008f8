"""Executors: Hydra launchers that submit through submitit, locally or to SLURM.

`hydra/launcher=local` (the default) runs each job as subprocesses of
`launch`, one per rank, at most `max_parallel` jobs at a time.
`hydra/launcher=slurm` submits a sweep as ONE job array (one sbatch call);
each rank is an srun task. Both build on hydra-submitit-launcher; the
request comes from the resource spec (`launcher.resources`) and nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

from launcher import rundir
from launcher.errors import LauncherError
from launcher.registry import ALREADY_DONE, REGISTRY, SubmittedJob, Sweep, now, remember, shown
from launcher.resources import ClusterProfile, Resources
from launcher.runstate import OUT_OF_RETRIES, STOPPED, status_as_far_as_readable

# Run directories of this launch that are already complete with the same config;
# set by `launcher.launch.launch`, which composed every job's config anyway.
FINISHED_RUNS: set[str] = set()
SUBMITIT_DIR = ".submitit"
POLL_S = 2.0
DONE_STATES = ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL",
               "PREEMPTED", "BOOT_FAIL", "DEADLINE")
# Kept when scrubbing a parent job's variables: it only says where the cluster is.
KEEP = ("SLURM_CONF",)
DISTRIBUTED = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
               "LOCAL_WORLD_SIZE")


class SweepFailed(LauncherError):
    exit_code = 1

    def __init__(self, jobs: list[SubmittedJob]) -> None:
        self.jobs = jobs
        failed = [j for j in jobs if j.failed]
        super().__init__(f"{len(failed)} of {len(jobs)} job(s) failed; see the logs named above")


class SweepStopped(SweepFailed):
    """`launch` was told to stop (Ctrl-C, SIGTERM) and its local jobs have stopped."""

    def __init__(self, jobs: list[SubmittedJob], exit_code: int) -> None:
        super().__init__(jobs)
        self.exit_code = exit_code
        self.args = ("stopped; each stopped run continues from its checkpoint with "
                     "launch retry, or the same command again",)


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
        state = Singleton.get_state()  # a deep copy of Hydra's state, the same for every job
        arguments = [(list(job_overrides[i]), "hydra.sweep.dir", records[i].index,
                      f"job_id_for_{records[i].index}", state) for i in todo]
        first_batch = not (sweep_dir / REGISTRY).is_file()
        sweep = open_sweep(sweep_dir, self._EXECUTOR, recipe_dir, config)
        sweep.jobs.extend(records)  # a sweeper may launch in several batches
        with self._supervision() as stop, refused_submission(sweep_dir, first_batch):
            jobs = self._submit(executor, arguments, [records[i] for i in todo], sweep, stop) \
                if todo else []
            sweep.save()
            remember(sweep_dir)
            if self.wait and jobs:
                self._wait(jobs, [records[i] for i in todo], sweep, stop)
        if stop is not None and stop.stopping:
            raise SweepStopped(records, stop.exit_code)
        if self.wait and jobs and any(r.failed for r in records):
            raise SweepFailed(records)
        returns = []
        for record in records:
            ret = JobReturn(status=JobStatus.COMPLETED)
            ret._return_value = record
            returns.append(ret)
        return returns

    def _supervision(self) -> contextlib.AbstractContextManager:
        """What watches `launch`'s own signals while jobs are submitted and awaited."""
        return contextlib.nullcontext()

    def _submit(self, executor: Any, arguments: list, records: list[SubmittedJob],
                sweep: Sweep, stop: Any) -> list:
        with scrubbed_scheduler_env():
            jobs = executor.map_array(self, *zip(*arguments, strict=True))
        for job, record in zip(jobs, records, strict=True):
            note_submission(job, record)
        return jobs

    def _wait(self, jobs: list, records: list[SubmittedJob], sweep: Sweep, stop: Any) -> None:
        try:
            wait_for(jobs, records, sweep)
        except KeyboardInterrupt:
            raise LauncherError(f"stopped waiting; the jobs go on: launch status "
                                f"{sweep.sweep_dir}") from None


class LocalSweepLauncher(SweepLauncher):
    _EXECUTOR = "local"

    def _supervision(self) -> contextlib.AbstractContextManager:
        from launcher.local_stop import StopRequests

        return StopRequests()

    def _submit(self, executor: Any, arguments: list, records: list[SubmittedJob],
                sweep: Sweep, stop: Any) -> list:
        """Start jobs one by one, never more than `max_parallel` at once, each on GPUs
        of its own (CUDA_VISIBLE_DEVICES) when it asks for some; none once `launch`
        is told to stop."""
        pool = GpuPool(visible_gpus(), int(executor.parameters.get("gpus_per_node") or 0))
        jobs: list = []
        for args, record in zip(arguments, records, strict=True):
            while not stop.stopping:
                pool.release_finished()
                running = sum(not j.done() for j in jobs)
                if running < self.max_parallel and pool.can_take():
                    break
                time.sleep(0.5)
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
            sweep.save()
        stop.act(jobs)
        return jobs

    def _wait(self, jobs: list, records: list[SubmittedJob], sweep: Sweep, stop: Any) -> None:
        wait_for(jobs, records, sweep, on_poll=lambda: stop.act(jobs))


def visible_gpus() -> list[int]:
    """GPUs this machine lets local jobs use (CUDA_VISIBLE_DEVICES is honoured)."""
    import torch

    return list(range(torch.cuda.device_count()))


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


class SlurmSweepLauncher(SweepLauncher):
    _EXECUTOR = "slurm"

    def __init__(self, max_parallel: int = 16, wait: bool = False, **params: Any) -> None:
        super().__init__(max_parallel=max_parallel, wait=wait, **params)


@contextlib.contextmanager
def refused_submission(sweep_dir: Path, first_batch: bool) -> Iterator[None]:
    """An sbatch refusal (a limit, an account, a QOS the checks could not know) as one
    line; the sweep folder of a launch that queued nothing is removed again."""
    from submitit.core.utils import FailedJobError

    try:
        yield
    except FailedJobError as exc:
        if first_batch:
            import shutil

            shutil.rmtree(sweep_dir, ignore_errors=True)
            with contextlib.suppress(OSError):  # only when no other sweep is there
                sweep_dir.parent.rmdir()
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        refusal = next((line for line in reversed(lines) if line.startswith("sbatch:")),
                       lines[-1] if lines else "sbatch failed")
        raise LauncherError(f"the scheduler refused the jobs, nothing was queued: "
                            f"{refusal}") from None


def open_sweep(sweep_dir: Path, backend: str, recipe_dir: Path, config: Any) -> Sweep:
    """The sweep's registry: the one a previous batch of this launch wrote, or a new one."""
    if (sweep_dir / REGISTRY).is_file():
        return Sweep.load(sweep_dir)
    return Sweep(str(sweep_dir), backend, str(recipe_dir), str(config.hydra.job.config_name),
                 list(config.hydra.overrides.task),
                 cluster=config.hydra.runtime.choices.get("cluster"), created=now())


def note_submission(job: Any, record: SubmittedJob) -> None:
    record.job_id = str(job.job_id)
    record.submitted = now()
    record.stdout = str(job.paths.stdout)
    record.stderr = str(job.paths.stderr)
    print(f"submitted job {record.job_id}: {shown(record.overrides)}", flush=True)


def wait_for(jobs: list, records: list[SubmittedJob], sweep: Sweep,
             on_poll: Any = None) -> None:
    """Block until every job ended: a line as each one does, and a compact count of
    states whenever it changes (the full table, redrawn, on a terminal)."""
    from launcher.status import render, rows

    pending = dict(enumerate(jobs))
    last = ""
    while pending:
        if on_poll is not None:
            on_poll()
        for i, job in list(pending.items()):
            if not job.done():
                continue
            del pending[i]
            settle(job, records[i])
            sweep.save()
            print(describe(records[i]), flush=True)
        if pending:
            text = render(sweep, rows(sweep, sweep.jobs))
            if not sys.stdout.isatty():
                text = text.splitlines()[0]  # one compact line in a log file
            if text != last:
                stamp = "" if sys.stdout.isatty() else f"[{time.strftime('%H:%M:%S')}] "
                print(stamp + text, flush=True)
                last = text
            time.sleep(POLL_S)


def settle(job: Any, record: SubmittedJob) -> None:
    """Record how a finished job ended: its scheduler state and its first error line."""
    import submitit

    if isinstance(job, submitit.LocalJob):
        # Its process has ended: a result file that is not there will not come (a
        # stopped job writes none), where submitit would wait 15 s for a slow NFS.
        job._results_timeout_s = 0
    try:
        job.results()
        record.state = "COMPLETED"
    except Exception as exc:  # a failed job is reported, not raised: the others carry on
        state = str(getattr(job, "state", "") or "FAILED").split()[0]
        record.state = state if state in DONE_STATES and state != "COMPLETED" else "FAILED"
        record.error = _last_line(str(exc))
    record.value = best_value(record.run_dir)
    run_state = status_as_far_as_readable(record.run_dir).get("state")
    if run_state == OUT_OF_RETRIES:
        record.state = "OUT_OF_RETRIES"
        record.error = "requeue budget used up (requeue.max_requeues)"
    elif run_state == STOPPED and record.state != "COMPLETED":
        record.state = "STOPPED"
        record.error = "stopped by a signal; launch retry (or the same command) continues it"


def best_value(run_dir: str) -> float | None:
    from launcher.status import metric_history, tracked_metric

    problems: list[str] = []  # a damaged metrics.csv gives what it can; status notes it
    metric, mode = tracked_metric(run_dir, problems)
    values = [v for _, v in metric_history(run_dir, metric, problems)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def describe(record: SubmittedJob) -> str:
    what = shown(record.overrides)
    line = f"job {record.job_id} {record.state}: {what}\n  run directory: {record.run_dir}"
    if record.state == "STOPPED":
        line += f"\n  {record.error}"
    elif record.failed:
        log = Path(record.run_dir) / "run.log"
        line += (f"\n  error: {record.error}\n  traceback: {log if log.exists() else record.stderr}"
                 f"\n  scheduler log: {record.stderr}")
    return line


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return (errors or lines or ["unknown error"])[-1][:300]
