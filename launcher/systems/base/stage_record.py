"""Finished stages are recorded as they finish, so that a requeue or a relaunch of the
same command does not do them again.

After a stage returns, rank 0 adds it to `stages_done` in status.json and notes
the config fingerprint of the attempt that did it under `stage_fingerprints`
(`{stage: fingerprint}`; `stages_done` stays a plain list, as `is_complete`
reads it). At the next attempt a stage is skipped when it was recorded done
with the same fingerprint as now AND what it leaves behind is still there:

- collect_stats: `stats_keys` and, for each name in it, `<name>_stats.npz` and
  `<name>_shape`, in the train folder of the stats (and the valid one when the
  config has a valid set);
- train: `checkpoints/last.ckpt` (a System that trains elsewhere, such as the
  curriculum's phases, has none there: its train always runs, and skips its own
  finished parts);
- evaluate: `evaluate.json`;
- a recipe's own stage: nothing can be checked, so the record alone decides.

A changed config (another fingerprint) runs the stage again, as do missing
outputs; `resume=false` starts the whole run over.

Every rank must decide alike, so the record is read once, when System.run
starts, from the status.json the earlier attempts left (rank 0 rewrites it at
the start of each attempt, but keeps these fields). The fingerprint is the one
planning handed the job (`run_identity`, the same on every rank); a job without
one uses status.json's `config`, which rank 0 wrote for this attempt. A job with
neither records and skips nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.identity import RUN_KEY
from launcher.status_file import RUNNING, status_as_far_as_readable, write_status

log = logging.getLogger(__name__)
STAGE_FINGERPRINTS = "stage_fingerprints"
REDO_HINT = "resume=false starts the run over"


@dataclass(frozen=True)
class Decision:
    """Whether a stage runs, and why, for the log (`why` is None for a stage never done)."""

    skip: bool
    why: str | None = None


@dataclass(frozen=True)
class StageRecord:
    """What earlier attempts recorded of a run's stages, read once per attempt."""

    run_dir: Path
    fingerprint: str | None  # this attempt's config; None: record and skip nothing
    done: Mapping[str, str] = field(default_factory=dict)  # stage: its attempt's config

    @classmethod
    def read(cls, run_dir: Path, config: Mapping) -> StageRecord:
        """The record as status.json holds it now; a damaged status records nothing."""
        status = status_as_far_as_readable(run_dir)
        status = status if isinstance(status, Mapping) else {}
        planned = config.get(RUN_KEY) or {}
        current = (planned.get("fingerprint") if isinstance(planned, Mapping) else None) \
            or status.get("config")
        done = status.get(STAGE_FINGERPRINTS)
        done = {str(k): str(v) for k, v in done.items()} if isinstance(done, Mapping) else {}
        return cls(Path(run_dir), str(current) if current else None, done)

    def decide(self, system: Any, name: str) -> Decision:
        """Skip `name` when done before with this config and its outputs are complete."""
        if self.fingerprint is None or name not in self.done:
            return Decision(False)
        if self.done[name] != self.fingerprint:
            return Decision(False, "done by an earlier attempt with another config; "
                                   "running it again")
        complete, where = outputs_complete(system, name)
        if not complete:
            return Decision(False, "done by an earlier attempt, but not all that it wrote "
                                   f"is there ({where}); running it again")
        place = f" ({where})" if where else ""
        return Decision(True, f"done by an earlier attempt with the same config{place}; "
                              f"{REDO_HINT}")

    def record(self, name: str) -> None:
        """Note `name` as done by this attempt (rank 0 only). A failed write costs only
        a repeat of the stage after a restart, so it is logged, not raised."""
        if self.fingerprint is None:
            return
        try:
            status = status_as_far_as_readable(self.run_dir)
            status = status if isinstance(status, Mapping) else {}
            done = status.get("stages_done")
            done = [str(s) for s in done] if isinstance(done, list) else []
            stamps = status.get(STAGE_FINGERPRINTS)
            stamps = dict(stamps) if isinstance(stamps, Mapping) else {}
            write_status(self.run_dir, status.get("state") or RUNNING,
                         stages_done=sorted({*done, name}),
                         **{STAGE_FINGERPRINTS: {**stamps, name: self.fingerprint}})
        except OSError as exc:
            log.warning("could not record stage %s as done in %s: %s; a restart runs it "
                        "again", name, self.run_dir / layout.STATUS_FILE, exc)


def outputs_complete(system: Any, name: str) -> tuple[bool, str]:
    """Whether what stage `name` leaves behind is all there, and where it is (for the log)."""
    exp_dir = Path(system.exp_dir)
    if name == "collect_stats":
        folder = layout.stats_dir(system.config.get("stats_dir"),
                                  system.config.get("recipe_dir"), exp_dir)
        return stats_complete(folder, system.config), f"stats in {folder}"
    if name == "train":
        last = exp_dir / layout.CHECKPOINT_DIR / layout.LAST_CHECKPOINT
        return last.is_file(), str(last)
    if name == "evaluate":
        report = exp_dir / layout.EVALUATE_FILE
        return report.is_file(), str(report)
    return True, ""


def stats_complete(folder: Path, config: Mapping) -> bool:
    """Every file collect_stats writes for the train set, and for the valid set when the
    config has one (see `launcher.components.data.collect_stats`)."""
    from launcher.components.data.collect_stats import STATS_KEYS_FILE, STATS_SPLITS
    from launcher.components.data.dataloader import has_split

    for split in STATS_SPLITS:
        if split != "train" and not has_split(config, split):
            continue
        keys = folder / split / STATS_KEYS_FILE
        if not keys.is_file():
            return False
        for key in keys.read_text().split():
            if not all((folder / split / f"{key}{end}").is_file()
                       for end in ("_stats.npz", "_shape")):
                return False
    return True
