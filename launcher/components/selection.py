"""Which class the config selects for each part of a run, checked before use.

`model._target_`, `lightning_module._target_`, `trainer._target_` and
`system._target_` name the classes; all but the model default to the shared
ones. Each selected class must derive from its base and accept the contract's
constructor arguments, so a mistake is reported before any job is queued. The
model's block holds its constructor's arguments, judged by `launcher.plan.arguments`;
the other blocks hold settings, and the launcher passes the contract's
arguments only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.components.lightning_app import APP_MODULE, APP_SYSTEM, is_lightning_app
from launcher.components.targets import locate, require_subclass, translate_target
from launcher.errors import ConfigError


@dataclass(frozen=True)
class Component:
    key: str
    default: str | None
    base: str
    arguments: tuple[str, ...]


COMPONENTS = {
    "model": Component("model", None, "torch.nn.Module", ()),
    "lightning_module": Component(
        "lightning_module", "launcher.components.modeling.lightning_module.ESPnetLightningModule",
        "pytorch_lightning.LightningModule", ("model", "config")),
    "trainer": Component(
        "trainer", "launcher.components.trainers.trainer.ESPnet3LightningTrainer",
        "launcher.components.trainers.trainer.ESPnet3LightningTrainer",
        ("model", "exp_dir", "config", "best_model_criterion")),
    "system": Component("system", "launcher.systems.base.system.System",
                        "launcher.systems.base.system.System", ("config",)),
}
APP_DEFAULTS = {"system": APP_SYSTEM, "lightning_module": APP_MODULE}
REQUIRED_KEYS = ("model", "trainer")
CONSTRUCTION_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


# `trainer._target_` naming Lightning's own Trainer (as a Lightning app's config does)
# selects the launcher's wrapper, which builds that Trainer.
LIGHTNING_TRAINERS = ("pytorch_lightning.Trainer", "pytorch_lightning.trainer.Trainer",
                      "pytorch_lightning.trainer.trainer.Trainer")


def target_of(config: Mapping, name: str) -> str:
    """The dotted path the config selects for component `name` (or its default: for a
    Lightning app, `launcher.components.lightning_app` says which)."""
    component = COMPONENTS[name]
    block = config.get(name)
    target = block.get("_target_") if isinstance(block, Mapping) else None
    if name == "trainer" and is_lightning_trainer(target):
        target = None
    if target is None and name in APP_DEFAULTS and is_lightning_app(config):
        return APP_DEFAULTS[name]
    if target is None:
        if component.default is None:
            raise ConfigError(f"'{name}' needs a '_target_'", key=f"{name}._target_",
                              hint=f"e.g. '{name}: {{_target_: src.model.MyModel}}'")
        return component.default
    return target


def is_lightning_trainer(target: object) -> bool:
    """Whether a `trainer._target_` names Lightning's Trainer itself (in either package's
    spelling), which the launcher's wrapper builds."""
    return isinstance(target, str) and translate_target(target, None) in LIGHTNING_TRAINERS


def component_class(config: Mapping, name: str, recipe_dir: Path | None = None) -> type:
    """Import the class selected for component `name`; refuse one of the wrong base.
    (Its constructor's arguments are judged while planning, `launcher.plan.checks`.)"""
    component = COMPONENTS[name]
    key = f"{name}._target_"
    target = target_of(config, name)
    cls = locate(target, key=key, recipe_dir=recipe_dir)
    base = locate(component.base, key=key)
    require_subclass(cls, base, key=key, target=target)
    return cls


def check_required_keys(config: Mapping) -> None:
    for key in REQUIRED_KEYS:
        if config.get(key) is None:
            raise ConfigError(f"missing required key '{key}'", key=key,
                              hint=_REQUIRED_HINTS[key])


_REQUIRED_HINTS = {
    "model": "add 'model: {_target_: src.model.MyModel, ...}'",
    "trainer": "add 'trainer: {max_epochs: 10, accelerator: auto}'",
}
