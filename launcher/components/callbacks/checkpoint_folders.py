"""Reading checkpoints that are files or sharded folders, alike.

A sharded strategy (`{name: fsdp, state_dict_type: sharded}`, `fsdp2`) saves
each checkpoint as a folder of shards (`launcher.compat.distributed_checkpoint`),
renamed into place once complete (`launcher.components.trainers.sharded`).
Resuming, averaging and `evaluate` read through here, so they need not know
which kind a run wrote: a folder counts as a checkpoint only when its
metadata, Lightning's `meta.pt` and every shard it names are there, whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def damage(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None when it is complete."""
    from launcher.compat.distributed_checkpoint import (
        DCP_METADATA,
        lightning_metadata_file,
        shard_sizes,
    )

    for name in (DCP_METADATA, lightning_metadata_file()):
        if not (folder / name).is_file():
            return f"{name} is missing"
    try:
        sizes = shard_sizes(folder)
    except Exception as exc:  # any unreadable metadata: the folder is damaged
        return f"{DCP_METADATA} is unreadable ({type(exc).__name__})"
    for name, size in sorted(sizes.items()):
        shard = folder / name
        if not shard.is_file():
            return f"shard {name} is missing"
        if shard.stat().st_size < size:
            return f"shard {name} is truncated ({shard.stat().st_size} of {size} bytes)"
    return None


def saved_at(path: Path) -> int:
    """When a checkpoint was written: a folder's `meta.pt` is its last file."""
    from launcher.compat.distributed_checkpoint import lightning_metadata_file

    marker = path / lightning_metadata_file() if path.is_dir() else path
    return (marker if marker.exists() else path).stat().st_mtime_ns


def training_state(path: Path) -> dict[str, Any]:
    """The checkpoint's entries other than weights and optimizer states (loops,
    callbacks, the resume position): a folder's `meta.pt`, or the file itself."""
    import torch

    from launcher.compat.distributed_checkpoint import lightning_metadata_file

    if path.is_dir():
        reason = damage(path)
        if reason is not None:
            raise ValueError(reason)
        return torch.load(path / lightning_metadata_file(), map_location="cpu",
                          weights_only=False)
    try:  # tensors memory-mapped: Lightning reads the whole file right after
        return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # checked again below, without the map, where a reason is reported
        return torch.load(path, map_location="cpu", weights_only=False)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The whole checkpoint, with the LightningModule's weights under `state_dict`; a
    folder's shards gathered into whole tensors."""
    import torch

    from launcher.compat.distributed_checkpoint import consolidate

    path = Path(path)
    if path.is_dir():
        reason = damage(path)
        if reason is not None:
            raise ValueError(f"checkpoint {path} is damaged: {reason}")
        return consolidate(path)
    return torch.load(path, map_location="cpu", weights_only=False)


def model_weights(path: str | Path) -> dict[str, Any]:
    """The bare model's weights from a checkpoint (the LightningModule's `model.` entries,
    without the prefix)."""
    state = read_checkpoint(path)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
