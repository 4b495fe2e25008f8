"""The calls a whole job config describes, each judged before anything is written.

Every `_target_` block is a call (`launcher.plan.arguments`); so are the Trainer
options (of `pytorch_lightning.Trainer`), the dataloader options (of
`torch.utils.data.DataLoader`), and the settings the launcher reads itself
(`seed`, the Trainer wrapper's keys, a scheduler's `interval`). Arguments
the launcher passes itself (an optimizer's `params`) are not the config's to
set. Blocks under `curriculum` are changes merged over the config, not calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from launcher.components.lightning_app import is_lightning_app
from launcher.components.selection import COMPONENTS, is_lightning_trainer
from launcher.components.targets import keys_named, locate
from launcher.components.trainers.trainer import WRAPPER_KEYS
from launcher.errors import ConfigError
from launcher.plan.arguments import (
    check_block,
    check_call,
    dotted,
    require_contract,
    require_fit,
    resolved,
    signature_of,
)
from launcher.plan.type_judge import UNJUDGED, Verdict, noun, shown_value, verdict

# Subtrees whose `_target_` blocks are changes merged over the run's config, not calls.
NOT_CALLS = ("curriculum",)


@dataclass(frozen=True)
class Setting:
    """A key the launcher reads itself: its type, a lower bound, an example, and who
    reads it (for the message)."""

    annotation: Any
    example: str
    reader: str
    minimum: float | None = None
    above: bool = False  # > minimum, not >=

    def require(self, value: Any, *, key: str) -> None:
        if value is UNJUDGED or self.fits(value):
            return
        raise ConfigError(f"{shown_value(value)} is not {self.noun()} ({self.reader})",
                          key=key, hint=f"e.g. {dotted(key)}={self.example}")

    def fits(self, value: Any) -> bool:
        judged = verdict(self.annotation, value)
        if judged is not Verdict.FITS or value is None or self.minimum is None:
            return judged is not Verdict.MISFITS
        return value > self.minimum if self.above else value >= self.minimum

    def noun(self) -> str:
        if self.minimum is None:
            return noun(self.annotation)
        return f"{noun(self.annotation)} {'>' if self.above else '>='} {self.minimum:g}"


_WRAPPER = "a setting of the launcher's Trainer wrapper"
WRAPPER_SETTINGS = {  # the launcher.components.trainers.trainer.WRAPPER_KEYS that are plain values
    "average_checkpoints": Setting(bool, "true", _WRAPPER),
    "progress_interval_s": Setting(float, "30", _WRAPPER, 0),  # 0: a line every step
    "checkpoint_every_n_steps": Setting(int | None, "1000", _WRAPPER, 1),
    "checkpoint_every_min": Setting(float | None, "30", _WRAPPER, 0, above=True),
    "keep_periodic_checkpoints": Setting(int, "2", _WRAPPER, 1),
}
_SCHEDULER = "read by the launcher, not passed to the scheduler"
SCHEDULER_SETTINGS = {  # launcher.components.modeling.optimization_spec.SCHEDULER_KEYS
    "interval": Setting(Literal["step", "epoch"], "step", _SCHEDULER),
    "frequency": Setting(int, "1", _SCHEDULER),
    "monitor": Setting(str | None, "valid/loss", _SCHEDULER),
}
SEED = Setting(int, "0", "the launcher seeds every random generator of the run with it")


# ---- the whole job config -------------------------------------------------------
@dataclass(frozen=True)
class Role:
    """How the launcher calls the blocks at some paths."""

    given: tuple[str, ...] = ()  # arguments the launcher passes itself
    settings: Mapping[str, Setting] = field(default_factory=dict)  # keys it reads itself


ROLES = (
    (r"optim|optimizer|optims\[\d+\]\.optim|optimizers\.[^.]+\.optimizer",
     Role(given=("params",))),
    (r"scheduler|optims\[\d+\]\.scheduler|schedulers\[\d+\](\.scheduler)?"
     r"|schedulers\.[^.]+\.scheduler",
     Role(given=("optimizer",), settings=SCHEDULER_SETTINGS)),
)
DATALOADER = "torch.utils.data.DataLoader"
TRAINER = "pytorch_lightning.Trainer"


def check_arguments(job: Any, recipe_dir: Path | None = None) -> None:
    """Check every call of a job config: each `_target_` block, the Trainer options,
    the dataloader options and `seed`. Raises a ConfigError naming the key."""
    from omegaconf import OmegaConf

    config = job if OmegaConf.is_config(job) else OmegaConf.create(job)
    plain = OmegaConf.to_container(config, resolve=False)
    for path in call_paths(plain):
        _check_call_at(config, path, recipe_dir)
    if "seed" in config and not (config.seed is None and is_lightning_app(config)):
        SEED.require(resolved(config, "seed"), key="seed")  # an app's null: not seeded
    _check_trainer_options(config)
    _check_dataloader(config)


def call_paths(plain: Mapping) -> list[str]:
    """Paths of the `_target_` blocks the job calls, outer blocks first."""
    paths = [here.removesuffix("._target_") for here, _ in keys_named(plain, ("_target_",))
             if here != "_target_"]
    # A block with `_recursive_: false` gets the blocks inside it as plain settings.
    skipped = [*NOT_CALLS, *(p for p in paths if _at(plain, p).get("_recursive_") is False)]
    return [p for p in paths if not any(p.startswith((s + ".", s + "[")) for s in skipped)]


def _check_call_at(config: Any, path: str, recipe_dir: Path | None) -> None:
    block = _at(config, path)
    target = resolved(block, "_target_")
    if target is UNJUDGED:
        return
    obj = locate(target, key=f"{path}._target_", recipe_dir=recipe_dir)
    component = COMPONENTS.get(path)
    if path == "trainer" and is_lightning_trainer(target):
        return  # the launcher's wrapper builds it; its options are judged as the Trainer's
    if component is not None and component.arguments:  # keys are settings, not arguments
        require_contract(obj, component.arguments, key=f"{path}._target_", target=target)
        return
    role = next((r for pattern, r in ROLES if re.fullmatch(pattern, path)), Role())
    check_block(obj, block, key=path, target=target, given=role.given, settings=role.settings)


def _at(node: Any, path: str) -> Any:
    """The node at a path such as `optims[0].optim`."""
    for part in re.findall(r"[^.\[\]]+", path):
        node = node[part] if isinstance(node, Mapping) else node[int(part)]
    return node


def _check_trainer_options(config: Any) -> None:
    """Lightning's options against `pl.Trainer`, the wrapper's own against their settings;
    unknown keys are the Trainer class's `check_options` to refuse."""
    trainer = config.get("trainer")
    if not isinstance(trainer, Mapping):
        return
    import pytorch_lightning as pl

    parameters = signature_of(pl.Trainer).parameters
    for name in trainer:
        key = f"trainer.{name}"
        if name in WRAPPER_SETTINGS:
            WRAPPER_SETTINGS[name].require(resolved(trainer, name), key=key)
        elif name not in WRAPPER_KEYS and name in parameters:
            require_fit(parameters[name], resolved(trainer, name), key=key, owner=TRAINER)


