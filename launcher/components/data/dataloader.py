"""Datasets and dataloaders from the `dataset` and `dataloader` config blocks.

    dataset:    {train: {_target_: ...}, valid: {...}, test: {...}}
    dataloader: {batch_size: 32, num_workers: 0, collate_fn: src.data.collate,
                 train: {<overrides for train only>}, valid: {...}, test: {...}}

`dataset` may instead be ESPnet3's organizer, one `_target_` whose object has
`train`, `valid` and `test` (`launcher.components.data.data_organizer`): it
is built once per process and its splits taken; its collate function defaults
to a CommonCollateFn, as in ESPnet3. `collate_fn` is a dotted path or a
`_target_` block.

The train split is shuffled unless told otherwise. Batches come from a
`ResumableBatchSampler` that shards them across ranks itself (so Lightning's
own distributed sampler is not needed) and can resume mid-epoch exactly.
ESPnet3's `<split>.iter_factory: null` asks for exactly this standard loader;
an `iter_factory` block or `multiple_iterator: true` asks for ESPnet's
iterators, which need espnet2 (`launcher.components.data.espnet_iterator`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch.utils.data import DataLoader, Dataset

from launcher.components.building import build
from launcher.components.targets import locate
from launcher.errors import ConfigError

SPLITS = ("train", "valid", "test")
# ESPnet3's keys of a split's dataloader block that choose ESPnet's iterators.
ESPNET_ITERATOR_KEYS = ("iter_factory", "multiple_iterator", "num_shards", "total_shards",
                        "dist_world_size")
COLLECT_STATS_BATCH_SIZE = 4  # ESPnet3's, when the config names no batch size
_organizers: dict[str, Any] = {}  # the organizer built last, by its resolved block


def is_organizer(config: Mapping) -> bool:
    """Whether `dataset` is one `_target_` (an organizer) rather than a block per split."""
    datasets = config.get("dataset")
    return isinstance(datasets, Mapping) and datasets.get("_target_") is not None


def organizer(config: Mapping) -> Any:
    """The `dataset` organizer, built once per process for an unchanged block."""
    from omegaconf import OmegaConf

    block = config["dataset"]
    key = repr(OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block)
               else block)
    if key not in _organizers:
        _organizers.clear()
        _organizers[key] = build(block, "dataset")
    return _organizers[key]


def build_dataset(config: Mapping, split: str) -> Dataset:
    if is_organizer(config):
        dataset = _organizer_split(organizer(config), split)
    else:
        block = (config.get("dataset") or {}).get(split)
        dataset = None if block is None else build(block, f"dataset.{split}")
    if dataset is None:
        raise ConfigError(f"no '{split}' dataset configured", key=f"dataset.{split}",
                          hint=f"add 'dataset: {{{split}: {{_target_: src.data.MyDataset}}}}'"
                          if not is_organizer(config) else
                          f"add a '{split}' list to the organizer: [{{name: ..., "
                          "dataset: {_target_: ...}}]")
    return dataset


def _organizer_split(built: Any, split: str) -> Any:
    dataset = getattr(built, split, None)
    if isinstance(dataset, Mapping):  # the organizer's test sets, by name
        from launcher.components.data.dataset import CombinedDataset, do_nothing

        sets = list(dataset.values())
        if len(sets) <= 1:
            return sets[0] if sets else None
        return CombinedDataset(sets, [(do_nothing, do_nothing)] * len(sets))
    return dataset


def has_split(config: Mapping, split: str) -> bool:
    block = (config.get("dataset") or {}).get(split)
    return bool(block) if is_organizer(config) else block is not None


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
    elif collate is None and is_organizer(config):
        from launcher.components.data.collate import CommonCollateFn

        options["collate_fn"] = CommonCollateFn(int_pad_value=-1)  # ESPnet3's default
    if options.get("num_workers", 0) > 0:
        options.setdefault("persistent_workers", True)
    return options


def wants_espnet_iterator(options: Mapping) -> str | None:
    """The key of a split's options that asks for ESPnet's iterators, if any."""
    if options.get("multiple_iterator"):
        return "multiple_iterator"
    return "iter_factory" if options.get("iter_factory") is not None else None


def build_dataloader(config: Mapping, split: str, dataset: Dataset | None = None, *,
                     rank: int = 0, world_size: int = 1, epoch: int = 0,
                     in_order: bool = False) -> Any:
    """The split's loader. `in_order`: every item once, in index order, by a standard
    loader whatever the config asks (collect_stats reads the data so)."""
    import torch

    from launcher.components.data.batch_order import ResumableBatchSampler
    from launcher.components.data.collate import is_common_collate

    dataset = build_dataset(config, split) if dataset is None else dataset
    options = dataloader_options(config, split)
    with_ids = is_common_collate(options.get("collate_fn"))  # (utt_id, item), as ESPnet3's
    if hasattr(dataset, "use_espnet_collator"):
        dataset.use_espnet_collator = with_ids
    elif with_ids:
        from launcher.components.data.dataset import WithUttIds

        dataset = WithUttIds(dataset)
    seed = int(config.get("seed", 0))
    if wants_espnet_iterator(options) and not in_order:
        from launcher.components.data.espnet_iterator import build_espnet_iterator

        return build_espnet_iterator(dataset, options, seed=seed, epoch=epoch, rank=rank,
                                     world_size=world_size)
    if in_order:
        options.setdefault("batch_size", COLLECT_STATS_BATCH_SIZE)
        options.update(shuffle=False, drop_last=False)
    for key in ESPNET_ITERATOR_KEYS:
        options.pop(key, None)
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
