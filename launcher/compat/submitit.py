"""What the launcher uses of submitit and hydra-submitit-launcher beyond their public API.

- `sbatch_text`: the batch script submitit writes for an executor's parameters
  (`submitit.slurm.slurm._make_sbatch_string`), shown by `--dry-run`;
- `ended_without_waiting`: a local job whose process has ended has no result
  file still to come; submitit would wait `Job._results_timeout_s` for one;
- `job_arguments`: the arguments hydra-submitit-launcher's `__call__` takes in
  the job (`sweep_overrides, job_dir_key, job_num, job_id, singleton_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def sbatch_text(executor: Any, num_jobs: int) -> str:
    from submitit.slurm.slurm import _make_sbatch_string

    parameters = dict(executor.parameters)
    if num_jobs > 1:
        parameters["map_count"] = num_jobs
    return _make_sbatch_string(command=executor._submitit_command_str, folder=executor.folder,
                               **parameters)


def ended_without_waiting(job: Any) -> None:
    """Settle a finished local job at once: its process ended, so a result file that is
    not there will not come (a stopped job writes none). A job of several ranks asks
    each rank's sub-job for its result in turn (`Job._sub_jobs`), each waiting its own
    `_results_timeout_s` (15 s) otherwise."""
    for each in [job, *getattr(job, "_sub_jobs", [])]:
        each._results_timeout_s = 0


def job_arguments(overrides: Sequence[str], index: int, hydra_state: Any) -> tuple:
    """What hydra-submitit-launcher's `__call__` is given for the job at `index`."""
    return (list(overrides), "hydra.sweep.dir", index, f"job_id_for_{index}", hydra_state)


def job_of_arguments(arguments: tuple) -> tuple[list[str], int, Any]:
    """The overrides, index and Hydra state that `job_arguments` put in its tuple."""
    overrides, _, index, _, hydra_state = arguments
    return overrides, index, hydra_state
