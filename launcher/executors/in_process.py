"""The in-process executor: a single one-process local run, in the `launch` process.

It owns the run folder meanwhile (`launcher.job.runlock`), and Hydra runs the
job's task function right here, in the folder and with the identity the plan
gave the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from launcher.executors.hydra_app import identity_overrides, run_hydra, where_runs_go
from launcher.executors.registry import ALREADY_DONE, SubmittedJob
from launcher.identity import RunIdentity
from launcher.job import runlock


def run_here(conf_dir: Path, config_name: str, overrides: Sequence[str], sweep_dir: Path,
             run_dir: Path, identity: RunIdentity, finished: Callable[[], bool],
             wait: bool) -> SubmittedJob:
    """Run it unless `finished()` says it completed (perhaps by the launch this one
    waited for)."""
    with runlock.owning(run_dir, wait=wait):
        done = finished()
        if not done:
            run_hydra(conf_dir, config_name, [*overrides, *where_runs_go(sweep_dir, run_dir),
                                              *identity_overrides(identity)], multirun=False)
    return SubmittedJob(0, list(overrides), str(run_dir), state="COMPLETED",
                        note=ALREADY_DONE if done else "")
