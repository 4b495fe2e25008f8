"""`status.json` in a run directory: how the run stands, readable without torch.

Written by rank 0 of a job as it starts and ends, read by `launch` (to leave
finished runs alone and to report how a job ended).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
REQUEUED, OUT_OF_RETRIES, STOPPED = "requeued", "out_of_retries", "stopped"


def read_status(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def write_status(run_dir: str | Path, state: str, **details: Any) -> None:
    """Record `state` atomically, keeping earlier details (e.g. the requeue count)."""
    path = Path(run_dir) / STATUS_FILE
    status = {**read_status(run_dir), **details, "state": state,
              "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    tmp.replace(path)


def is_complete(run_dir: str | Path, fingerprint: str) -> bool:
    """Finished, with the same config as now."""
    status = read_status(run_dir)
    return status.get("state") == COMPLETED and status.get("config") == fingerprint
