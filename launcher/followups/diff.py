"""`launch diff RUN_A RUN_B`: why two runs' results differ, without torch.

First the config keys that differ (config.yaml, flattened to dotted keys),
then what else the records say differs: the command, the commit and
uncommitted changes, library versions, the code digest and the files whose
hash differs. Keys that only name the run's own folder (`run_dir`, `exp_dir`,
`run_identity`) always differ between two runs and are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher import layout
from launcher.bookkeeping import read_yaml
from launcher.errors import clipped
from launcher.followups.show import run_folder
from launcher.identity import RUN_KEY
from launcher.run_record import read_record

OWN_FOLDER_KEYS = (RUN_KEY, "run_dir", "exp_dir")
ABSENT = "(absent)"
SHORT_HASH = 12


def diff(target_a: str, target_b: str) -> int:
    """Print what differs between two run folders; "no differences" when nothing does."""
    run_a, run_b = run_folder(target_a), run_folder(target_b)
    config = config_lines(run_a, run_b)
    record = record_lines(read_record(run_a), read_record(run_b))
    if not config and not record:
        print("no differences")
        return 0
    print(f"A: {run_a}\nB: {run_b}")
    if config:
        print(f"config ({layout.CONFIG_FILE}):")
        print("\n".join(f"  {line}" for line in config))
    if record:
        print(f"record ({layout.RECORD_FILE}):")
        print("\n".join(f"  {line}" for line in record))
    return 0


def config_lines(run_a: Path, run_b: Path) -> list[str]:
    """`key: A-value -> B-value` for each config key that differs."""
    configs = [read_yaml(run / layout.CONFIG_FILE).get() for run in (run_a, run_b)]
    if configs[0] is None or configs[1] is None:
        if configs[0] is configs[1]:
            return []
        missing = run_a if configs[0] is None else run_b
        return [f"{missing} has no {layout.CONFIG_FILE}; the configs are not compared"]
    flat_a, flat_b = (flatten({k: v for k, v in c.items() if k not in OWN_FOLDER_KEYS})
                      for c in configs)
    return changes(flat_a, flat_b)


def record_lines(record_a: dict[str, Any], record_b: dict[str, Any]) -> list[str]:
    """The record's fields that tell how a result was produced, where they differ."""
    if not record_a or not record_b:
        if not record_a and not record_b:
            return []
        return [f"only {'B' if not record_a else 'A'} has a {layout.RECORD_FILE}; "
                "the records are not compared"]
    return changes(*(facts_of(r) for r in (record_a, record_b))) + \
        code_files(record_a, record_b)


def facts_of(record: dict[str, Any]) -> dict[str, Any]:
    """The compared fields, by the names the lines show."""
    git = record.get("git") if isinstance(record.get("git"), dict) else {}
    code = record.get("code") if isinstance(record.get("code"), dict) else {}
    packages = record.get("packages") if isinstance(record.get("packages"), dict) else {}
    facts = {"command": record.get("command"), "git.commit": git.get("commit"),
             "git.dirty": git.get("dirty"), "launcher": record.get("launcher"),
             "python": record.get("python"), "code.digest": code.get("digest")}
    facts.update({f"packages.{name}": version for name, version in packages.items()})
    return {k: v for k, v in facts.items() if v is not None}


def code_files(record_a: dict[str, Any], record_b: dict[str, Any]) -> list[str]:
    """The code files whose hash differs, when both records list their files."""
    files = [(r.get("code") or {}).get("files") if isinstance(r.get("code"), dict) else None
             for r in (record_a, record_b)]
    if not all(isinstance(f, dict) for f in files):
        return []
    short = [{name: str(sha)[:SHORT_HASH] for name, sha in f.items()} for f in files]
    return [f"code file {line}" for line in changes(*short)]


def changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """`key: A -> B`, sorted by key; a key only one side has shows `(absent)`."""
    return [f"{key}: {shown(a, key)} -> {shown(b, key)}" for key in sorted({*a, *b})
            if key not in a or key not in b or a[key] != b[key]]


def shown(values: dict[str, Any], key: str) -> str:
    return clipped(value_text(values[key])) if key in values else ABSENT


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys down to the values; a list of plain values (`stages`) stays one
    value, a list of mappings (callbacks) is numbered (`callbacks.0._target_`)."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, inner in items:
        flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def value_text(value: Any) -> str:
    """A value as YAML writes it inline: null, true, [train, valid], {}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return repr(text) if isinstance(value, str) and (not text or text != text.strip()) \
        else text
