"""`plan.json` in a sweep folder: each planned job's run folder and identity.

`launch` plans every job (`launcher.plan`), writes the plan here and names
the file to the executor (`hydra.launcher.plan_file`), which gives each job
its run folder (`hydra.sweep.subdir`) and identity (`run_identity`) and
leaves out the runs that finished before. Jobs are found by their overrides,
exactly as Hydra's sweeper hands them to the executor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from launcher.atomic import write_text

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class PlannedRun:
    overrides: list[str]
    run_dir: str
    name: str
    fingerprint: str
    finished: bool = False  # completed before with the same config: not submitted again


def plan_key(overrides: Sequence[str]) -> str:
    return "\n".join(overrides)


def write_plan(sweep_dir: Path, runs: Iterable[PlannedRun],
               limits: dict[str, Any] | None = None) -> Path:
    """`limits`: the cluster's, as `launch` read them (`ClusterLimits`), so that the
    executor splits the sweep into the arrays the dry run showed without asking again."""
    path = Path(sweep_dir) / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"runs": [asdict(r) for r in runs]}
    if limits is not None:
        data["cluster_limits"] = limits
    write_text(path, json.dumps(data, indent=1) + "\n")
    return path


def planned_limits(path: str | Path | None) -> dict[str, Any] | None:
    """The cluster limits `launch` read, if it wrote any into the plan."""
    if not path:
        return None
    return json.loads(Path(path).read_text()).get("cluster_limits")


def read_plan(path: str | Path | None) -> dict[str, PlannedRun]:
    """The planned runs by `plan_key`; none without a plan (a plain Hydra app)."""
    if not path:
        return {}
    runs = [PlannedRun(**r) for r in json.loads(Path(path).read_text())["runs"]]
    return {plan_key(r.overrides): r for r in runs}
