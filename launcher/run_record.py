"""`record.json` in a run folder: what produced the run, attempt by attempt.

The launch's part (command line, git commit and diff, versions, code digest)
is taken once, in the `launch` process (`launch_facts`); each attempt of the
run (its first start, every requeue and relaunch) adds where and as which
SLURM job it ran (`record_attempt`). `launch show RUN` prints it and
`launch diff RUN_A RUN_B` compares two. Nothing here imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher import layout

PACKAGES = ("torch", "pytorch-lightning", "lightning", "hydra-core", "omegaconf", "submitit",
            "numpy")
GIT_TIMEOUT_S = 10
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
log = logging.getLogger("launcher")


def launch_facts(recipe_dir: Path, command: Sequence[str]) -> tuple[dict, str]:
    """The launch's facts for the records of its runs, and the git diff of uncommitted
    changes ("" when clean or not in a git work tree)."""
    git, diff = git_state(Path(recipe_dir))
    facts = {"command": shlex.join(command), "cwd": os.getcwd(),
             "launched": time.strftime(TIME_FORMAT), "launcher": _version("launcher"),
             "python": platform.python_version(),
             "packages": {name: _version(name) for name in PACKAGES}, "git": git}
    return facts, diff


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def git_state(folder: Path) -> tuple[dict | None, str]:
    """Commit, branch (None when detached) and whether the work tree is dirty, with the
    diff; (None, "") outside a git work tree, or where git is missing or does not answer
    in time: a launch never fails for want of its record."""
    heads = _git(folder, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")
    if heads is None:  # not a work tree, or one without commits yet
        root = _git(folder, "rev-parse", "--show-toplevel")
        if root is None:
            return None, ""
        heads = f"{root}\n\nHEAD"
    root, commit, branch = [*heads.split("\n"), "", ""][:3]
    diff = (_git(folder, "diff", "HEAD", "--no-color", "--no-ext-diff") or "") if commit else ""
    untracked = (_git(folder, "ls-files", "--others", "--exclude-standard", "--", ".")
                 or "").splitlines()
    if untracked:
        diff += "".join(["# untracked files under the recipe folder (not in this diff):\n",
                         *(f"#   {name}\n" for name in untracked if name)])
    facts = {"commit": commit or None, "branch": None if branch == "HEAD" else branch or None,
             "dirty": bool(diff), "root": root}
    return facts, diff


def _git(folder: Path, *args: str) -> str | None:
    """git's output, None when it fails (the failure is logged, not raised)."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, errors="replace", timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("no git facts for the run's record (git %s: %s)", args[0], exc)
        return None
    if done.returncode != 0:
        return None
    return done.stdout if args[0] in ("diff", "ls-files") else done.stdout.strip()


def read_record(run_dir: str | Path) -> dict[str, Any]:
    """The run's record ({} before its first attempt); a file that cannot be read
    raises `launcher.bookkeeping.Damaged`."""
    from launcher.bookkeeping import read_json

    return read_json(Path(run_dir) / layout.RECORD_FILE, absent={}).get()


def record_attempt(run_dir: Path, facts: dict, diff: str | None) -> None:
    """Record this attempt: the facts of the launch that runs it (the latest launch's,
    whatever extra keys they hold), and where it runs. Earlier attempts and launches
    are kept; a damaged record does not stop the run: it is set aside as
    record.json.damaged and a new one started. An OSError is the caller's to log."""
    from launcher.atomic import write_text
    from launcher.bookkeeping import Damaged

    path = Path(run_dir) / layout.RECORD_FILE
    try:
        earlier = read_record(run_dir)
    except Damaged as exc:
        log.warning("%s; kept as %s.damaged, starting a new record", exc, path.name)
        path.replace(path.with_name(path.name + ".damaged"))
        earlier = {}
    attempts = earlier.get("attempts")
    record = {**facts, "git": dict(facts.get("git") or {}) or None,
              "attempts": [*(attempts if isinstance(attempts, list) else []), attempt(facts)],
              "launches": _launches(earlier, facts)}
    diff_path = Path(run_dir) / layout.GIT_DIFF_FILE
    if diff and record["git"] is not None:
        write_text(diff_path, diff)
        record["git"]["diff_file"] = layout.GIT_DIFF_FILE
    else:  # the diff of an earlier launch would be taken for this one's
        diff_path.unlink(missing_ok=True)
    write_text(path, json.dumps(record, indent=2, default=str) + "\n")


def attempt(facts: dict) -> dict[str, Any]:
    """Where and as which scheduler job this attempt runs."""
    env = os.environ
    array = env.get("SLURM_ARRAY_JOB_ID")
    return {"started": time.strftime(TIME_FORMAT), "host": socket.gethostname(),
            "slurm_job_id": env.get("SLURM_JOB_ID"),
            "slurm_array": f"{array}_{env.get('SLURM_ARRAY_TASK_ID')}" if array else None,
            "restart": _count(env.get("SLURM_RESTART_COUNT")),
            "nodes": env.get("SLURM_JOB_NODELIST") or socket.gethostname(),
            "gpus": _gpu_names(), "command": facts.get("command")}


def _count(value: str | None) -> int:
    return int(value) if value and value.strip().isdigit() else 0


def _gpu_names() -> list[str]:
    """The GPUs this process sees, only if torch is imported already (never for this:
    the record must not slow or break a CPU job)."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a broken driver must not stop the run for its record
        log.info("no GPU names for the run's record: %s", exc)
        return []


def _launches(earlier: dict, facts: dict) -> list[dict]:
    """Each distinct launch that ran the run: command, time, commit."""
    launches = earlier.get("launches")
    launches = list(launches) if isinstance(launches, list) else []
    this = {"command": facts.get("command"), "launched": facts.get("launched"),
            "commit": (facts.get("git") or {}).get("commit")}
    return launches if launches and launches[-1] == this else [*launches, this]
