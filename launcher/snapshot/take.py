"""Copy a launch's code into its sweep folder, once, for all of its jobs.

The copy is written under a temporary name and renamed when complete, so a
job never starts from half a snapshot, and a launch that fails while copying
leaves none behind."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from launcher.snapshot.files import RECIPE, Code, digest, file_hash

SNAPSHOT_DIR = "code"  # in the sweep folder
SNAPSHOT_FILE = "snapshot.json"  # in the snapshot


@dataclass(frozen=True)
class Snapshot:
    root: Path  # <sweep>/code
    conf_name: str

    @property
    def conf_dir(self) -> Path:
        """The config folder Hydra composes the jobs' configs from."""
        return self.root / RECIPE / self.conf_name


def take(code: Code, sweep_dir: Path) -> tuple[Snapshot, dict[str, str]]:
    """Copy `code` to `<sweep_dir>/code`; return the snapshot and the manifest of what
    was copied (the hashes of its Python files, read while copying)."""
    root = Path(sweep_dir) / SNAPSHOT_DIR
    partial = root.with_name(f"{SNAPSHOT_DIR}.partial-{os.getpid()}")
    manifest: dict[str, str] = {}
    size = 0
    try:
        for item in code.files:
            target = partial / item.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item.source, target)
            size += target.stat().st_size
            if item.name.endswith(".py"):
                manifest[item.name] = file_hash(target)
        (partial / RECIPE / code.conf_name).mkdir(parents=True, exist_ok=True)
        about = {"recipe_dir": str(code.recipe_dir), "conf": code.conf_name,
                 "packages": {name: str(path) for name, path in sorted(code.packages.items())},
                 "files": len(code.files), "bytes": size, "digest": digest(manifest)}
        (partial / SNAPSHOT_FILE).write_text(json.dumps(about, indent=2) + "\n")
        partial.rename(root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Snapshot(root, code.conf_name), manifest


def existing(sweep_dir: Path) -> Snapshot | None:
    """The snapshot a launch took for `sweep_dir` (what `launch retry` runs again)."""
    root = Path(sweep_dir) / SNAPSHOT_DIR
    if not (root / SNAPSHOT_FILE).is_file():
        return None
    about = json.loads((root / SNAPSHOT_FILE).read_text())
    return Snapshot(root, str(about.get("conf", "conf")))


def described(code: Code, where: Path) -> str:
    """One line for the dry run and the launch: what is copied where."""
    size = sum(f.source.stat().st_size for f in code.files)
    local = ", ".join(f"{name} ({path})" for name, path in sorted(code.packages.items()))
    return (f"code snapshot: {len(code.files)} files, {size / 1024:.0f} KiB -> {where}"
            + (f"; local packages: {local}" if local else ""))


def manifest_of(snapshot: Snapshot) -> dict[str, str]:
    """The hashes of a snapshot's Python files, named as `Code.manifest` names them."""
    return {path.relative_to(snapshot.root).as_posix(): file_hash(path)
            for path in sorted(snapshot.root.rglob("*.py"))}
