"""Batches in an order that can be resumed exactly, on every rank.

The order of an epoch depends only on (seed, epoch): a permutation from a
private generator, padded to a multiple of the world size and dealt out to
the ranks like DistributedSampler does. A run restored in the middle of an
epoch skips the batches it already trained on and then sees exactly the
batches an uninterrupted run would have seen. Nothing here touches the
global random state, so the model's own randomness (dropout) is not shifted
by data loading.

Dealt out so, the first `b` batches of `s` on each of N ranks are exactly
the first N·b·s positions of the epoch's order: a run resumed on another
number of ranks starts from that position (`resume_at`), and deals out the
rest of the epoch to its own ranks.
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
        self._start = 0  # the first position of the epoch's order still to train on

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def resume(self, epoch: int, batches_done: int) -> None:
        """Skip the first `batches_done` batches the next time `epoch` is iterated."""
        self._skip_epoch, self._skip = epoch, batches_done

    def resume_at(self, epoch: int, position: int) -> None:
        """Deal out `epoch` from `position` of its order the next time it is iterated (the
        positions before it were trained on by another number of ranks)."""
        self._skip_epoch, self._skip, self._start = epoch, 0, position

    def batches_left(self, epoch: int) -> int:
        """The batches this rank has in `epoch` from the position given to `resume_at`."""
        start = self._start if self._skip_epoch == epoch else 0
        return len(self._batches(self._order(epoch)[start:])) if start < self.size else 0

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def _batches(self, order: list[int]) -> list[list[int]]:
        padding = (-len(order)) % self.world_size
        indices = (order + order[:padding])[self.rank::self.world_size]
        batches = [indices[i:i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        resuming = self._skip_epoch == self.epoch
        skip, start = (self._skip, self._start) if resuming else (0, 0)
        self._skip_epoch, self._skip, self._start = None, 0, 0
        order = self._order(self.epoch)
        yield from self._batches(order[start:] if start < self.size else [])[skip:]

    def __len__(self) -> int:
        per_rank = -(-self.size // self.world_size)
        if self.drop_last:
            return per_rank // self.batch_size
        return -(-per_rank // self.batch_size)
