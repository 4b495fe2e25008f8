"""`launch show RUN`: what produced a run, from its record.json, without torch.

Months later a number in a paper must be traced back to the command, the
commit (and the uncommitted changes, git.diff), the library versions and the
machines that made it; `launcher.run_record` writes all that, attempt by
attempt, and this prints it in a form a person reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher import layout
from launcher.errors import LauncherError
from launcher.run_record import read_record

SHORT_HASH = 12


def run_folder(target: str) -> Path:
    """The run folder a user named; a one-line error naming the path and what to give
    when it is none (a sweep folder, a typo, a file)."""
    path = Path(target).expanduser()
    if (path / layout.CONFIG_FILE).is_file() or (path / layout.RECORD_FILE).is_file():
        return path
    if (path / layout.REGISTRY).is_file():
        raise LauncherError(f"{target} is a sweep folder; give one of its run folders "
                            f"(launch status {target} lists them)")
    what = "does not exist" if not path.exists() else \
        "is not a run folder (it has no config.yaml or record.json)"
    raise LauncherError(f"{target} {what}; give a run folder, <exp_root>/<run name>, "
                        "e.g. exp/default")


def show(target: str) -> int:
    """Print the record of the run folder `target`."""
    run_dir = run_folder(target)
    record = read_record(run_dir)
    if not record:
        raise LauncherError(f"{run_dir} has no {layout.RECORD_FILE}: the run has not started "
                            "yet, or was made before runs recorded what produced them")
    print("\n".join(lines(run_dir, record)))
    return 0


def lines(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """The record as `name: value` lines, one per attempt at the end."""
    out = [f"run:       {run_dir}",
           f"command:   {record.get('command', '?')}",
           f"launched:  {record.get('launched', '?')}  (from {record.get('cwd', '?')})",
           f"git:       {git_line(run_dir, record.get('git'))}",
           f"versions:  {versions_line(record)}"]
    code = record.get("code")
    if isinstance(code, dict):
        files = code.get("files")
        count = f", {len(files)} files" if isinstance(files, dict) else ""
        where = f", snapshot {code['snapshot']}" if code.get("snapshot") else ""
        out.append(f"code:      digest {code.get('digest', '?')}{count}{where}")
    launches = [x for x in _list(record.get("launches")) if isinstance(x, dict)]
    if len(launches) > 1:
        out.append(f"launches:  {len(launches)}; earlier:")
        out += [f"  {x.get('launched', '?')}  {x.get('command', '?')}"
                f"{'  at ' + str(x['commit'])[:SHORT_HASH] if x.get('commit') else ''}"
                for x in launches[:-1]]
    attempts = [a for a in _list(record.get("attempts")) if isinstance(a, dict)]
    out.append(f"attempts:  {len(attempts)}")
    out += [f"  {n}. {attempt_line(a)}" for n, a in enumerate(attempts, 1)]
    return out


def git_line(run_dir: Path, git: Any) -> str:
    if not isinstance(git, dict):
        return "not in a git work tree (or git was not found)"
    branch = f" on {git['branch']}" if git.get("branch") else " (detached HEAD)"
    text = f"{git.get('commit') or '(no commit yet)'}{branch}"
    if git.get("root"):
        text += f" in {git['root']}"
    if not git.get("dirty"):
        return text + ", clean"
    diff = git.get("diff_file")
    return text + (f", dirty: uncommitted changes in {run_dir / diff}" if diff else ", dirty")


def versions_line(record: dict[str, Any]) -> str:
    packages = record.get("packages") if isinstance(record.get("packages"), dict) else {}
    named = [f"launcher {record.get('launcher', '?')}", f"python {record.get('python', '?')}"]
    return ", ".join(named + [f"{name} {version}" for name, version in packages.items()
                              if version])


def attempt_line(attempt: dict[str, Any]) -> str:
    """`2026-01-31T12:00:00 on n1 (nodes n[1-2]), job 901 (array 900_1), restart 1, GPUs: ...`"""
    text = f"{attempt.get('started', '?')} on {attempt.get('host', '?')}"
    if attempt.get("nodes") and attempt.get("nodes") != attempt.get("host"):
        text += f" (nodes {attempt['nodes']})"
    if attempt.get("slurm_job_id"):
        text += f", job {attempt['slurm_job_id']}"
    if attempt.get("slurm_array"):
        text += f" (array {attempt['slurm_array']})"
    if attempt.get("slurm_job_id") or attempt.get("restart"):
        text += f", restart {attempt.get('restart', 0)}"
    gpus = _list(attempt.get("gpus"))
    return text + (f", GPUs: {_counted(gpus)}" if gpus else ", no GPU")


def _counted(names: list[Any]) -> str:
    """`2x NVIDIA H200`, not the same name twice."""
    seen: dict[str, int] = {}
    for name in names:
        seen[str(name)] = seen.get(str(name), 0) + 1
    return ", ".join(f"{n}x {name}" if n > 1 else name for name, n in seen.items())


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
