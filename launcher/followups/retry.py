"""`launch logs`, `launch cancel`, `launch retry`: acting on what was launched.

They read the sweep registry (`jobs.json`) and the run directories, so they
work from any shell, after the submitting process is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError
from launcher.executors.registry import find
from launcher.search.spec import SPEC_FILE


def retry(target: str, launch: Callable[..., Any]) -> int:
    """Resubmit the failed, cancelled, timed-out, stopped or dead runs of a sweep with
    `launch` (`launcher.launch.launch`, given by the CLI); each continues from its own
    checkpoints. Finished runs are left alone, and so are runs whose bookkeeping cannot
    be read (said, with the problem)."""
    from launcher.executors.registry import REGISTRY
    from launcher.followups.status import rows
    from launcher.states import RETRYABLE, Shown

    sweep, jobs = find(target)
    if "recipe" in sweep.defaulted:
        raise LauncherError(f"{Path(sweep.sweep_dir) / REGISTRY}: missing field 'recipe'; "
                            "cannot resubmit without it")
    if not sweep.recipe:
        raise LauncherError("this run was not submitted through an executor; run its launch "
                            "command again instead")
    if (Path(sweep.sweep_dir) / SPEC_FILE).is_file():
        raise LauncherError(f"this sweep is a search: launch it again ({_command_of(sweep)}) "
                            "and it continues; trials whose slot stopped are resumed from "
                            "their checkpoints")
    table = rows(sweep, jobs)
    for row in table:
        if row.state == Shown.DAMAGED:
            print(f"skipped job {row.job_id}, cannot read its bookkeeping: {row.note}")
    again = [j for j, r in zip(jobs, table, strict=True) if r.state in RETRYABLE]
    if not again:
        print("nothing to retry: no job failed, died, was cancelled or timed out")
        return 0
    for job in again:
        (new,) = launch(sweep.recipe, [*job.overrides, f"hydra/launcher={sweep.backend}"],
                        config_name=sweep.config_name, multirun=True,
                        code_from=Path(sweep.sweep_dir))  # the code it was launched with
        # The sweep's own table follows the run to its new job.
        job.job_id, job.stdout, job.stderr = new.job_id, new.stdout, new.stderr
        job.state, job.submitted, job.error = new.state, new.submitted, None
        sweep.save()
    print(f"resubmitted {len(again)} run(s); follow with: launch status {sweep.sweep_dir}")
    return 0


def _command_of(sweep: Any) -> str:
    """The launch command recorded in the sweep folder, as a shell would take it."""
    from launcher.launch_file import launch_facts_for_job

    handed = launch_facts_for_job(Path(sweep.sweep_dir))
    command = (handed[0] if handed else {}).get("command")
    return command if isinstance(command, str) else "the same launch command"
