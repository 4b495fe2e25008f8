"""`status.json` in a run directory: how the run stands, readable without torch.

Written by rank 0 of a job as it starts and ends, read by `launch` (to leave
finished runs alone and to report how a job ended).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.states import Recorded

STATUS_FILE = layout.STATUS_FILE
RUNNING, COMPLETED, FAILED = Recorded.RUNNING, Recorded.COMPLETED, Recorded.FAILED
REQUEUED, OUT_OF_RETRIES, STOPPED = Recorded.REQUEUED, Recorded.OUT_OF_RETRIES, Recorded.STOPPED


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's status ({} before its first); a file that cannot be read raises
    `launcher.bookkeeping.Damaged`, a user error naming the file and the problem."""
    from launcher.bookkeeping import read_json

    return read_json(Path(run_dir) / STATUS_FILE, absent={}).get()


def status_as_far_as_readable(run_dir: str | Path) -> dict[str, Any]:
    """The run's status, or {} where status.json is damaged: for the run's owner,
    which rewrites it, and for deciding whether a run is finished (a damaged
    status does not say so)."""
    from launcher.bookkeeping import read_json

    return read_json(Path(run_dir) / STATUS_FILE, absent={}).data or {}


def write_status(run_dir: str | Path, state: str, **details: Any) -> None:
    """Record `state` atomically, keeping earlier details (e.g. the requeue count)."""
    from launcher.atomic import write_text

    status = {**status_as_far_as_readable(run_dir), **details, "state": state,
              "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_text(Path(run_dir) / STATUS_FILE, json.dumps(status, indent=2) + "\n", small=True)


def is_complete(run_dir: str | Path, fingerprint: str, stages: Iterable[str] = ()) -> bool:
    """Finished, with the same config as now, and `stages` among the stages it finished
    (asking for a stage it has not run, say `evaluate`, runs it)."""
    status = status_as_far_as_readable(run_dir)
    done = status.get("stages_done")
    return (status.get("state") == COMPLETED and status.get("config") == fingerprint
            and (not isinstance(done, list) or set(stages) <= set(done)))
