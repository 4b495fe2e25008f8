"""Ctrl-C or SIGTERM to `launch` while its local jobs run: they stop, none is orphaned.

Local jobs are subprocesses of `launch` (a submitit controller per job, one
task per rank under it). The controllers are started ignoring SIGINT, so a
Ctrl-C in the terminal reaches the tasks (which checkpoint at their next
step) and `launch`, but not the controllers, whose own reaction would be to
kill the tasks a second later. `launch` then passes the request on:

- the first signal: SIGTERM to every running controller, which forwards it
  to its tasks: each checkpoints at its next step and stops; jobs not yet
  started are not started;
- a second signal: SIGINT to every task, which then stops at once.

`launch` waits for the jobs to end and exits 130 (Ctrl-C) or 143 (SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Signal handlers for `launch` while it supervises local jobs (a context manager)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._acted = 0
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        for signum in SIGNALS:
            self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)

    @property
    def stopping(self) -> bool:
        return bool(self.received)

    @property
    def exit_code(self) -> int:
        return 130 if self.received and self.received[0] == signal.SIGINT else 143

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Start a controller that ignores SIGINT (an ignored signal stays ignored
        across exec; a handler does not)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, self._handle)

    def act(self, jobs: Iterable[Any]) -> None:
        """Pass on the signals received since the last call to the jobs still running
        (the jobs are looked at only then: this is called at every poll)."""
        if self._acted == len(self.received):
            return
        running = [int(j.job_id) for j in jobs if not j.done()]
        while self._acted < len(self.received):
            self._acted += 1
            if self._acted == 1:
                print("launch: stopping: each running job saves a checkpoint at its next "
                      "step (press Ctrl-C again to stop at once)", flush=True)
                _send(running, signal.SIGTERM)
            else:
                print("launch: stopping at once, without checkpoints", flush=True)
                _send([task for pid in running for task in children(pid)], signal.SIGINT)


def _send(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signum)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc; none where there is no /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended while we looked
            continue
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return found
