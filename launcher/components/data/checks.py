"""Pre-launch checks of the `dataset` and `dataloader` blocks in ESPnet3's spellings.

ESPnet's iterators (`<split>.iter_factory` blocks, `multiple_iterator: true`)
and `espnet2.*` targets there need espnet2; without it they are refused here,
naming the key and the extra to install. An organizer's entries are judged
before it is built. `check_data` returns the config as the DataLoader checks
should read it: ESPnet's iterator keys are not DataLoader arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launcher.components.data.collate import ESPNET_COLLATE
from launcher.components.data.dataloader import (
    ESPNET_ITERATOR_KEYS,
    SPLITS,
    is_organizer,
    wants_espnet_iterator,
)
from launcher.components.data.espnet_iterator import EXTRA, espnet_available
from launcher.errors import ConfigError

ORGANIZER = "launcher.components.data.data_organizer.DataOrganizer"
OWN_COLLATE = "launcher.components.data.collate.CommonCollateFn"


def check_data(job: Any) -> Any:
    """Refuse what the data blocks ask for and cannot get; return the job for the
    DataLoader checks, ESPnet's iterator keys left out of each split's block."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(job, resolve=False) if OmegaConf.is_config(job) else job
    loaders = plain.get("dataloader")
    if isinstance(loaders, Mapping) and not espnet_available():
        _refuse_espnet_iterators(loaders)
        _refuse_espnet_targets(plain)
    if is_organizer(plain) and plain["dataset"]["_target_"] == ORGANIZER:
        check_organizer_entries(plain["dataset"])
    if not isinstance(loaders, Mapping) or not any(
            isinstance(loaders.get(s), Mapping) and set(loaders[s]) & set(ESPNET_ITERATOR_KEYS)
            for s in SPLITS):
        return job
    view = dict(plain)
    view["dataloader"] = {k: ({o: v for o, v in block.items() if o not in ESPNET_ITERATOR_KEYS}
                              if k in SPLITS and isinstance(block, Mapping) else block)
                          for k, block in loaders.items()}
    return OmegaConf.create(view)


def _refuse_espnet_iterators(loaders: Mapping) -> None:
    for split in SPLITS:
        block = loaders.get(split)
        key = wants_espnet_iterator(block) if isinstance(block, Mapping) else None
        if key:
            instead = "multiple_iterator: false and " if key == "multiple_iterator" else ""
            raise ConfigError(
                f"ESPnet's iterators ({key}) need espnet2, which is not installed",
                key=f"dataloader.{split}.{key}",
                hint=f"pip install '{EXTRA}', or use the launcher's own loader: "
                     f"{instead}iter_factory: null in dataloader.{split}, with batch_size, "
                     "shuffle, num_workers")


def _refuse_espnet_targets(plain: Mapping) -> None:
    from launcher.components.targets import keys_named

    blocks = {k: plain[k] for k in ("dataset", "dataloader") if isinstance(plain.get(k), Mapping)}
    for here, target in keys_named(blocks, ("_target_",)):
        if isinstance(target, str) and target.startswith("espnet2."):
            hint = f"pip install '{EXTRA}'"
            if target == ESPNET_COLLATE:
                hint += f", or use {OWN_COLLATE}, which batches the same way"
            raise ConfigError(f"'{target}' needs espnet2, which is not installed",
                              key=here, hint=hint)


def check_organizer_entries(block: Mapping) -> None:
    """Each split a list of `{name, dataset, transform}` entries; train and valid
    together; every test set named."""
    from launcher.components.data.data_organizer import ENTRY_KEYS

    given = [s for s in ("train", "valid") if block.get(s) is not None]
    if len(given) == 1:
        missing = "valid" if given == ["train"] else "train"
        raise ConfigError(f"the organizer has {given[0]} but no {missing}",
                          key=f"dataset.{missing}",
                          hint="give both train and valid, or neither")
    for split in SPLITS:
        entries = block.get(split)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ConfigError(f"dataset.{split} must be a list of datasets",
                              key=f"dataset.{split}",
                              hint=f"e.g. dataset.{split}: [{{name: a, dataset: "
                                   "{_target_: src.data.MyDataset}}]")
        for i, entry in enumerate(entries):
            key = f"dataset.{split}[{i}]"
            if not isinstance(entry, Mapping) or entry.get("dataset") is None:
                raise ConfigError(f"{key} names no dataset", key=key,
                                  hint="e.g. {name: a, dataset: {_target_: src.data.MyDataset}}")
            unknown = [k for k in entry if k not in ENTRY_KEYS]
            if unknown:
                raise ConfigError(f"{key} has an unknown key '{unknown[0]}'",
                                  key=f"{key}.{unknown[0]}",
                                  hint=f"an entry has {', '.join(ENTRY_KEYS)}")
            if split == "test" and not entry.get("name"):
                raise ConfigError(f"{key} has no name", key=f"{key}.name",
                                  hint="name each test set: it names its results")
