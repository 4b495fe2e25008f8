"""Batches in an order that can be resumed exactly, on every rank.

The order of an epoch depends only on (seed, epoch): a permutation from a
private generator, padded to a multiple of the world size and dealt out to
the ranks like DistributedSampler does. A run restored in the middle of an
epoch skips the batches it already trained on and then sees exactly the
batches an uninterrupted run would have seen. Nothing here touches the
global random state, so the model's own randomness (dropout) is not shifted
by data loading.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    def __init__(self, size: int, batch_size: int, *, shuffle: bool, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        # Lightning calls set_epoch on `loader.batch_sampler.sampler` each epoch.
        self.sampler = self
        self._skip_epoch: int | None = None
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def resume(self, epoch: int, batches_done: int) -> None:
        """Skip the first `batches_done` batches the next time `epoch` is iterated."""
        self._skip_epoch, self._skip = epoch, batches_done

    def _indices(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        padding = (-len(order)) % self.world_size
        order += order[:padding]
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        indices = self._indices()
        batches = [indices[i:i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        skip = self._skip if self._skip_epoch == self.epoch else 0
        self._skip_epoch, self._skip = None, 0
        yield from batches[skip:]

    def __len__(self) -> int:
        per_rank = -(-self.size // self.world_size)
        if self.drop_last:
            return per_rank // self.batch_size
        return -(-per_rank // self.batch_size)
