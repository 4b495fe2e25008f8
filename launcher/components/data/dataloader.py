"""Datasets and dataloaders from the `dataset` and `dataloader` config blocks.

    dataset:    {train: {_target_: ...}, valid: {...}, test: {...}}
    dataloader: {batch_size: 32, num_workers: 0, collate_fn: src.data.collate,
                 train: {<overrides for train only>}, valid: {...}, test: {...}}

The train split is shuffled unless told otherwise. Batches come from a
`ResumableBatchSampler` that shards them across ranks itself (so Lightning's
own distributed sampler is not needed) and can resume mid-epoch exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch.utils.data import DataLoader, Dataset

from launcher.components.building import build
from launcher.components.targets import locate
from launcher.errors import ConfigError

SPLITS = ("train", "valid", "test")


def build_dataset(config: Mapping, split: str) -> Dataset:
    datasets = config.get("dataset") or {}
    if datasets.get(split) is None:
        raise ConfigError(f"no '{split}' dataset configured", key=f"dataset.{split}",
                          hint=f"add 'dataset: {{{split}: {{_target_: src.data.MyDataset}}}}'")
    return build(datasets[split], f"dataset.{split}")


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
        options["collate_fn"] = build(collate, "dataloader.collate_fn")
    if options.get("num_workers", 0) > 0:
        options.setdefault("persistent_workers", True)
    return options


def build_dataloader(config: Mapping, split: str, dataset: Dataset | None = None, *,
                     rank: int = 0, world_size: int = 1) -> DataLoader:
    import torch

    from launcher.components.data.batch_order import ResumableBatchSampler

    dataset = build_dataset(config, split) if dataset is None else dataset
    options = dataloader_options(config, split)
    seed = int(config.get("seed", 0))
    # Worker seeds come from this generator, never from the global random state.
    options.setdefault("generator", torch.Generator().manual_seed(seed))
    if "sampler" in options or "batch_sampler" in options:
        return DataLoader(dataset, **options)
    sampler = ResumableBatchSampler(
        len(dataset), int(options.pop("batch_size", 1)), shuffle=bool(options.pop("shuffle")),
        seed=seed, drop_last=bool(options.pop("drop_last", False)), rank=rank,
        world_size=world_size)
    return ResumableDataLoader(dataset, batch_sampler=sampler, **options)


class ResumableDataLoader(DataLoader):
    """Tells Lightning that this loader resumes mid-epoch exactly.

    The position itself travels in the LightningModule's checkpoint entry
    (taken at the step boundary, unaffected by prefetching) and is handed to
    the batch sampler when the loader is built; nothing is needed here.
    """

    def state_dict(self) -> dict:
        return {"epoch": self.batch_sampler.epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


def model_inputs(batch: Any) -> Any:
    """The keyword arguments of `model(**batch)`: the batch itself, or the mapping of an
    ESPnet `(utt_ids, {name: tensor})` batch (CommonCollateFn's shape)."""
    if isinstance(batch, list | tuple) and len(batch) == 2 and isinstance(batch[1], Mapping):
        return batch[1]
    return batch
