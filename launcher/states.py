"""The one vocabulary of run states, and how SLURM's words map onto it.

Three kinds of words meet here:

- what a run records in its `status.json` (`Recorded`): written by the job;
- what `launch status` shows (`Shown`), from the scheduler's state and the
  run's own record; a recorded state is shown as itself, spaces for
  underscores (`out_of_retries` is shown `out of retries`);
- SLURM's job states, as `squeue` and `sacct` print them (`shown_from_slurm`).

Nothing here imports anything: every layer may use these names.
"""

from __future__ import annotations


class Recorded:
    """`status.json`'s `state`, as the job writes it."""

    RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
    REQUEUED, OUT_OF_RETRIES, STOPPED = "requeued", "out_of_retries", "stopped"


class Shown:
    """The words of `launch status` and every follow-up command."""

    QUEUED, RUNNING, REQUEUED = "queued", "running", "requeued"
    COMPLETED, FAILED, TIMED_OUT, CANCELLED = "completed", "failed", "timed out", "cancelled"
    OUT_OF_RETRIES, STOPPED = "out of retries", "stopped"
    DIED = "died"  # its process is gone, and it never recorded how it ended
    MISSING = "missing"  # its run folder does not exist
    DAMAGED = "damaged"  # its bookkeeping cannot be read, so its state is unknown


# States that do not change by themselves: `--watch` stops, `launch cancel` leaves them.
FINISHED = (Shown.COMPLETED, Shown.FAILED, Shown.TIMED_OUT, Shown.CANCELLED,
            Shown.OUT_OF_RETRIES, Shown.STOPPED, Shown.DIED, Shown.MISSING, Shown.DAMAGED)
# What `launch retry` submits again: each continues from its own checkpoints.
RETRYABLE = (Shown.FAILED, Shown.CANCELLED, Shown.TIMED_OUT, Shown.OUT_OF_RETRIES,
             Shown.STOPPED, Shown.DIED)

# SLURM's words for a job that has ended (a submitted job's record keeps them).
SLURM_ENDED = ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL",
               "PREEMPTED", "BOOT_FAIL", "DEADLINE")
SLURM_WAITING = ("PENDING", "CONFIGURING")
SLURM_RUNNING = ("RUNNING", "COMPLETING", "SUSPENDED")
SLURM_REQUEUED = ("REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED")


def shown_record(recorded: str) -> str:
    return recorded.replace("_", " ")


def shown_from_slurm(slurm: str, recorded: str | None, restarts: int = 0) -> str:
    """Our word for a job SLURM calls `slurm`, given what its run recorded."""
    if slurm in SLURM_WAITING:
        return Shown.REQUEUED if recorded == Recorded.REQUEUED or restarts else Shown.QUEUED
    if slurm in SLURM_RUNNING:
        return Shown.RUNNING
    if slurm in SLURM_REQUEUED:
        return Shown.REQUEUED
    if slurm == "COMPLETED":
        if recorded in (Recorded.RUNNING, Recorded.REQUEUED):
            return Shown.DIED  # the job ended, the run never recorded how
        return Shown.COMPLETED if recorded in (None, Recorded.COMPLETED) \
            else shown_record(recorded)
    if slurm == "TIMEOUT":
        return Shown.TIMED_OUT
    if slurm.startswith("CANCELLED"):
        return Shown.CANCELLED
    return Shown.FAILED
