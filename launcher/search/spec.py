"""What a search is, as `launch` planned it: `search.json` in the sweep folder.

The slots (the jobs that run trials) read it instead of the config, so every
slot of a launch, and every attempt of a requeued slot, searches the same
space for the same study. `launch status` and `launch report` read it too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from launcher.atomic import write_text

SPEC_FILE = "search.json"
JOURNAL = "journal.log"
TRIALS = "trials"
CLAIMS = "claims"
SLOTS_DIR = "slots"  # in the sweep folder: slots/<k>/, each slot's own run folder


@dataclass(frozen=True)
class SearchSpec:
    study: str  # the study's name in its storage
    dir: str  # the study's folder: journal.log, claims/, trials/<number>/
    n_trials: int  # trials the study should have in all, across every launch
    slots: int  # trials run at once
    metrics: list[str]
    directions: list[str]  # minimize | maximize, one per metric
    params: dict[str, str]  # key -> sweep spelling
    overrides: list[str]  # every trial's overrides besides its parameters
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    grace_s: float = 120.0  # a trial whose slot has not been heard of for this long is taken over
    recipe: str = ""
    config_name: str = "config"

    @property
    def journal(self) -> Path:
        return Path(self.dir) / JOURNAL

    def trial_dir(self, number: int) -> Path:
        return Path(self.dir) / TRIALS / f"{number:04d}"

    @property
    def claims(self) -> Path:
        return Path(self.dir) / CLAIMS

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    def write(self, sweep_dir: Path) -> Path:
        path = Path(sweep_dir) / SPEC_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def read(cls, sweep_dir: str | Path) -> SearchSpec | None:
        """The sweep's search; None when the sweep is not one."""
        path = Path(sweep_dir) / SPEC_FILE
        if not path.is_file():
            return None
        from launcher.bookkeeping import Damaged, read_json

        data = read_json(path, required=tuple(FIELDS)).get()
        for name, (wanted, check) in {**FIELDS, **OPTIONAL}.items():
            if name in data and not check(data[name]):
                raise Damaged(path, f"field '{name}' should be {wanted}, "
                                    f"not {type(data[name]).__name__}")
        if len(data["metrics"]) != len(data["directions"]) or not data["metrics"]:
            raise Damaged(path, "fields 'metrics' and 'directions' differ in length")
        return cls(**{k: v for k, v in data.items() if k in {**FIELDS, **OPTIONAL}})


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


FIELDS: dict[str, tuple[str, Any]] = {
    "study": ("a string", lambda v: isinstance(v, str)),
    "dir": ("a string", lambda v: isinstance(v, str) and bool(v)),
    "n_trials": ("a whole number", _count), "slots": ("a whole number", _count),
    "metrics": ("a list of strings", _texts), "directions": ("a list of strings", _texts),
    "params": ("an object", lambda v: isinstance(v, dict)),
    "overrides": ("a list of strings", _texts)}
OPTIONAL: dict[str, tuple[str, Any]] = {
    "sampler": ("an object with a name", lambda v: isinstance(v, dict) and "name" in v),
    "pruner": ("an object with a name", lambda v: isinstance(v, dict) and "name" in v),
    "grace_s": ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    "recipe": ("a string", lambda v: isinstance(v, str)),
    "config_name": ("a string", lambda v: isinstance(v, str))}
