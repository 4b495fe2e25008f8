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
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

from launcher import layout
from launcher.compat.submitit import job_arguments
from launcher.conf import is_config_group
from launcher.errors import LauncherError
from launcher.executors.hydra_app import overrides_for_run
from launcher.executors.options import checked_options
from launcher.executors.plan_file import PlannedRun, plan_key, read_plan
from launcher.executors.registry import (
    ALREADY_DONE,
    REGISTRY,
    SubmittedJob,
    Sweep,
    now,
    remember,
    shown,
)
from launcher.executors.request import executor_parameters, job_name, make_executor
from launcher.executors.waiting import wait_for
from launcher.identity import RunIdentity, identity_of
from launcher.job.config import config_dir_of, recipe_dir_of, run_dir_for
from launcher.signals import JobEnds, run_to_the_limit

SUBMITIT_DIR = layout.SUBMITIT_DIR
# Kept when scrubbing a parent job's variables: it only says where the cluster is.
KEEP = ("SLURM_CONF",)
DISTRIBUTED = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
               "LOCAL_WORLD_SIZE")


class SweepFailed(LauncherError):
    """Jobs of a launch failed; the message names each one's error line and the log with
    its traceback (the summary printed before it lists every job)."""

    exit_code = 1

    def __init__(self, jobs: list[SubmittedJob]) -> None:
        from launcher.executors.outcome import failure_summary

        self.jobs = jobs
        super().__init__(failure_summary(jobs))


class SweepStopped(SweepFailed):
    """`launch` was told to stop (Ctrl-C, SIGTERM) and its local jobs have stopped."""

    def __init__(self, jobs: list[SubmittedJob], exit_code: int) -> None:
        super().__init__(jobs)
        self.exit_code = exit_code
        self.args = ("stopped; each stopped run continues from its checkpoint with "
                     "launch retry, or the same command again",)


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
    """Submits every job of a launch and reports what became of each.

    From `launch` (a plan file is named) each job goes to the run folder its plan
    gives it; from a plain Hydra app each goes where Hydra would put it
    (`hydra.sweep.dir`/`hydra.sweep.subdir`). Either way the jobs are recorded in
    the sweep's `jobs.json`, so `launch status` can follow them."""

    _EXECUTOR = "local"
    DEFAULTS: dict[str, Any] = {"max_parallel": 2, "wait": True, "requeue": False,
                                "plan_file": None}

    def __init__(self, **options: Any) -> None:
        options = checked_options(self._EXECUTOR, options, where="hydra.launcher")
        super().__init__()
        chosen = {**self.DEFAULTS, **options}
        self.max_parallel = int(chosen["max_parallel"])
        self.wait = bool(chosen["wait"])
        self.requeue = bool(chosen["requeue"])
        self.plan_file = chosen["plan_file"]  # from `launch`; None from a plain Hydra app

    # ---- in the job -----------------------------------------------------------
    def __call__(self, *args: Any) -> Any:
        from hydra.core.utils import JobStatus

        from launcher.job.log_files import register_log_name_resolver

        register_log_name_resolver()  # the job's log file is named by rank
        if not (self.plan_file or self.requeue):
            run_to_the_limit()  # a plain task that cannot resume
        try:
            ret = super().__call__(*args)
        except JobEnds as ended:  # this process is the job: its exit status says how
            raise SystemExit(ended.exit_code) from None
        if ret.status == JobStatus.FAILED:
            raise ret._return_value  # the job must end as failed for the scheduler too
        return ret

    # ---- in `launch` ------------------------------------------------------------
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        from hydra.core.singleton import Singleton

        from launcher.executors.job_returns import job_returns

        config = self.config
        app_dir = app_dir_of(config.hydra.runtime.config_sources)
        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        planned = read_plan(self.plan_file)
        runs = [self._run_of(list(o), initial_job_idx + i, app_dir, planned)
                for i, o in enumerate(job_overrides)]
        sweep_dir.mkdir(parents=True, exist_ok=True)
        name = job_name(app_dir) if self.plan_file else str(config.hydra.job.name)
        executor = make_executor(self._EXECUTOR, sweep_dir / SUBMITIT_DIR / "%j",
                                 executor_parameters(self._EXECUTOR, config, name,
                                                     self.max_parallel, self._requeue_policy()))
        records = [SubmittedJob(initial_job_idx + i, list(o), run.run_dir)
                   for i, (o, run) in enumerate(zip(job_overrides, runs, strict=True))]
        # A finished run is never trained again: relaunching a sweep only submits the rest.
        todo = [i for i, run in enumerate(runs) if not run.finished]
        for i, record in enumerate(records):
            if i not in todo:
                record.state, record.job_id = "COMPLETED", "-"
                record.note = ALREADY_DONE
        state = Singleton.get_state()  # a deep copy of Hydra's state, the same for every job
        arguments = [job_arguments([*job_overrides[i], *_placed(runs[i])], records[i].index,
                                   state) for i in todo]
        first_batch = not (sweep_dir / REGISTRY).is_file()
        sweep = open_sweep(sweep_dir, self._EXECUTOR, app_dir, config)
        sweep.jobs.extend(records)  # a sweeper may launch in several batches
        wait = self.wait or results_needed(config)
        with self._supervision() as stop, refused_submission(sweep_dir, first_batch):
            jobs = self._submit(executor, arguments, [records[i] for i in todo], sweep, stop) \
                if todo else []
            sweep.save()
            remember(sweep_dir)
            if wait and jobs:
                self._wait(jobs, [records[i] for i in todo], sweep, stop)
        if stop is not None and stop.stopping:
            if not self.plan_file:  # a plain app: Hydra would print a traceback
                print(f"launch: {SweepStopped(records, stop.exit_code)}", file=sys.stderr)
                raise SystemExit(stop.exit_code)
            raise SweepStopped(records, stop.exit_code)
        if self.plan_file and wait and jobs and any(r.failed for r in records):
            raise SweepFailed(records)  # `launch` reports every job; Hydra only the first
        return job_returns(dict(zip(todo, jobs, strict=False)), records, waited=wait)

    def _requeue_policy(self) -> Any:
        """When SLURM warns of the time limit, and how often a job is requeued then."""
        from launcher.signals import RequeuePolicy

        if self.plan_file:  # a recipe's jobs resume; its own requeue: block says how often
            return RequeuePolicy.from_config(self.config.get("requeue"))
        return RequeuePolicy()

    def _run_of(self, overrides: list[str], index: int, app_dir: Path | None,
                planned: dict[str, PlannedRun]) -> PlannedRun:
        """The plan's entry for a job. A job the plan could not foresee (an optimising
        sweeper's trial) gets its identity here, the same way; a plain Hydra app's job
        goes where Hydra would put it."""
        found = planned.get(plan_key(overrides))
        if found is not None:
            return found
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        if not self.plan_file or app_dir is None:
            return PlannedRun(overrides, hydra_job_dir(config, index), "", "")
        conf_dir = config_dir_of(self.config.hydra.runtime.config_sources)
        identity = identity_of(config, overrides, lambda key: is_config_group(conf_dir, key))
        run_dir = run_dir_for(config, app_dir, identity.name)
        return PlannedRun(overrides, str(run_dir), identity.name, identity.fingerprint)

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

