"""Is the process that wrote a run's `status.json` still alive?

A run killed by SIGKILL (or interrupted before it could write its end state)
leaves `status.json` saying `running` forever. The job records who it is
(host, pid, and the pid's start time, since pids get reused) so that
`launch status` can tell a live run from a dead one without a scheduler.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def process_start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat).

    Together with the pid it names one process: a pid reused by a later
    process has a different start time. None where /proc cannot tell.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or not fields[19].isdigit():
        return None
    return int(fields[19])


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 and on of /proc/<pid>/stat (the state first); None without one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no such process, or no /proc
        return None
    # The command name (field 2) is in parentheses and may itself hold ') '.
    return stat[stat.rfind(")") + 2:].split()


def is_alive(status: dict[str, Any]) -> bool | None:
    """True/False when this machine can tell whether the run's process lives.

    None when it cannot: the run was on another host, or the status lacks
    the fields (written by an older launcher).
    """
    host, pid = status.get("host"), status.get("pid")
    if not isinstance(host, str) or not _is_int(pid):
        return None
    if host != socket.gethostname():
        return None
    if pid <= 0:
        return False
    if not Path("/proc/self/stat").is_file():
        return pid_exists(pid)  # no /proc: a reused pid goes unnoticed
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, waiting only for its parent to collect its exit status
    started = process_start_ticks(pid)
    expected = status.get("pid_start")
    if started is None or not _is_int(expected):
        return started is not None
    return started == expected


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists here (signal 0 asks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OverflowError:
        return False  # no process can have this pid
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
