"""What runs inside every job: build the System the config selects and run its stages.

This is the Hydra task function. It runs in the submitting process for a
local single run, and in the executor's process otherwise; everything it
needs comes from the composed config and Hydra's runtime information.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError
from launcher.preemption import FLAG, JobEnds, RequeuePolicy, restart_count
from launcher.ranks import process_rank
from launcher.rundir import config_fingerprint, recipe_dir_of, register_resolvers
from launcher.runstate import COMPLETED, FAILED, RUNNING, write_status

log = logging.getLogger("launcher")
RESOLVED_CONFIG = "config.yaml"

register_resolvers()


def run_job(cfg: Any) -> str:
    """Run the configured stages in this job's run directory; return that directory."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from launcher.components import component_class
    from launcher.preflight import job_config

    use_allocated_cpus()
    runtime = HydraConfig.get().runtime
    run_dir = Path(runtime.output_dir)
    recipe_dir = recipe_dir_of(runtime.config_sources)
    if process_rank() == 0:
        OmegaConf.save(job_config(cfg, recipe_dir, run_dir, translate=False),
                       run_dir / RESOLVED_CONFIG, resolve=True)
        log.info("run directory: %s", run_dir)
    job = job_config(cfg, recipe_dir, run_dir)
    FLAG.install(RequeuePolicy.from_config(job.get("requeue")))
    lead = process_rank() == 0
    if lead:
        write_status(run_dir, RUNNING, restarts=restart_count(), config=config_fingerprint(cfg),
                     started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        system = component_class(job, "system", recipe_dir)(config=job)
        system.run(job["stages"])
    except JobEnds:
        raise  # checkpointed; status already written
    except LauncherError as exc:
        log.error("run failed: %s (run directory %s)", exc, run_dir)
        _failed(lead, run_dir, exc)
        raise
    except Exception as exc:
        log.exception("run failed (run directory %s)", run_dir)
        _failed(lead, run_dir, exc)
        raise
    if lead:
        write_status(run_dir, COMPLETED)
    return str(run_dir)


def use_allocated_cpus() -> None:
    """One torch thread per CPU SLURM gave this task, unless OMP_NUM_THREADS says.

    torch starts one thread per core of the node, not of the allocation: on a
    node shared with other jobs, a 4-CPU task running 64 threads crawls."""
    import os

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit() and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(int(cpus))


def _failed(lead: bool, run_dir: Path, exc: BaseException) -> None:
    if lead:
        write_status(run_dir, FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
