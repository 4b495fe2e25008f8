"""ESPnet3's `DataOrganizer`: the `dataset` block as lists of named datasets per split.

    dataset:
      _target_: launcher.components.data.data_organizer.DataOrganizer
      train:
        - name: train_a
          dataset: {_target_: src.data.MyDataset, split: a}
          transform: {_target_: src.data.make_transform}     # optional
        - name: train_b
          dataset: {_target_: src.data.MyDataset, split: b}
      valid:
        - {name: dev, dataset: {_target_: src.data.MyDataset, split: dev}}
      test:
        - {name: test, dataset: {_target_: src.data.MyDataset, split: test}}
      preprocessor: {_target_: src.data.Preprocess}            # optional

`train` and `valid` become one `CombinedDataset` each (train and valid come
together or not at all); each `test` entry a `DatasetWithTransform` in
`test` (a dict by name). An item is a dict; `(utt_id, dict)` when the
dataloader's collate function is a CommonCollateFn (see `dataset`). The
launcher builds the organizer once per process and takes its splits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from launcher.components.data.dataset import CombinedDataset, DatasetWithTransform, do_nothing

ENTRY_KEYS = ("name", "dataset", "transform")


@dataclass
class DatasetConfig:
    """One entry of a split: a name, the dataset (built, or a `_target_` block to build)
    and an optional transform applied to each item before the preprocessor."""

    name: str | None = None
    dataset: Any = None
    transform: Any = None


class DataOrganizer:
    def __init__(self, train: Sequence[Any] | None = None, valid: Sequence[Any] | None = None,
                 test: Sequence[Any] | None = None,
                 preprocessor: Callable | Mapping | None = None) -> None:
        if isinstance(preprocessor, Mapping):
            preprocessor = _built(preprocessor, "dataset.preprocessor")
        self.preprocessor = preprocessor or do_nothing
        if not callable(self.preprocessor):
            raise TypeError(f"the preprocessor {self.preprocessor!r} is not callable")
        espnet = is_espnet_preprocessor(self.preprocessor)
        if (train is None) != (valid is None):
            raise ValueError("give both train and valid, or neither")
        self.train = self.valid = None
        if train is not None:
            self.train = self._combined(train, "train", espnet)
            self.valid = self._combined(valid, "valid", espnet)
        self.test_sets: dict[str, DatasetWithTransform] = {}
        for i, entry in enumerate(test or ()):
            config = dataset_config(entry, f"dataset.test[{i}]")
            if config.name is None:
                raise ValueError(f"dataset.test[{i}] needs a name")
            self.test_sets[config.name] = DatasetWithTransform(
                config.dataset, config.transform, self.preprocessor,
                use_espnet_preprocessor=espnet)

    @property
    def test(self) -> dict[str, DatasetWithTransform]:
        return self.test_sets

    def _combined(self, entries: Sequence[Any], split: str, espnet: bool) -> CombinedDataset:
        configs = [dataset_config(e, f"dataset.{split}[{i}]") for i, e in enumerate(entries)]
        return CombinedDataset([c.dataset for c in configs],
                               [(c.transform, self.preprocessor) for c in configs],
                               use_espnet_preprocessor=espnet)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(train={self.train!r}, valid={self.valid!r}, "
                f"test={sorted(self.test_sets)})")


def dataset_config(entry: Any, key: str) -> DatasetConfig:
    """An entry as a DatasetConfig, its dataset and transform built if still blocks."""
    if isinstance(entry, DatasetConfig):
        config = DatasetConfig(entry.name, entry.dataset, entry.transform)
    elif isinstance(entry, Mapping):
        unknown = [k for k in entry if k not in ENTRY_KEYS]
        if unknown:
            raise ValueError(f"{key} has unknown key(s) {unknown}; an entry has "
                             f"{', '.join(ENTRY_KEYS)}")
        config = DatasetConfig(**{k: entry[k] for k in entry})
    else:
        raise TypeError(f"{key} is {type(entry).__name__}, not a block with "
                        f"{', '.join(ENTRY_KEYS)}")
    if config.dataset is None:
        raise ValueError(f"{key} has no dataset")
    if isinstance(config.dataset, Mapping):
        config.dataset = _built(config.dataset, f"{key}.dataset")
    if isinstance(config.transform, Mapping):
        config.transform = _built(config.transform, f"{key}.transform")
    config.transform = config.transform or do_nothing
    return config


def is_espnet_preprocessor(preprocessor: Any) -> bool:
    """An ESPnet `AbsPreprocessor` is called as `preprocessor(uid, sample)`."""
    if not any(c.__module__.startswith("espnet2.") for c in type(preprocessor).__mro__):
        return False
    from espnet2.train.preprocessor import AbsPreprocessor

    return isinstance(preprocessor, AbsPreprocessor)


def _built(block: Mapping, key: str) -> Any:
    from launcher.components.building import build

    return build(block, key)
