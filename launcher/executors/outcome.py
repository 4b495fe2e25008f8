"""How a job ended, said the same way everywhere: by `--wait` as each job ends, by the
closing summary, by `SweepFailed` and by the follow-up commands.

A failed job is named with its exception line and the log that holds its
traceback (the run's run.log, else the scheduler's stderr). A run folder is
named only when it exists: a job cancelled while queued, or one that failed
before its run began, never made one, and saying "run directory: X" would send
the user to look for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from launcher import layout
from launcher.executors.registry import SubmittedJob, shown

WAITING = ("QUEUED", "PENDING")
MOST_NAMED = 3  # failed jobs named one by one in SweepFailed's line; the rest are counted


def has_folder(record: SubmittedJob) -> bool:
    """Whether the job's run folder exists: a job that never started has none."""
    return bool(record.run_dir) and Path(record.run_dir).is_dir()


def _existing(path: str | Path | None) -> str | None:
    return str(path) if path and Path(path).is_file() else None


def traceback_log(record: SubmittedJob) -> str | None:
    """The log that holds the job's traceback: its run.log when the run wrote one, else
    the scheduler's stderr when it exists; None when the job wrote no log at all."""
    if has_folder(record):
        found = _existing(Path(record.run_dir) / layout.LOG_FILE)
        if found:
            return found
    return _existing(record.stderr)


def where(record: SubmittedJob) -> str:
    """`run directory: X` when X exists; otherwise what is the case (the logs that
    exist are named by the caller, beside the error)."""
    if has_folder(record):
        return f"run directory: {record.run_dir}"
    if record.state in (*WAITING, "RUNNING"):
        return f"run directory (made when it starts): {record.run_dir}"
    if record.state == "COMPLETED":
        return "its run folder no longer exists (moved or deleted)"
    if record.state.startswith("CANCELLED"):
        return "not started: cancelled while queued"
    return "not started: the job ended before its run folder was made"


def cause(record: SubmittedJob) -> str:
    """Why a job did not complete, in one line: its exception line, or what the
    scheduler did to it."""
    state = record.state
    if state.startswith("CANCELLED"):
        return "cancelled" + ("" if has_folder(record) else " before it started")
    if state == "TIMEOUT":
        return "reached its time limit (resources.time_min)"
    if state == "OUT_OF_MEMORY":
        return "ran out of memory (resources.mem_gb)"
    if state == "NODE_FAIL":
        return "its node failed; launch retry continues it"
    return record.error or "ended without saying why"


def failure_line(record: SubmittedJob) -> str:
    """`job 17928 FAILED (+model.boom=1): ValueError: boom; log: /r/run.log`"""
    log = traceback_log(record)
    found = f"log: {log}" if log else "it wrote no log"
    return f"job {record.job_id} {record.state} ({shown(record.overrides)}): " \
           f"{cause(record)}; {found}"


def failure_summary(records: Sequence[SubmittedJob]) -> str:
    """SweepFailed's one line: how many failed, then each failed job's cause and log
    (the first few; `launch status` shows the rest)."""
    failed = [r for r in records if r.failed]
    head = f"{len(failed)} of {len(records)} job(s) failed"
    if not failed:
        return head
    named = "; ".join(failure_line(r) for r in failed[:MOST_NAMED])
    more = f"; and {len(failed) - MOST_NAMED} more (launch status shows them)" \
        if len(failed) > MOST_NAMED else ""
    return f"{head}: {named}{more}"


def describe(record: SubmittedJob) -> str:
    """A finished job, as `--wait` prints it when it ends."""
    line = f"job {record.job_id} {record.state}: {shown(record.overrides)}\n  {where(record)}"
    if record.state == "STOPPED":
        return line + f"\n  {record.error}"
    if record.failed:
        line += f"\n  error: {cause(record)}"
        log = traceback_log(record)
        label = "log" if record.state.startswith(("CANCELLED", "TIMEOUT")) else "traceback"
        line += f"\n  {label}: {log}" if log else "\n  it wrote no log"
        if log and log != record.stderr and _existing(record.stderr):
            line += f"\n  scheduler log: {record.stderr}"
    return line
