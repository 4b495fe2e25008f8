"""FSDP with sharded checkpoints: every rank writes its shard, and a kill at any moment
leaves either the whole checkpoint folder or the previous one.

    strategy: {name: fsdp, state_dict_type: sharded}   FSDP (GPUs only)
    strategy: {name: fsdp2}                            FSDP2 (`fully_shard`), GPUs or CPUs

Lightning's strategies write a sharded checkpoint straight into its final
folder, so a job killed mid-save leaves a folder that looks like a checkpoint
and is not. Here all ranks write into `.<name>.<pid>.tmp/`; once every shard
and `meta.pt` are down, rank 0 renames it into place (`launcher.atomic`), and
removing an old best-k or `last` folder renames it away before deleting it.

Either format loads on another number of ranks: `torch.distributed.checkpoint`
reshards on load, and the batch position is converted by the LightningModule.
FSDP2 shards the model's direct children, then the model (`shard: [ClassName,
...]` shards every module of those classes instead), over the data-parallel mesh.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.strategies import FSDPStrategy, ModelParallelStrategy

from launcher.atomic import NoSpace, out_of_space, remove_folder, replace_folder, temporary_path
from launcher.components.trainers.options import sharded_checkpoints


class AtomicFolders:
    """The save and remove of a strategy whose checkpoints may be folders (mixed in
    before Lightning's strategy class)."""

    writes_folders = False

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any,
                        storage_options: Any | None = None) -> None:
        if not self.writes_folders:
            super().save_checkpoint(checkpoint, filepath, storage_options)
            return
        target = Path(self.broadcast(str(filepath)))
        staging = Path(self.broadcast(str(temporary_path(target))))
        try:
            super().save_checkpoint(checkpoint, staging, storage_options)
            self.barrier("launcher_checkpoint_written")
            if self.is_global_zero:
                replace_folder(staging, target)
        except BaseException as exc:
            full = isinstance(exc, Exception) and out_of_space(exc, staging.parent)
            if self.is_global_zero and staging.exists():
                remove_folder(staging)
            if full:  # asked before the partial folder freed its space
                raise NoSpace(target) from exc
            raise
        self.barrier("launcher_checkpoint_renamed")

    def remove_checkpoint(self, filepath: Any) -> None:
        path = Path(filepath)
        if self.is_global_zero and path.is_dir():
            remove_folder(path)
        else:
            super().remove_checkpoint(filepath)


class ShardedFSDPStrategy(AtomicFolders, FSDPStrategy):
    """Lightning's FSDPStrategy; `state_dict_type: sharded` saves folders atomically."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes_folders = sharded_checkpoints({"name": "fsdp", **kwargs})


class FSDP2Strategy(AtomicFolders, ModelParallelStrategy):
    """Lightning's ModelParallelStrategy with the shared LightningModule's model sharded
    by FSDP2; sharded checkpoints (folders) unless `save_distributed_checkpoint: false`."""

    def __init__(self, shard: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard_classes = tuple(shard or ())
        self.writes_folders = sharded_checkpoints({"name": "fsdp2", **kwargs})

    def setup_environment(self) -> None:
        from launcher.compat.lightning import data_parallel_mesh

        data_parallel_mesh(self)
        super().setup_environment()

    def shard_model(self, model: Any, mesh: Any) -> None:
        """`fully_shard` the chosen submodules, then the model (its remaining parameters)."""
        from torch.distributed.fsdp import fully_shard

        for module in self.units(model):
            fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)

    def units(self, model: Any) -> list:
        if self.shard_classes:
            return [m for m in model.modules() if type(m).__name__ in self.shard_classes
                    and m is not model]
        return [m for m in model.children() if next(m.parameters(), None) is not None]


def strategy_class(name: str) -> tuple[type, tuple[type, ...]]:
    """The class a `{name: ...}` strategy block builds, and the torch wrappers that take
    the options it passes on (DDP's and FSDP's keyword arguments)."""
    from pytorch_lightning.strategies import DDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.nn.parallel import DistributedDataParallel

    return {"ddp": (DDPStrategy, (DistributedDataParallel,)),
            "fsdp": (ShardedFSDPStrategy, (FullyShardedDataParallel,)),
            "fsdp2": (FSDP2Strategy, ())}[name]
