"""One owner per run folder: a lock that dies with the process that holds it.

Two launches of the same run would otherwise train in the same folder at
once, interleaving metrics.csv rows and overwriting each other's status and
checkpoints. The owner holds an exclusive `flock` on `<run_dir>/.lock` while
it runs; the kernel drops it when the process ends, however it ends, so a
crashed run never leaves a stale lock behind. On NFS, Linux maps `flock` to
POSIX record locks, which the server arbitrates between machines. The file
also says who holds it (host, pid, job id, since when), for the error a
second launch prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.errors import LauncherError

WAIT_POLL_S = 2.0
BRIEF_TRIES = 5

_held: dict[str, int] = {}  # run folder -> descriptor of the lock this process holds


class RunBusy(LauncherError):
    """The run folder is owned by another live process."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir, self.holder = run_dir, holder
        super().__init__(f"run folder {run_dir} is in use by {describe(holder)}; "
                         "HINT: wait for it to end (launch --wait waits for it), or follow it "
                         f"with: launch status {run_dir}")


def describe(holder: dict[str, Any]) -> str:
    """`job 123_4 (pid 5678 on node1, since 2026-11-30T10:00:00)`, from what is known."""
    where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    since = f", since {holder['since']}" if holder.get("since") else ""
    job = holder.get("slurm_job_id")
    return f"job {job} ({where}{since})" if job else f"{where}{since}"


def holder_of(run_dir: Path) -> dict[str, Any] | None:
    """Who holds the run folder now, or None when nobody does."""
    path = Path(run_dir) / layout.LOCK_FILE
    if str(Path(run_dir)) in _held or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    finally:
        os.close(fd)
    return None


def acquire(run_dir: Path, wait: bool = False) -> bool:
    """Own `run_dir` (created if needed) until `release` or the end of this process;
    False when this process owned it already.

    Raises RunBusy when another process owns it, unless `wait`, which blocks
    until it is free."""
    key = str(Path(run_dir))
    if key in _held:
        return False
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(run_dir) / layout.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, Path(run_dir), wait)
    except BaseException:
        os.close(fd)
        raise
    _held[key] = fd
    _write_holder(fd)
    return True


def release(run_dir: Path) -> None:
    fd = _held.pop(str(Path(run_dir)), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the lock


@contextlib.contextmanager
def owning(run_dir: Path, wait: bool = False) -> Iterator[None]:
    acquire(run_dir, wait)
    try:
        yield
    finally:
        release(run_dir)


def _lock(fd: int, run_dir: Path, wait: bool) -> None:
    announced, tries = False, 0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _read_holder(fd)
            tries += 1
            if not wait and tries < BRIEF_TRIES:  # `holder_of` may be peeking just now
                time.sleep(0.1)
                continue
            if not wait:
                raise RunBusy(run_dir, holder) from None
            if not announced:
                print(f"waiting for {describe(holder)} to release {run_dir}", flush=True)
                announced = True
            time.sleep(WAIT_POLL_S)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (ValueError, OSError):  # written at this very moment, or damaged
        return {}
    return data if isinstance(data, dict) else {}


def identity() -> dict[str, Any]:
    """Who this process is, as `status.json` and the lock file record it: enough for
    `launch status` to tell a live run from a dead one."""
    from launcher.liveness import process_start_ticks
    from launcher.ranks import under_submitit

    job_id = None
    if under_submitit() and os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        import submitit

        job_id = submitit.JobEnvironment().job_id
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "pid_start": process_start_ticks(os.getpid()), "slurm_job_id": job_id}


def _write_holder(fd: int) -> None:
    holder = {**identity(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
    data = json.dumps(holder).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def wait_until_free(run_dirs: Iterable[Path], wait: bool) -> None:
    """Refuse (or with `wait`, wait out) runs whose folder another process owns now."""
    for run_dir in run_dirs:
        holder = holder_of(run_dir)
        if holder is not None and not wait:
            raise RunBusy(run_dir, holder)
        if holder is not None:
            print(f"waiting for {describe(holder)} to release {run_dir}", flush=True)
        while holder is not None:
            time.sleep(WAIT_POLL_S)
            holder = holder_of(run_dir)
