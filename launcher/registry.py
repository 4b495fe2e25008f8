"""What was submitted, recorded so it can be followed later from any shell.

Each launch through an executor gets a sweep folder `<exp_root>/sweeps/<id>`
with `jobs.json`: the recipe, the overrides, the executor, and for every job
its scheduler id, run directory and log paths. A small index under the user's
state folder lists sweep folders in launch order, so `launch status` with no
argument finds the latest one. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

REGISTRY = "jobs.json"
ALREADY_DONE = "already complete: not submitted again"


@dataclass
class SubmittedJob:
    """One job of a launch, as `launch` reports it and `jobs.json` records it."""

    index: int
    overrides: list[str]
    run_dir: str
    job_id: str = ""
    stdout: str = ""
    stderr: str = ""
    state: str = "QUEUED"
    error: str | None = None
    note: str = ""
    submitted: str = ""
    value: float | None = None  # best value of the tracked metric, once finished

    @property
    def failed(self) -> bool:
        return self.state not in ("COMPLETED", "QUEUED", "RUNNING", "PENDING")

    def __float__(self) -> float:
        """What a Hydra sweeper that optimises (Optuna) reads from each run."""
        if self.value is None:
            raise ValueError(f"run {self.run_dir} has no value of its tracked metric")
        return float(self.value)


@dataclass
class Sweep:
    """The contents of `jobs.json`."""

    sweep_dir: str
    backend: str
    recipe: str
    config_name: str
    overrides: list[str]
    cluster: str | None = None
    created: str = ""
    jobs: list[SubmittedJob] = field(default_factory=list)

    def save(self) -> None:
        data = asdict(self)
        path = Path(self.sweep_dir) / REGISTRY
        tmp = path.with_name(f".{REGISTRY}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, sweep_dir: str | Path) -> Sweep:
        data = json.loads((Path(sweep_dir) / REGISTRY).read_text())
        known = {f.name for f in fields(SubmittedJob)}
        data["jobs"] = [SubmittedJob(**{k: v for k, v in job.items() if k in known})
                        for job in data.get("jobs", [])]
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


def shown(overrides: Sequence[str]) -> str:
    """The overrides that make this run what it is, as the user typed them."""
    from launcher.rundir import defines_run

    kept = [o.removeprefix("++") for o in overrides if defines_run(o)]
    return " ".join(kept) or "(defaults)"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def state_dir() -> Path:
    base = os.environ.get("LAUNCHER_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "launcher")
    return Path(base)


def remember(sweep_dir: str | Path) -> None:
    """Add a sweep folder to the index (launch order)."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "sweeps.txt", "a") as index:
        index.write(f"{Path(sweep_dir).resolve()}\n")


def known_sweeps() -> list[Path]:
    """Indexed sweep folders that still exist, newest last."""
    index = state_dir() / "sweeps.txt"
    if not index.exists():
        return []
    seen: dict[str, None] = {}
    for line in index.read_text().splitlines():
        if line.strip():
            seen.pop(line, None)
            seen[line] = None
    return [Path(p) for p in seen if (Path(p) / REGISTRY).exists()]


def find(target: str | None) -> tuple[Sweep, list[SubmittedJob]]:
    """The sweep and the jobs a user means: a sweep folder, a sweep id, a run
    folder, or (with no target) the latest sweep."""
    from launcher.errors import LauncherError

    if not target:
        sweeps = known_sweeps()
        if not sweeps:
            raise LauncherError("no sweep has been launched yet from this account; give a "
                                "sweep or run directory")
        sweep = Sweep.load(sweeps[-1])
        return sweep, sweep.jobs
    path = Path(target).expanduser()
    if (path / REGISTRY).is_file():
        sweep = Sweep.load(path)
        return sweep, sweep.jobs
    for sweep_dir in reversed(known_sweeps()):
        if sweep_dir.name == target:
            sweep = Sweep.load(sweep_dir)
            return sweep, sweep.jobs
        if path.is_dir():
            sweep = Sweep.load(sweep_dir)
            mine = [j for j in sweep.jobs if Path(j.run_dir).resolve() == path.resolve()]
            if mine:
                return sweep, mine[-1:]
    if (path / "status.json").is_file():  # a run started in-process, never submitted
        job = SubmittedJob(0, [], str(path.resolve()), job_id="local")
        return Sweep(str(path.parent), "local", "", "", []), [job]
    raise LauncherError(f"'{target}' is neither a sweep folder (with {REGISTRY}), a sweep id "
                        "nor the run folder of a known job; try: launch status")
