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
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.bookkeeping import Damaged, Readout, kind_of, read_json, read_lines

REGISTRY = layout.REGISTRY
ALREADY_DONE = "already complete: not submitted again"
INDEX = layout.SWEEP_INDEX


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
    # Set when this job's entry in jobs.json cannot be read: the file and the problem.
    # Such a job is shown but never acted on, and its entry is saved back as it was.
    problem: str = field(default="", compare=False)
    raw: Any = field(default=None, repr=False, compare=False)

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

    # Fields jobs.json lacked and that were given defaults (not saved).
    defaulted: list[str] = field(default_factory=list)

    def save(self) -> None:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "defaulted"}
        data["jobs"] = [job.raw if job.problem else _record(job) for job in self.jobs]
        path = Path(self.sweep_dir) / REGISTRY
        tmp = path.with_name(f".{REGISTRY}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, sweep_dir: str | Path) -> Sweep:
        """The sweep; `Damaged` (a user error naming the file) when jobs.json is
        unreadable or lacks what every command needs."""
        return cls.read(sweep_dir).get()

    @classmethod
    def read(cls, sweep_dir: str | Path) -> Readout:
        """The sweep with what could be read of each job, or the problem with jobs.json.

        Fields a command can do without get defaults; a job entry without its run
        folder or overrides becomes a job marked with its problem."""
        path = Path(sweep_dir) / REGISTRY
        readout = read_json(path, required=("backend", "jobs"))
        if readout.damage:
            return readout
        data = readout.data
        wrong = _wrong_field(data, SWEEP_FIELDS)
        if wrong:
            return Readout(None, Damaged(path, wrong))
        defaults = {"sweep_dir": str(Path(sweep_dir)), "recipe": "", "config_name": "config",
                    "overrides": []}
        known = {f.name for f in fields(cls)} - {"jobs", "defaulted"}
        kept = {k: v for k, v in data.items() if k in known}
        job_fields = {f.name for f in fields(SubmittedJob)} - {"problem", "raw"}
        jobs = [_job(entry, i, path, job_fields) for i, entry in enumerate(data["jobs"])]
        return Readout(cls(**{**defaults, **kept}, jobs=jobs,
                           defaulted=[k for k in defaults if k not in data]))


def _record(job: SubmittedJob) -> dict[str, Any]:
    """A job's entry in jobs.json (field by field: `asdict` copies deeply, and a sweep of
    ten thousand jobs is saved whole)."""
    return {f.name: getattr(job, f.name) for f in fields(job) if f.name not in ("problem", "raw")}


def _job(entry: Any, position: int, path: Path, known: set[str]) -> SubmittedJob:
    """One entry of jobs.json (`known`: the fields of a job); missing fields get
    defaults where one is sensible."""
    where = f"jobs[{position}]"
    if not isinstance(entry, dict):
        return _damaged_job(entry, position, f"{where} is {kind_of(entry)}, not an object", path)
    entry = dict(entry)
    if isinstance(entry.get("job_id"), int) and not isinstance(entry["job_id"], bool):
        entry["job_id"] = str(entry["job_id"])
    missing = [name for name in ("run_dir", "overrides") if name not in entry]
    wrong = f"missing field '{missing[0]}'" if missing else _wrong_field(entry, JOB_FIELDS)
    if not wrong and not entry["run_dir"].strip():
        wrong = "field 'run_dir' is empty"
    if wrong:
        return _damaged_job(entry, position, f"{where}: {wrong}", path)
    return SubmittedJob(**{"index": position, **{k: v for k, v in entry.items() if k in known}})


def _damaged_job(entry: Any, position: int, problem: str, path: Path) -> SubmittedJob:
    job_id = entry.get("job_id") if isinstance(entry, dict) else None
    return SubmittedJob(position, [], "", job_id=job_id if isinstance(job_id, str) else "",
                        problem=str(Damaged(path, problem)), raw=entry)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


Check = tuple[Callable[[Any], bool], str]
TEXT: Check = (_is_text, "a string")
SWEEP_FIELDS: dict[str, Check] = {
    "sweep_dir": TEXT, "backend": TEXT, "recipe": TEXT, "config_name": TEXT,
    "overrides": (_is_texts, "a list of strings"), "cluster": (_is_text_or_none, "a string"),
    "created": TEXT, "jobs": (_is_list, "a list")}
JOB_FIELDS: dict[str, Check] = {
    "index": (_is_int, "a whole number"), "overrides": (_is_texts, "a list of strings"),
    "run_dir": TEXT, "job_id": TEXT, "stdout": TEXT, "stderr": TEXT, "state": TEXT,
    "error": (_is_text_or_none, "a string"), "note": TEXT, "submitted": TEXT,
    "value": (_is_number_or_none, "a number")}


def _wrong_field(data: dict[str, Any], checks: dict[str, Check]) -> str | None:
    """The first field whose value has the wrong type, as a problem."""
    for name, (check, wanted) in checks.items():
        if name in data and not check(data[name]):
            return f"field '{name}' should be {wanted}, not {kind_of(data[name])}"
    return None


def shown(overrides: Sequence[str]) -> str:
    """The overrides that make this run what it is, as the user typed them."""
    from launcher.identity import defines_run

    kept = [o.removeprefix("++") for o in overrides if defines_run(o)]
    slot = [o.removeprefix("++") for o in overrides if o.startswith("++search.slot=")]
    return " ".join([*(f"search slot {o.split('=', 1)[1]}" for o in slot), *kept]) \
        or "(defaults)"


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
    with open(folder / INDEX, "ab+") as index:
        index.seek(0, os.SEEK_END)
        start = b""
        if index.tell():  # an index cut short must not swallow this line into its last
            index.seek(-1, os.SEEK_END)
            start = b"" if index.read(1) == b"\n" else b"\n"
        index.write(start + f"{Path(sweep_dir).resolve()}\n".encode())


def known_sweeps() -> list[Path]:
    """Indexed sweep folders that still exist, newest last.

    Lines that are not text are left out with a note on stderr; folders that
    no longer exist (deleted sweeps) are left out quietly."""
    index = read_lines(state_dir() / INDEX)
    if index.damage:
        print(f"launch: note: {index.damage}", file=sys.stderr)
    seen: dict[str, None] = {}
    for line in index.data:
        seen.pop(line, None)
        seen[line] = None
    return [Path(p) for p in seen if os.path.isabs(p) and (Path(p) / REGISTRY).exists()]


def _may_be_a_run_folder(path: Path) -> bool:
    """A path that does not exist but could name a run folder: its parent exists."""
    return not path.exists() and path.parent.is_dir() and path.name not in ("", ".", "..")


def _may_name(sweep_dir: Path, name: str) -> bool:
    """Whether the sweep's jobs.json may hold a run folder called `name`: reading the
    text is quick, parsing hundreds of sweeps' jobs is not. A name JSON writes escaped
    is looked for the slow way; a file that is not whole, readable text is read the
    careful way, which names its problem."""
    if not name.isascii() or '"' in name or "\\" in name:
        return True
    try:
        text = (sweep_dir / REGISTRY).read_text(errors="replace")
    except OSError:
        return True
    whole = text.rstrip().endswith("}") and "\0" not in text and "\ufffd" not in text
    return name in text or not whole


def find(target: str | None) -> tuple[Sweep, list[SubmittedJob]]:
    """The sweep and the jobs a user means: a sweep folder, a sweep id, a run
    folder, or (with no target) the latest sweep.

    A sweep asked for whose jobs.json cannot be read is an error naming the file;
    other sweeps searched for a run folder are skipped when unreadable."""
    from launcher.errors import LauncherError

    sweeps = known_sweeps()
    if not target and not sweeps:
        raise LauncherError("no sweep has been launched yet from this account; give a "
                            "sweep or run directory")
    path = Path(target or sweeps[-1]).expanduser()
    named = [path] if (path / REGISTRY).is_file() else [d for d in sweeps if d.name == target]
    if named:
        sweep = Sweep.load(named[-1])
        return sweep, sweep.jobs
    unreadable: list[str] = []
    if path.is_dir() or _may_be_a_run_folder(path):  # never made: a job that did not start
        wanted = path.resolve()
        for sweep_dir in reversed(sweeps):
            if not _may_name(sweep_dir, wanted.name):
                continue
            readout = Sweep.read(sweep_dir)
            if readout.damage:
                unreadable.append(readout.problem)
                continue
            mine = [j for j in readout.data.jobs if not j.problem
                    and Path(j.run_dir).name == wanted.name and Path(j.run_dir).resolve() == wanted]
            if mine:
                return readout.data, mine[-1:]
    if (path / layout.STATUS_FILE).is_file():  # a run started in-process, never submitted
        job = SubmittedJob(0, [], str(path.resolve()), job_id="local")
        return Sweep(str(path.parent), "local", "", "", []), [job]
    skipped = f" ({len(unreadable)} sweep(s) could not be searched; {unreadable[0]})" \
        if unreadable else ""
    raise LauncherError(f"'{target}' is neither a sweep folder (with {REGISTRY}), a sweep id "
                        f"nor the run folder of a known job; try: launch status{skipped}")
