"""ESPnet's iterators, as ESPnet3's DataLoaderBuilder makes them; they need espnet2.

    dataloader:
      train:
        iter_factory:
          _target_: espnet2.iterators.sequence_iter_factory.SequenceIterFactory
          shuffle: true
          collate_fn: ${dataloader.collate_fn}
          batches: {type: sorted, shape_files: [<stats_dir>/train/feats_shape],
                    batch_size: 2, batch_bins: 200000}
        multiple_iterator: false      # true: one shard per epoch (num_shards of them)

Without espnet2 (the `launcher[espnet]` extra) such a config is refused before
launch; `iter_factory: null` is the launcher's own standard loader.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

EXTRA = "launcher[espnet]"


def espnet_available() -> bool:
    return importlib.util.find_spec("espnet2") is not None


def build_espnet_iterator(dataset: Any, options: Mapping, *, seed: int, epoch: int,
                          rank: int, world_size: int) -> Any:
    """The loader of ESPnet's `iter_factory` (or, with `multiple_iterator`, of this
    epoch's shard), its batches dealt out to the ranks as ESPnet3 does."""
    import numpy as np
    from omegaconf import OmegaConf

    options = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
               for k, v in options.items()}
    factory = options.get("iter_factory")
    if options.get("multiple_iterator"):
        shards = int(options["num_shards"])
        shard = (np.random.RandomState(epoch + seed).choice(shards) if options.get("shuffle")
                 else epoch % shards)
        dataset = dataset.shard(int(shard))
        if factory is None:
            from torch.utils.data import DataLoader

            rest = {k: v for k, v in options.items()
                    if k not in ("iter_factory", "multiple_iterator", "num_shards")}
            return DataLoader(dataset, **rest)
        factory = _with_shard(factory, int(shard))
    return _from_factory(dict(factory), dataset, epoch, rank, world_size)


def _from_factory(factory: dict, dataset: Any, epoch: int, rank: int, world_size: int) -> Any:
    from espnet2.samplers.build_batch_sampler import build_batch_sampler

    from launcher.components.building import build

    batches = build_batch_sampler(**factory.pop("batches"))
    if world_size > 1:
        batches = list(batches)
        if any(len(batch) < world_size for batch in batches):
            raise RuntimeError(f"every batch needs at least {world_size} items, one per rank")
        batches = [batch[rank::world_size] for batch in batches]
    made = build(factory, "dataloader.iter_factory", dataset=dataset, batches=batches)
    return made.build_iter(epoch, shuffle=False)


def _with_shard(node: Any, shard: int) -> Any:
    """`{shard_idx}` in the factory's strings (shape files) replaced by the shard."""
    if isinstance(node, dict):
        return {k: _with_shard(v, shard) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_shard(v, shard) for v in node]
    return node.format(shard_idx=shard) if isinstance(node, str) and "{shard_idx}" in node \
        else node
