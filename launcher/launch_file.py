"""What a launch hands its jobs for their records: the facts of the launch.

The command line, the git state and diff, the versions and the code digest
are taken once, in the `launch` process, when the jobs are submitted; each job
copies them into its run's `record.json` (`launcher.run_record`), also when
it is requeued days later. Jobs of an executor read them from
`<sweep>/launch.json` (and `<sweep>/git.diff`); the in-process run of a single
local job is handed them in memory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

LAUNCH_FILE = "launch.json"
DIFF_FILE = "git.diff"
_HANDED: dict[str, Any] = {}
log = logging.getLogger("launcher")


def write_launch_file(sweep_dir: Path, facts: dict, diff: str) -> None:
    from launcher.atomic import write_text

    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    write_text(Path(sweep_dir) / LAUNCH_FILE, json.dumps(facts, indent=2) + "\n")
    if diff:
        write_text(Path(sweep_dir) / DIFF_FILE, diff)


def hand_over(facts: dict, diff: str) -> None:
    """For the run this process runs itself."""
    _HANDED.update(facts=facts, diff=diff)


def launch_facts_for_job(sweep_dir: Path | None) -> tuple[dict, str] | None:
    """The facts of the launch that submitted this job; None when none were left (a job
    started some other way)."""
    from launcher.bookkeeping import read_json

    if sweep_dir is not None and (Path(sweep_dir) / LAUNCH_FILE).is_file():
        readout = read_json(Path(sweep_dir) / LAUNCH_FILE)
        if readout.data is None:  # damaged: the job computes its own facts instead
            log.warning("%s; the run's record is made from what the job sees",
                        readout.damage)
            return None
        diff_file = Path(sweep_dir) / DIFF_FILE
        return readout.data, diff_file.read_text() if diff_file.is_file() else ""
    if _HANDED:
        return _HANDED["facts"], _HANDED["diff"]
    return None
