"""Reading the launcher's own bookkeeping files, whatever state they are in.

jobs.json, status.json, progress.json, metrics.csv, a run's config.yaml and
the sweep index are written by jobs that may be killed mid-write, on disks
that fill up, or edited by hand. The follow-up commands read them through
here: each reader returns what it could read together with, when something
is wrong, one line naming the file and the problem. A table can then still be
shown with the damaged entry marked, and a command that cannot do without the
file raises the problem as `Damaged`, a user error printed as one line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError


class Damaged(LauncherError):
    """A bookkeeping file that cannot be read, or not all of it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Readout:
    """What a file held (`data`) and what was wrong with it (`damage`), if anything.

    Both may be set: a CSV file cut short still gives the rows before the cut.
    An absent file is not damaged; its `data` is the reader's `absent` value.
    """

    data: Any
    damage: Damaged | None = None

    @property
    def problem(self) -> str:
        return str(self.damage) if self.damage else ""

    def get(self) -> Any:
        """The data, for a caller that cannot work around damage."""
        if self.damage:
            raise self.damage
        return self.data

    def noted(self, problems: list[str] | None) -> Any:
        """The data as far as it could be read, the problem added to `problems`;
        without a list to note it in, the problem is raised."""
        if self.damage:
            if problems is None:
                raise self.damage
            problems.append(self.problem)
        return self.data


def _read_bytes(path: Path) -> Readout:
    try:
        return Readout(path.read_bytes())
    except FileNotFoundError:
        return Readout(None)
    except IsADirectoryError:
        return Readout(None, Damaged(path, "is a folder, not a file"))
    except OSError as exc:
        return Readout(None, Damaged(path, f"cannot be read ({exc.strerror or exc})"))


def read_text(path: str | Path) -> Readout:
    """The file's text; None when it does not exist."""
    path = Path(path)
    raw = _read_bytes(path)
    if raw.data is None:
        return raw
    if not raw.data.strip():
        return Readout(None, Damaged(path, "empty file"))
    if b"\0" in raw.data:
        return Readout(None, Damaged(path, "binary data, not text"))
    try:
        return Readout(raw.data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Readout(None, Damaged(path, f"not UTF-8 text (byte {exc.start})"))


def read_json(path: str | Path, absent: Any = None, required: Sequence[str] = ()) -> Readout:
    """A JSON object with at least the `required` fields."""
    text = read_text(path)
    if text.data is None:
        return Readout(absent, text.damage)
    try:
        data = json.loads(text.data)
    except json.JSONDecodeError as exc:
        return Readout(absent, Damaged(path, _json_problem(text.data, exc)))
    if not isinstance(data, dict):
        return Readout(absent, Damaged(path, f"expected a JSON object, found {kind_of(data)}"))
    missing = [name for name in required if name not in data]
    if missing:
        return Readout(absent, Damaged(path, f"missing field '{missing[0]}'"))
    return Readout(data)


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    where = f"line {exc.lineno}, column {exc.colno}"
    if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
        return f"truncated JSON (cut at {where})"
    return f"invalid JSON at {where} ({exc.msg})"


def read_yaml(path: str | Path, absent: Any = None) -> Readout:
    """A YAML mapping."""
    import yaml

    text = read_text(path)
    if text.data is None:
        return Readout(absent, text.damage)
    try:
        data = yaml.safe_load(text.data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or type(exc).__name__
        return Readout(absent, Damaged(path, f"invalid YAML{where} ({reason})"))
    if not isinstance(data, dict):
        return Readout(absent, Damaged(path, f"expected a mapping, found {kind_of(data)}"))
    return Readout(data)


def read_csv(path: str | Path) -> Readout:
    """The rows of a CSV file with a header, as (line number, row) pairs.

    A last line without its line end was cut short (the writer always ends
    its lines): it is left out and reported; the rows before it are kept.
    """
    text = read_text(path)
    if text.data is None:
        return Readout([], text.damage)
    reader = csv.DictReader(io.StringIO(text.data, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        return Readout(rows, Damaged(path, f"invalid CSV at line {reader.line_num + 1} ({exc})"))
    if text.data.endswith(("\n", "\r")):
        return Readout(rows)
    if not rows:
        return Readout([], Damaged(path, "cut short in its header line"))
    return Readout(rows[:-1], Damaged(path, f"last line cut short (line {rows[-1][0]})"))


def read_lines(path: str | Path) -> Readout:
    """The non-blank lines of a text file; lines that are not text are left out
    and reported, so that one bad line does not hide the others."""
    path = Path(path)
    raw = _read_bytes(path)
    if raw.data is None:
        return Readout([], raw.damage)
    lines, bad = [], 0
    for chunk in raw.data.splitlines():
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
            continue
        if "\0" in line:
            bad += 1
        elif line.strip():
            lines.append(line)
    damage = Damaged(path, f"{bad} line(s) that are not text, left out") if bad else None
    return Readout(lines, damage)


def kind_of(value: Any) -> str:
    """How a JSON/YAML value is named in a problem ("a list", "a number")."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__
