"""One pickle for what every job of a sweep shares; a few hundred bytes for each job.

submitit pickles each job's function and arguments. For a Hydra launcher those
are the launcher itself (with the sweep's config and Hydra's context) and
Hydra's state, the same for every job and most of each pickle: about 10 ms
a job, ten seconds before a 1,000-job sweep is queued. So the shared part is
pickled once into the sweep's submitit folder, and each job's pickle holds
its path, the job's overrides and its index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.compat.submitit import job_arguments


class SharedCall:
    """The function each array task runs: loads the shared pickle, then calls the
    launcher as hydra-submitit-launcher would have, with this job's arguments."""

    def __init__(self, shared: Path) -> None:
        self.shared = str(shared)

    def __call__(self, overrides: list[str], index: int) -> Any:
        import cloudpickle

        with open(self.shared, "rb") as file:
            launcher, hydra_state = cloudpickle.load(file)
        return launcher(*job_arguments(overrides, index, hydra_state))

    def checkpoint(self, *args: Any) -> Any:
        """What submitit requeues on preemption: this same call (the launcher's own
        `checkpoint` does the same with itself)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args)


def shared_call(launcher: Any, hydra_state: Any, folder: Path, first_index: int) -> SharedCall:
    """Pickle the launcher and Hydra's state once for this batch of jobs (a sweeper may
    launch several batches, each with its own first index)."""
    import cloudpickle

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"shared.{first_index}.pkl"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        cloudpickle.dump((launcher, hydra_state), file)
    tmp.replace(path)
    return SharedCall(path)
