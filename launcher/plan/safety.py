"""What a user types must never reach a shell, and paths must fit the filesystem.

The batch script is the one place where text becomes shell code. Three
kinds of text reach it: `#SBATCH` directive values, the cluster profile's
`setup` lines, and the command that starts each job. Directive values are
plain names (checked in `launcher.resources`) or paths, which submitit
quotes; sbatch ends a directive at a newline whatever the quotes, so paths
may hold no control character. Setup lines ARE shell code, so
they may only come from a file (a cluster profile or the recipe's config),
never from a command-line override, and may not interpolate other keys
(which an override could set). Paths are checked for control characters (a
newline would split a directive line) and for the filesystem's length
limits before any folder is created.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError, clipped

SHELL_KEYS = ("cluster.setup",)
# Files a job writes below the sweep folder, beyond its own path: the
# scheduler logs of an array task (`.submitit/<array>_<task>/<...>_log.err`).
ROOM_BELOW_SWEEP = 120


def refuse_shell_overrides(overrides: Sequence[str]) -> None:
    """Setup lines run as shell code in the batch script: never from the command line."""
    from launcher.identity import override_key

    for override in overrides:
        key = override_key(override)
        if override.startswith("~"):
            continue
        for shell_key in SHELL_KEYS:
            if key == shell_key or key.startswith((shell_key + ".", shell_key + "[")):
                raise ConfigError(
                    f"'{shell_key}' runs shell code in the batch script and cannot be set on "
                    "the command line", key=shell_key,
                    file=f"command-line override '{clipped(override.lstrip('+'))}'",
                    hint="put the lines in a cluster profile, conf/cluster/<name>.yaml, "
                         "and choose it with cluster=<name>")


def check_setup_lines(cluster: Any) -> None:
    """Setup lines are literal text from a file: a list of strings, no `${...}`."""
    from omegaconf import OmegaConf

    if not OmegaConf.is_config(cluster) or "setup" not in cluster:
        return
    lines = OmegaConf.to_container(cluster, resolve=False).get("setup")
    if lines is None:
        return
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ConfigError(f"setup must be a list of shell lines, not {lines!r}",
                          key="cluster.setup", hint="e.g. setup: ['module load cuda/12.4']")
    for line in lines:
        if "${" in line:
            raise ConfigError(
                f"setup line {line!r} interpolates a config value into shell code",
                key="cluster.setup",
                hint="write the line literally; use $VARIABLE for the shell's own variables")
        if _control_character(line):
            raise ConfigError(f"setup line {line!r} contains a control character",
                              key="cluster.setup", hint="one shell line per list entry")


def check_path(path: Path, key: str, room: int = ROOM_BELOW_SWEEP) -> None:
    """Refuse a folder the launcher could not create, or that could not be named in a
    batch script: control characters, a name or path too long, a file in the way, or
    no permission to write."""
    text = str(path)
    if _control_character(text):
        raise ConfigError(f"the path {text!r} contains a control character (newline, tab, ...)",
                          key=key, hint="choose a folder name of printable characters")
    limits = _limits(path)
    for part in path.parts:
        if len(os.fsencode(part)) > limits["name"]:
            raise ConfigError(
                f"the folder name '{part[:40]}…' is {len(os.fsencode(part))} bytes; this "
                f"filesystem allows {limits['name']}", key=key, hint="choose a shorter name")
    if len(os.fsencode(text)) + room > limits["path"]:
        raise ConfigError(f"the path '{text[:60]}…' is too long for this filesystem (at most "
                          f"{limits['path'] - room} bytes leave room for the run's files)",
                          key=key, hint="choose a shorter exp_root")
    _check_writable(path, key)


def _check_writable(path: Path, key: str) -> None:
    existing = _nearest_existing(path)
    below = path.relative_to(existing).parts[:1]
    if below and (existing / below[0]).is_symlink():
        raise ConfigError(f"'{existing / below[0]}' is a broken symbolic link", key=key,
                          hint="remove it or point exp_root elsewhere")
    if not existing.is_dir():
        raise ConfigError(f"'{existing}' is a file, so '{path}' cannot be created", key=key,
                          hint="choose another exp_root")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"no permission to write in '{existing}'", key=key,
                          hint="choose an exp_root you can write to")


def _nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (a name too long to look
    up counts as not existing)."""
    while path != path.parent:
        try:
            if path.exists():
                return path
        except OSError:  # ENAMETOOLONG and the like: the limits check names it
            pass
        path = path.parent
    return path


def _limits(path: Path) -> dict[str, int]:
    existing = _nearest_existing(path)
    try:
        return {"name": os.pathconf(existing, "PC_NAME_MAX"),
                "path": os.pathconf(existing, "PC_PATH_MAX")}
    except (OSError, ValueError):  # not a directory, or no such limit: POSIX's
        return {"name": 255, "path": 4096}


def _control_character(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)