def _check_dataloader(config: Any) -> None:
    """The `dataloader` block and each split's block, as DataLoader arguments (the
    launcher passes the dataset; `collate_fn` may be a dotted path it imports)."""
    block = config.get("dataloader")
    if block is None:
        return
    from torch.utils.data import DataLoader

    from launcher.components.data.dataloader import SPLITS

    if not isinstance(block, Mapping):
        raise ConfigError(f"{shown_value(resolved(config, 'dataloader'))} is not a block of "
                          "DataLoader options", key="dataloader",
                          hint="e.g. dataloader: {batch_size: 16, num_workers: 2}")
    parts = [("dataloader", {k: resolved(block, k) for k in block if k not in SPLITS})]
    for split in SPLITS:
        options = resolved(block, split) if split in block else None
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(f"{shown_value(options)} is not a block of DataLoader options",
                              key=f"dataloader.{split}",
                              hint=f"e.g. dataloader.{split}: {{batch_size: 16}}")
        parts.append((f"dataloader.{split}", dict(options or {})))
    for key, options in parts:
        if isinstance(options.get("collate_fn"), str):
            options["collate_fn"] = UNJUDGED  # a dotted path, imported by the launcher
        check_call(DataLoader, options, key=key, target=DATALOADER, given=("dataset",),
                   partial=True)
