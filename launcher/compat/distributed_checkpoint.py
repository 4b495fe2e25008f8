"""Sharded checkpoint folders, as Lightning's FSDP and ModelParallel strategies write them.

Such a folder holds one `__<rank>_0.distcp` file per rank and DCP's `.metadata`
(both from `torch.distributed.checkpoint`), and Lightning's `meta.pt`: the
checkpoint dict without the weights and optimizer states (loops, callbacks,
the launcher's resume state), written by rank 0 after the shards. FSDP puts
the weights under `model`, ModelParallel under `state_dict`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DCP_METADATA = ".metadata"  # torch.distributed.checkpoint's, written once every shard is
WEIGHT_KEYS = ("state_dict", "model")  # ModelParallelStrategy's, FSDPStrategy's


def lightning_metadata_file() -> str:
    """The name of Lightning's `meta.pt` (`lightning_fabric.utilities.load._METADATA_FILENAME`)."""
    from lightning_fabric.utilities.load import _METADATA_FILENAME

    return _METADATA_FILENAME


def shard_sizes(folder: Path) -> dict[str, int]:
    """Each file the folder's DCP metadata names, with the bytes it must hold at least."""
    from torch.distributed.checkpoint import FileSystemReader

    metadata = FileSystemReader(str(folder)).read_metadata()
    sizes: dict[str, int] = {}
    for info in (metadata.storage_data or {}).values():
        end = int(info.offset) + int(info.length)
        sizes[info.relative_path] = max(sizes.get(info.relative_path, 0), end)
    return sizes


def consolidate(folder: Path) -> dict[str, Any]:
    """The whole checkpoint in one dict, as a single-file checkpoint has it: the weights
    gathered from every shard under `state_dict`, next to `meta.pt`'s entries. No
    process group is needed; it must fit in this process's memory. Relies on
    `torch.distributed.checkpoint.format_utils._EmptyStateDictLoadPlanner` and
    `state_dict_loader._load_state_dict(..., no_dist=True)`, as Lightning's
    `_load_distributed_checkpoint` does."""
    import torch
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.format_utils import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    loaded: dict[str, Any] = {}
    _load_state_dict(loaded, storage_reader=FileSystemReader(str(folder)),
                     planner=_EmptyStateDictLoadPlanner(), no_dist=True)
    checkpoint = torch.load(folder / lightning_metadata_file(), map_location="cpu",
                            weights_only=False)
    weights = next((loaded[k] for k in WEIGHT_KEYS if k in loaded), {})
    checkpoint["state_dict"] = {k: _local(v) for k, v in weights.items()}
    return checkpoint


def _local(value: Any) -> Any:
    """A plain tensor (loaded shards of a DTensor come back whole already)."""
    to_local = getattr(value, "full_tensor", None)
    return to_local() if callable(to_local) else value
