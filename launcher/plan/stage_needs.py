"""What the stages to run need from the config, found before anything is written.

Training reads a train dataset and an optimizer, and a model that normalises its
inputs reads statistics that only the collect_stats stage writes. Without them
the job would start, make its run folder and fail at its first batch; the
launch is refused instead, naming the key, where it was set and the fix.

Only what would certainly fail is refused. Whatever brings its own data or
optimizers is trusted to: a LightningModule with its own `train_dataloader` or
`configure_optimizers`, a `model:` that is itself a LightningModule, a `data:`
block (a LightningDataModule), `fit.train_dataloaders` or `fit.datamodule`, and
a System whose own `train` (or `collect_stats`) replaces the shared one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.errors import ConfigError

DATA_STAGES = ("collect_stats", "train")  # the shared stages that read the train split
OWN_DATA_FIT_ARGUMENTS = ("train_dataloaders", "datamodule")
ORGANIZER = "launcher.components.data.data_organizer.DataOrganizer"
WORD = re.compile(r"[A-Za-z0-9_-]+")


def is_lightning_module(cls: Any) -> bool:
    """A LightningModule of either distribution (`pytorch_lightning` or `lightning`),
    told by its bases' names so that neither has to be imported."""
    return any(base.__name__ == "LightningModule"
               and base.__module__.split(".")[0] in ("pytorch_lightning", "lightning")
               for base in getattr(cls, "__mro__", ()))


def trains(job: Mapping, system: type) -> bool:
    """Whether the stages to run include training."""
    return "train" in system.check_stages(job.get("stages"))


def check_train_data(job: Mapping, classes: Mapping[str, type]) -> None:
    """Refuse stages that read the train split when the config names none."""
    from launcher.systems.base.system import System

    system = classes["system"]
    reading = [name for name in system.check_stages(job.get("stages"))
               if name in DATA_STAGES and getattr(system, name) is getattr(System, name)]
    if not reading or brings_own_data(job, classes) or _names_split(job, "train"):
        return
    datasets = job.get("dataset")
    organizer = isinstance(datasets, Mapping) and datasets.get("_target_") is not None
    hint = ("add a train list to the organizer: dataset.train: [{name: train, dataset: "
            "{_target_: src.data.MyDataset}}]" if organizer else
            "add 'dataset: {train: {_target_: src.data.MyDataset}}'")
    raise ConfigError(f"stage '{reading[0]}' reads the train split, and no train dataset "
                      f"is configured", key="dataset.train" if datasets else "dataset",
                      hint=hint + f", or drop {' and '.join(reading)} from stages")


def check_test_data(job: Mapping, classes: Mapping[str, type]) -> None:
    """Refuse the shared evaluate stage when the config names no test split (it would
    run after the whole training, and fail there)."""
    from launcher.components.modeling.lightning_module import ESPnetLightningModule
    from launcher.systems.base.system import System

    system, module = classes["system"], classes["lightning_module"]
    if "evaluate" not in system.check_stages(job.get("stages")) \
            or system.evaluate is not System.evaluate \
            or module.test_dataloader is not ESPnetLightningModule.test_dataloader \
            or brings_own_data(job, classes) or _names_split(job, "test"):
        return
    datasets = job.get("dataset")
    organizer = isinstance(datasets, Mapping) and datasets.get("_target_") is not None
    raise ConfigError(
        "stage 'evaluate' reads the test split, and no test dataset is configured",
        key="dataset.test" if datasets else "dataset",
        hint=("add a test list to the organizer: dataset.test: [{name: test, dataset: "
              "{_target_: src.data.MyDataset}}]" if organizer else
              "add 'dataset: {test: {_target_: src.data.MyDataset}}'")
        + ", or drop evaluate from stages")


def brings_own_data(job: Mapping, classes: Mapping[str, type]) -> bool:
    from launcher.components.modeling.lightning_module import ESPnetLightningModule

    module = classes["lightning_module"]
    data = job.get("data")
    fit = job.get("fit")
    return (is_lightning_module(classes["model"])
            or getattr(module, "train_dataloader", None)
            is not ESPnetLightningModule.train_dataloader
            or (isinstance(data, Mapping) and data.get("_target_") is not None)
            or (isinstance(fit, Mapping)
                and any(fit.get(k) is not None for k in OWN_DATA_FIT_ARGUMENTS)))


