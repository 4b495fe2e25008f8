"""Datasets and dataloaders from the `dataset` and `dataloader` config blocks.

    dataset:    {train: {_target_: ...}, valid: {...}, test: {...}}
    dataloader: {batch_size: 32, num_workers: 0, collate_fn: src.data.collate,
                 train: {<overrides for train only>}, valid: {...}, test: {...}}

The train split is shuffled unless told otherwise; Lightning adds the
distributed sampler under DDP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset

from launcher.errors import ConfigError
from launcher.resolve import locate

SPLITS = ("train", "valid", "test")


def build_dataset(config: Mapping, split: str) -> Dataset:
    datasets = config.get("dataset") or {}
    if datasets.get(split) is None:
        raise ConfigError(f"no '{split}' dataset configured", key=f"dataset.{split}",
                          hint=f"add 'dataset: {{{split}: {{_target_: src.data.MyDataset}}}}'")
    return instantiate(datasets[split])


def has_split(config: Mapping, split: str) -> bool:
    return (config.get("dataset") or {}).get(split) is not None


def dataloader_options(config: Mapping, split: str) -> dict[str, Any]:
    """Common dataloader options merged with the split's own, collate_fn resolved."""
    block = dict(config.get("dataloader") or {})
    per_split = {s: block.pop(s, None) or {} for s in SPLITS}
    options = {"shuffle": split == "train", **block, **dict(per_split[split])}
    collate = options.get("collate_fn")
    if isinstance(collate, str):
        options["collate_fn"] = locate(collate, key="dataloader.collate_fn",
                                       recipe_dir=config.get("recipe_dir"))
    elif isinstance(collate, Mapping):
        options["collate_fn"] = instantiate(collate)
    if options.get("num_workers", 0) > 0:
        options.setdefault("persistent_workers", True)
    return options


def build_dataloader(config: Mapping, split: str, dataset: Dataset | None = None) -> DataLoader:
    dataset = build_dataset(config, split) if dataset is None else dataset
    return DataLoader(dataset, **dataloader_options(config, split))
