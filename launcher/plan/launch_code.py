"""The code a launch runs: a new snapshot, the one `launch retry` reuses, or (a single
local run, or `snapshot: false`) the working tree as it is now."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.snapshot.files import Code, code_of, digest
from launcher.snapshot.take import SNAPSHOT_DIR, Snapshot, described, existing, manifest_of, take


@dataclass
class LaunchCode:
    code: Code
    reused: Snapshot | None  # the snapshot of an earlier launch, run again
    snapshot: bool  # whether this launch takes one

    @classmethod
    def of(cls, recipe: Any, planned: Sequence[Any], overrides: Sequence[str],
           code_from: Path | None, snapshot: bool) -> LaunchCode:
        """What the jobs will import: the recipe's code, and the local packages its
        sources, its config (the first job's) and the overrides' values name."""
        values = [v for o in overrides for v in o.split("=", 1)[-1].split(",")]
        code = code_of(recipe.dir, recipe.conf_dir, [planned[0].composed, values])
        reused = existing(code_from) if code_from is not None else None
        return cls(code, reused, bool(snapshot) or reused is not None)

    @functools.cached_property
    def manifest(self) -> dict[str, str]:
        """The hashes of the Python files the jobs will run."""
        return manifest_of(self.reused) if self.reused else self.code.manifest()

    def conf_dir_in(self, sweep_dir: Path) -> Path | None:
        """Take the snapshot (or reuse one); the config folder the jobs compose from,
        None when they use the recipe's own."""
        if self.reused is not None:
            return self.reused.conf_dir
        if not self.snapshot:
            return None
        taken, self.manifest = take(self.code, sweep_dir)
        return taken.conf_dir

    def launch_facts(self, command: Sequence[str], sweep_dir: Path) -> tuple[dict, str]:
        """The launch's part of each run's record, with the digest of its code."""
        from launcher.run_record import launch_facts

        facts, diff = launch_facts(self.code.recipe_dir, list(command))
        where = self.reused.root if self.reused else \
            (Path(sweep_dir) / SNAPSHOT_DIR if self.snapshot else None)
        facts["code"] = {"digest": digest(self.manifest), "snapshot": str(where or ""),
                         "files": self.manifest}
        return facts, diff

    def described(self, sweep_dir: Path) -> str:
        if self.reused is not None:
            return f"code: the snapshot {self.reused.root}, as the runs were first launched"
        if not self.snapshot:
            return "code: imported from the recipe folder as the job starts (no snapshot)"
        return described(self.code, Path(sweep_dir) / SNAPSHOT_DIR)