@contextlib.contextmanager
def refused_submission(sweep_dir: Path, first_batch: bool) -> Iterator[None]:
    """An sbatch refusal (a limit, an account, a QOS the checks could not know) as one
    line; the sweep folder of a launch that queued nothing is removed again."""
    from submitit.core.utils import FailedJobError

    try:
        yield
    except FailedJobError as exc:
        if first_batch:
            discard_sweep(sweep_dir)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        refusal = next((line for line in reversed(lines) if line.startswith("sbatch:")),
                       lines[-1] if lines else "sbatch failed")
        raise LauncherError(f"the scheduler refused the jobs, nothing was queued: "
                            f"{refusal}") from None


def discard_sweep(sweep_dir: Path) -> None:
    """Remove the folder of a launch that queued nothing (and `sweeps/` when it is the
    only sweep there)."""
    import shutil

    shutil.rmtree(sweep_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # only when no other sweep is there
        sweep_dir.parent.rmdir()


def _placed(run: PlannedRun) -> list[str]:
    """A job's folder and identity, as overrides of its Hydra job."""
    if not run.name:
        return []
    return overrides_for_run(Path(run.run_dir), RunIdentity(run.name, run.fingerprint))


def open_sweep(sweep_dir: Path, backend: str, app_dir: Path | None, config: Any) -> Sweep:
    """The sweep's registry: the one a previous batch of this launch wrote, or a new one."""
    if (sweep_dir / REGISTRY).is_file():
        return Sweep.load(sweep_dir)
    return Sweep(str(sweep_dir), backend, str(app_dir or ""), str(config.hydra.job.config_name),
                 list(config.hydra.overrides.task),
                 cluster=config.hydra.runtime.choices.get("cluster"), created=now())


def app_dir_of(config_sources: Any) -> Path | None:
    """The recipe (or app) folder; None for an app whose configs come from a package or
    the ConfigStore."""
    try:
        return recipe_dir_of(config_sources)
    except LookupError:
        return None


def hydra_job_dir(sweep_config: Any, index: int) -> str:
    """The folder Hydra gives job `index` of a sweep (`hydra.sweep.dir`/`subdir`)."""
    from omegaconf import open_dict

    with open_dict(sweep_config.hydra.job):
        sweep_config.hydra.job.num = index
    return str(Path(str(sweep_config.hydra.sweep.dir)).absolute() /
               str(sweep_config.hydra.sweep.subdir))


def results_needed(config: Any) -> bool:
    """Whether the sweeper learns from results (Optuna, ...): then jobs are awaited,
    whatever `wait` says. Grid sweepers only need the jobs queued."""
    target = str(config.hydra.sweeper.get("_target_", ""))
    return not target.endswith(("BasicSweeper", "PlannedSweeper"))


def note_submission(job: Any, record: SubmittedJob) -> None:
    record.job_id = str(job.job_id)
    record.submitted = now()
    record.stdout = str(job.paths.stdout)
    record.stderr = str(job.paths.stderr)
    print(f"submitted job {record.job_id}: {shown(record.overrides)}", flush=True)