def _names_split(job: Mapping, split: str) -> bool:
    datasets = job.get("dataset")
    if not isinstance(datasets, Mapping):
        return False
    if datasets.get("_target_") is None:
        return datasets.get(split) is not None
    # An organizer of our own takes its splits from the block; another may make its own.
    return datasets["_target_"] != ORGANIZER or bool(datasets.get(split))


def check_statistics(job: Any, recipe_dir: Path) -> None:
    """Refuse training on statistics nobody has collected: a key whose value is a file
    in the stats folder that does not exist, with no collect_stats before train.

    Read from the files every launch (never remembered): statistics collected by an
    earlier run of the same folder, or into a shared `stats_dir`, are found."""
    stages = stages_of(job)
    if not reads_statistics(stages):
        return
    folder = stats_folder(resolved(job, "stats_dir"), recipe_dir, job["run_dir"])
    refuse_uncollected(stages, folder, path_values(job, recipe_dir))


def reads_statistics(stages: Sequence[str]) -> bool:
    """Whether the stages train on statistics that no stage before collects."""
    return "train" in stages and "collect_stats" not in stages[:stages.index("train")]


def stats_folder(configured: Any, recipe_dir: Path, run_dir: Any) -> Path:
    return layout.stats_dir(configured, recipe_dir, run_dir).resolve()


def refuse_uncollected(stages: Sequence[str], folder: Path,
                       paths: Iterable[tuple[str, Path]]) -> None:
    """Refuse a path in the stats folder (not the folder itself) that does not exist."""
    for key, path in paths:
        if path != folder and path.is_relative_to(folder) and not path.exists():
            shown = ",".join(stages)
            raise ConfigError(
                f"stages=[{shown}] trains on statistics nobody has collected: {key} is "
                f"{path}, which does not exist", key="stages",
                hint=f"collect them first: stages=[collect_stats,{shown}]")


def path_values(job: Any, recipe_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every string value of the config that names a path, with its key, as the absolute
    path it names (a relative one taken from the recipe folder)."""
    for key, value in _strings(job):
        yield key, as_path(value, recipe_dir)


def as_path(value: str, recipe_dir: Path) -> Path:
    path = Path(value)
    return (path if path.is_absolute() else Path(recipe_dir) / path).resolve()


def stages_of(job: Any) -> list[str]:
    stages = job.get("stages") or []
    return [stages] if isinstance(stages, str) else [str(s) for s in stages]


def resolved(job: Any, key: str) -> Any:
    """`job.key`, resolved; None when it cannot be resolved while planning
    (`${hydra:...}`: only a running job can answer)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.select(job, key, throw_on_missing=False)
    except OmegaConfBaseException:
        return None


def _strings(job: Any) -> Iterator[tuple[str, str]]:
    """Every string value of the config that names a path, resolved, with its key. A
    string with no interpolation is its own value (it is not looked up again)."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(job, resolve=False)
    for key, written, simple in _leaf_keys(plain, ""):
        value = written if simple and "${" not in written else resolved(job, key)
        if isinstance(value, str) and "/" in value and "\n" not in value:
            yield key, value


def _leaf_keys(node: Any, prefix: str, simple: bool = True) -> Iterator[tuple[str, str, bool]]:
    """(key, string as written, whether the key reaches it plainly) of every string;
    a key is plain when its names are words, which `OmegaConf.select` reads as given."""
    if isinstance(node, Mapping):
        for name, value in node.items():
            plain = simple and isinstance(name, str) and WORD.fullmatch(name) is not None
            yield from _leaf_keys(value, f"{prefix}.{name}" if prefix else str(name), plain)
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for i, value in enumerate(node):
            yield from _leaf_keys(value, f"{prefix}[{i}]", simple)
    elif isinstance(node, str):
        yield prefix, node, simple
