"""A run is not silently resumed by code other than the code that made its checkpoints.

Each attempt of a run records the digest of the code it ran (`record.json`,
`launcher.run_record`). Relaunching a run that has checkpoints, after the
recipe's code (or a local package it imports) changed, is refused unless
`resume=force` says to go on with the new code; `resume=false` starts the run
over and keeps the old one. Config changes are not code changes: they are the
run's fingerprint's business, and a changed config continues the run as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from launcher import layout
from launcher.errors import ConfigError
from launcher.snapshot.files import digest

RESUME_VALUES = (True, False, "force")
SHOWN_FILES = 3


def resume_setting(config: Any) -> bool | str:
    """`resume`: true (the default), false (start over) or force (also after a code
    change)."""
    value = config.get("resume", True)
    if value not in RESUME_VALUES or (isinstance(value, (int, float))
                                      and not isinstance(value, bool)):
        raise ConfigError(f"resume={value!r} is not a choice", key="resume",
                          hint="use resume=true (continue), resume=false (start over, "
                               "keeping the old run) or resume=force (continue even though "
                               "the code changed)")
    return value


def refuse_changed_code(planned: Sequence[Any], manifest: dict[str, str],
                        finished: Any) -> None:
    """Refuse to resume a run with checkpoints whose last attempt ran other code.
    `finished(job)` says whether a job is left alone anyway (completed, same config)."""
    now = digest(manifest)
    for job in planned:
        recorded = recorded_code(job.run_dir)
        if not recorded or recorded.get("digest") in (None, now):
            continue
        if not _has_checkpoints(job.run_dir) or finished(job):
            continue
        changed = changed_files(recorded.get("files") or {}, manifest)
        raise ConfigError(
            f"run {job.run_dir} has checkpoints made by other code ({changed}); it is not "
            "resumed with this code unless you say so", key="resume",
            hint="resume=force continues it with this code; resume=false starts it over, "
                 "keeping the old run beside it")


def recorded_code(run_dir: Any) -> dict | None:
    """The code its latest attempt ran, as its record says; None when it says nothing
    (a run from before records, or a record that cannot be read: `launch` then goes on,
    as it did before records existed)."""
    from launcher.bookkeeping import Damaged
    from launcher.run_record import read_record

    try:
        code = read_record(run_dir).get("code")
    except Damaged:
        return None
    return code if isinstance(code, dict) else None


def changed_files(before: dict[str, str], now: dict[str, str]) -> str:
    """`src/model.py changed, src/old.py removed`: the first few differences."""
    notes = [f"{_short(n)} changed" for n in sorted(set(before) & set(now))
             if before[n] != now[n]]
    notes += [f"{_short(n)} added" for n in sorted(set(now) - set(before))]
    notes += [f"{_short(n)} removed" for n in sorted(set(before) - set(now))]
    more = len(notes) - SHOWN_FILES
    text = ", ".join(notes[:SHOWN_FILES]) or "the code changed"
    return text + (f" and {more} more" if more > 0 else "")


def _short(name: str) -> str:
    return name.removeprefix("recipe/")


def _has_checkpoints(run_dir: Any) -> bool:
    folder = layout.checkpoints(run_dir)
    return folder.is_dir() and any(folder.iterdir())
