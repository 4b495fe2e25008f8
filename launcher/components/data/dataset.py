"""The datasets a `DataOrganizer` hands out, as ESPnet3's `espnet3.components.data.dataset`.

An item is the underlying dataset's item passed through its `transform` and then
the organizer's `preprocessor`: a dict of arrays. When the dataloader's collate
function is a CommonCollateFn, `use_espnet_collator` is set and items become
`(utt_id, dict)` pairs, the utterance id being the item's index as a string.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def do_nothing(*x: Any) -> Any:
    """The identity: one argument back as it is, several as a tuple."""
    return x[0] if len(x) == 1 else x


class DatasetWithTransform:
    """One dataset whose items pass through `transform`, then `preprocessor`."""

    def __init__(self, dataset: Any, transform: Callable = do_nothing,
                 preprocessor: Callable = do_nothing,
                 use_espnet_preprocessor: bool = False) -> None:
        if not callable(transform) or not callable(preprocessor):
            raise TypeError("a transform and a preprocessor must be callable")
        self.dataset, self.transform, self.preprocessor = dataset, transform, preprocessor
        self.use_espnet_preprocessor = use_espnet_preprocessor
        self.use_espnet_collator = False

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Any:
        return _finish(self.dataset[idx], idx, self.transform, self.preprocessor,
                       self.use_espnet_preprocessor, self.use_espnet_collator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.dataset).__name__}, len={len(self)})"


class CombinedDataset:
    """Several datasets read as one, each with its own (transform, preprocessor)."""

    def __init__(self, datasets: Sequence[Any], transforms: Sequence[tuple[Callable, Callable]],
                 use_espnet_preprocessor: bool = False) -> None:
        if len(datasets) != len(transforms):
            raise ValueError("one (transform, preprocessor) pair is needed per dataset")
        self.datasets, self.transforms = list(datasets), list(transforms)
        self.use_espnet_preprocessor = use_espnet_preprocessor
        self.use_espnet_collator = False
        self.ends: list[int] = []
        for dataset in self.datasets:
            self.ends.append((self.ends[-1] if self.ends else 0) + len(dataset))
        self.multiple_iterator = bool(self.datasets) and all(
            hasattr(d, "shard") for d in self.datasets)
        keys = set()  # the first item of each dataset, transformed, shows its keys
        for dataset, (transform, _) in zip(self.datasets, self.transforms, strict=True):
            first = transform(copy.deepcopy(dataset[0])) if len(dataset) else None
            if isinstance(first, Mapping):
                keys.add(frozenset(first))
        if len(keys) > 1:
            raise ValueError(f"the datasets' items have different keys: "
                             f"{sorted(sorted(k) for k in keys)}")

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, idx: int | str) -> Any:
        idx = int(idx)  # ESPnet3 passes utterance ids that are indices as strings
        if idx < 0:
            idx += len(self)
        for i, end in enumerate(self.ends):
            if 0 <= idx < end:
                start = self.ends[i - 1] if i else 0
                transform, preprocessor = self.transforms[i]
                return _finish(self.datasets[i][idx - start], idx, transform, preprocessor,
                               self.use_espnet_preprocessor, self.use_espnet_collator)
        raise IndexError(f"index {idx} is out of range for {len(self)} items")

    def shard(self, shard_idx: int) -> CombinedDataset:
        """Shard `shard_idx` of every dataset (ESPnet's multiple-iterator mode)."""
        if not self.multiple_iterator:
            raise RuntimeError("every dataset must have a shard(idx) method")
        sharded = CombinedDataset([d.shard(shard_idx) for d in self.datasets],
                                  self.transforms, self.use_espnet_preprocessor)
        sharded.use_espnet_collator = self.use_espnet_collator
        return sharded

    def __repr__(self) -> str:
        parts = ", ".join(f"{type(d).__name__}(len={len(d)})" for d in self.datasets)
        return f"{type(self).__name__}([{parts}])"


def _finish(sample: Any, idx: int, transform: Callable, preprocessor: Callable,
            espnet_preprocessor: bool, espnet_collator: bool) -> Any:
    sample = transform(sample)
    sample = preprocessor(str(idx), sample) if espnet_preprocessor else preprocessor(sample)
    return (str(idx), sample) if espnet_collator else sample


class WithUttIds:
    """A plain dataset whose dict items become `(utt_id, item)` pairs, the id being the
    index: what a CommonCollateFn takes (ESPnet3 gives its own datasets' ids so)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Any:
        item = self.dataset[idx]
        return (str(idx), item) if isinstance(item, Mapping) else item
