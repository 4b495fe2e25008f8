"""What runs inside every job: build the System the config selects and run its stages.

This is the Hydra task function. It runs in the submitting process for a
local single run, and in the executor's process otherwise; everything it
needs comes from the composed config and Hydra's runtime information.
Rank 0 owns the run folder for the whole attempt (`launcher.job.runlock`): it
takes the lock before writing anything, clears what a crashed attempt left
half-written, and records how the attempt ended in `status.json`, whatever
ends it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.errors import ConfigError, LauncherError
from launcher.identity import RUN_KEY, fingerprint
from launcher.job.config import config_dir_of, recipe_dir_of, with_self_name
from launcher.ranks import process_rank
from launcher.signals import FLAG, JobEnds, RequeuePolicy, StoppedAtOnce, restart_count
from launcher.status_file import (
    COMPLETED,
    FAILED,
    RUNNING,
    STOPPED,
    status_as_far_as_readable,
    write_status,
)

log = logging.getLogger("launcher")


@dataclass(frozen=True)
class RunResult:
    """What a recipe's job returns to Hydra: its run folder, and the best value of its
    tracked metric, which is what a sweeper that optimises (Optuna) reads."""

    run_dir: str
    value: float | None

    def __str__(self) -> str:
        return self.run_dir

    def __float__(self) -> float:
        if self.value is None:
            raise ValueError(f"run {self.run_dir} has no value of its tracked metric")
        return float(self.value)


class RunFailed(LauncherError):
    """The run failed for a reason that one line says fully (a full disk)."""

    exit_code = 1


def run_job(cfg: Any) -> RunResult:
    """Run the configured stages in this job's run directory; return that directory and
    the best value of the tracked metric."""
    from hydra.core.hydra_config import HydraConfig

    from launcher.job import runlock
    from launcher.job.espnet3_resolvers import register_espnet3_resolvers
    from launcher.job.search_worker import is_slot, run_slot
    from launcher.snapshot.use import activate as activate_snapshot

    use_allocated_cpus()
    runtime = HydraConfig.get().runtime
    activate_snapshot(config_dir_of(runtime.config_sources))  # the code it was launched with
    register_espnet3_resolvers(recipe_dir_of(runtime.config_sources))
    run_dir = Path(runtime.output_dir)
    lead = process_rank() == 0
    owned = lead and runlock.acquire(run_dir)
    try:
        cfg = with_self_name(cfg, HydraConfig.get().job.config_name)
        if is_slot(cfg):
            return run_slot(cfg, run_dir, recipe_dir_of(runtime.config_sources))
        return run_stages(cfg, run_dir, recipe_dir_of(runtime.config_sources), lead)
    finally:
        FLAG.forget()
        if owned:
            runlock.release(run_dir)


def run_stages(cfg: Any, run_dir: Path, recipe_dir: Path, lead: bool) -> RunResult:
    """Run the config's stages in `run_dir`, recording how the attempt ends in its
    status.json (a search slot calls this once per trial)."""
    from omegaconf import OmegaConf

    from launcher.atomic import remove_stale
    from launcher.components.selection import component_class
    from launcher.job.config import job_config
    from launcher.job.runlock import identity
    from launcher.metrics_file import best_value

    if lead:
        for tmp in remove_stale([run_dir]):
            log.info("removed %s, left half-written by an earlier attempt", tmp)
        OmegaConf.save(job_config(cfg, recipe_dir, run_dir, translate=False),
                       run_dir / layout.CONFIG_FILE, resolve=True)
        log.info("run directory: %s", run_dir)
    job = job_config(cfg, recipe_dir, run_dir)
    FLAG.install(RequeuePolicy.from_config(job.get("requeue")))
    if lead:
        write_status(run_dir, RUNNING, restarts=restart_count(), config=_fingerprint(cfg),
                     started=time.strftime("%Y-%m-%dT%H:%M:%S"), error=None, **identity())
        _record_attempt(run_dir, recipe_dir, cfg)
    try:
        system = component_class(job, "system", recipe_dir)(config=job)
        stages = system.check_stages(job["stages"])
        system.run(stages)
    except StoppedAtOnce:
        _ended(lead, run_dir, STOPPED, "stopped at once by a second Ctrl-C, without a "
               "checkpoint; the next launch continues from the last one")
        raise
    except JobEnds:
        raise  # checkpointed; status already written
    except ConfigError as exc:  # found only now (a constructor raised): say where it was set
        located = exc.located(_origin(exc.key))
        _ended(lead, run_dir, FAILED, str(located), cause=exc.__cause__)
        raise located from exc.__cause__
    except LauncherError as exc:
        _ended(lead, run_dir, FAILED, str(exc), cause=exc.__cause__)
        raise
    except Exception as exc:
        ended = _as_user_error(exc, run_dir)
        if ended is None:
            _ended(lead, run_dir, FAILED, f"{type(exc).__name__}: {exc}", cause=exc)
            raise
        # The log file cannot take a traceback now; the one line says all.
        logging.raiseExceptions = False
        _ended(lead, run_dir, FAILED, str(ended))
        raise ended from exc
    except BaseException as exc:  # KeyboardInterrupt, or a library's sys.exit
        _ended(lead, run_dir, STOPPED, f"interrupted ({type(exc).__name__}) without a "
               "checkpoint; the next launch continues from the last one")
        if isinstance(exc, SystemExit):  # a library's exit; its status may well be 0
            raise StoppedAtOnce(143) from exc
        raise
    if lead:
        done = status_as_far_as_readable(run_dir).get("stages_done") or []
        write_status(run_dir, COMPLETED, stages_done=sorted({*done, *stages}))
    return RunResult(str(run_dir), best_value(run_dir))


def _record_attempt(run_dir: Path, recipe_dir: Path, cfg: Any) -> None:
    """Add this attempt to the run's record.json, with the facts of the launch that
    submitted it (computed here for a job started some other way)."""
    from hydra.core.hydra_config import HydraConfig

    from launcher.launch_file import launch_facts_for_job
    from launcher.run_record import launch_facts, record_attempt

    hydra = HydraConfig.get()
    handed = launch_facts_for_job(Path(str(hydra.sweep.dir)) if hydra.sweep.dir else None)
    facts, diff = handed or launch_facts(recipe_dir, ["launch", str(recipe_dir),
                                                      *hydra.overrides.task])
    try:
        record_attempt(run_dir, facts, diff)
    except OSError as exc:
        log.error("could not write the run's record in %s: %s", run_dir, exc)


def _fingerprint(cfg: Any) -> str:
    """The run's fingerprint, as its plan computed it (a plain Hydra app has none: then
    it is computed here, the same way)."""
    planned = cfg.get(RUN_KEY) or {}
    return planned.get("fingerprint") or fingerprint(cfg)


def _origin(key: str | None) -> str:
    from hydra.core.hydra_config import HydraConfig

    from launcher.identity import origin

    hydra = HydraConfig.get()
    config_file = config_dir_of(hydra.runtime.config_sources) / \
        f"{hydra.job.config_name}.yaml"
    return origin(key, list(hydra.overrides.task), config_file)


def _as_user_error(exc: Exception, run_dir: Path) -> LauncherError | None:
    """A failure that one line explains fully: the disk filled up."""
    from launcher.atomic import NO_SPACE, NoSpace

    if isinstance(exc, NoSpace):
        return RunFailed(f"failed: {exc}")
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return RunFailed(f"failed: {NoSpace(Path(exc.filename or run_dir))}")
    return None


def _ended(lead: bool, run_dir: Path, state: str, message: str,
           cause: BaseException | None = None) -> None:
    """Log how the attempt ended (with the traceback of a failure in user code) and
    record it; a status that cannot be written (full disk) is said in the log."""
    if cause is not None:
        log.error("run failed: %s (run directory %s)", message, run_dir, exc_info=cause)
    else:
        log.error("run %s: %s (run directory %s)", state, message, run_dir)
    if not lead:
        return
    try:
        write_status(run_dir, state, error=message[:500])
    except OSError as exc:
        log.error("could not record the run as %s in %s: %s", state, run_dir, exc)


def use_allocated_cpus() -> None:
    """One torch thread per CPU SLURM gave this task, unless OMP_NUM_THREADS says.

    torch starts one thread per core of the node, not of the allocation: on a
    node shared with other jobs, a 4-CPU task running 64 threads crawls."""
    import os

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit() and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(int(cpus))
