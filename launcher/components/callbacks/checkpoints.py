"""Checkpoints that survive being killed at any moment, and finding the one to resume.

Writes go to a temporary file that is renamed into place, so a checkpoint
file is either complete or absent (a sharded checkpoint is a folder, renamed
into place the same way: `launcher.components.trainers.sharded`). Should one
still be damaged (a full disk, a copy gone wrong, a shard deleted), resuming
falls back to the newest one that loads, and says so in the log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from launcher import layout

log = logging.getLogger("launcher.components.callbacks.checkpoints")


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        from launcher.atomic import NoSpace, out_of_space, temporary_path

        path = Path(path)
        tmp = temporary_path(path)
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        except Exception as exc:
            full = out_of_space(exc, tmp)  # asked before the partial file frees its space
            tmp.unlink(missing_ok=True)
            if full:
                raise NoSpace(path) from exc
            raise
        except BaseException:  # interrupted: no half-written temporary is left behind
            tmp.unlink(missing_ok=True)
            raise


def periodic_checkpoint(directory: Path, every_n_steps: int | None,
                        every_minutes: float | None, keep: int) -> Any:
    """Extra checkpoints every N steps or M minutes, the newest `keep` of them kept."""
    from datetime import timedelta

    from pytorch_lightning.callbacks import ModelCheckpoint

    return ModelCheckpoint(
        dirpath=str(directory), filename=layout.PERIODIC_PREFIX + "step{step:08d}",
        auto_insert_metric_name=False, monitor="step", mode="max", save_top_k=keep,
        every_n_train_steps=every_n_steps or None,
        train_time_interval=timedelta(minutes=every_minutes) if every_minutes else None,
        save_on_train_epoch_end=False, enable_version_counter=False)


def resume_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint (file or sharded folder) in `directory` that loads, or None
    if there is none."""
    from launcher.components.callbacks.checkpoint_folders import saved_at, training_state

    candidates = sorted((p for p in directory.glob("*.ckpt") if not p.name.startswith(".")),
                        key=saved_at, reverse=True)
    for i, path in enumerate(candidates):
        try:
            state = training_state(path)
        except Exception as exc:  # any unreadable checkpoint: fall back to an older one
            log.warning("checkpoint %s is unreadable (%s: %s); trying an older one",
                        path, type(exc).__name__, str(exc).splitlines()[0][:200])
            continue
        if "loops" not in state or ("state_dict" not in state and not path.is_dir()):
            log.warning("checkpoint %s is not a training checkpoint; trying an older one", path)
            continue
        if i:
            log.warning("resuming from the older checkpoint %s", path)
        return path
    return None
