"""Optimizers and learning-rate schedulers, built from what the config states
(`launcher.components.modeling.optimizer_config` reads both spellings).

With several named optimizers, each `params` is one module path or a list of
them; a parameter belongs to an entry when its dotted name is that path or lies
below it. Every trainable parameter must belong to exactly one entry: a silent
leftover would never train, an overlap would be stepped twice. Under manual
optimization an entry may also set how often it updates, accumulation and
clipping (see `launcher.components.modeling.named_steps`, which acts on them).

A model drives named updates as in ESPnet3 by returning, as its loss, an
`OptimizationStep(loss, name)` or a list of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from launcher.components.building import build
from launcher.components.modeling.optimizer_config import (
    OptimizerEntry,
    named_optimizers,
    optimizer_entries,
)
from launcher.errors import ConfigError

# Lightning refuses these Trainer options under manual optimization; what replaces them.
MANUAL_REPLACEMENTS = {"gradient_clip_val": "clip_grad_norm",
                       "accumulate_grad_batches": "accumulate"}


@dataclass
class OptimizationStep:
    """One named update a model asks for: its loss, and the optimizer's name (ESPnet3's)."""

    loss: torch.Tensor
    name: str


def named_steps_of(loss: Any) -> list[OptimizationStep] | None:
    """The named updates a model's loss asks for, or None for a plain loss tensor."""
    if isinstance(loss, OptimizationStep):
        return [loss]
    if isinstance(loss, list | tuple) and loss and all(
            isinstance(step, OptimizationStep) for step in loss):
        return list(loss)
    return None


@dataclass
class OptimizerSpec:
    """One optimizer with its parameters and optional scheduler settings."""

    name: str
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None
    param_names: list[str] = field(default_factory=list)
    every_n_steps: int = 1  # updated on every n-th training batch only
    accumulate: int = 1  # backward calls averaged into one optimizer step
    clip_grad_norm: float | None = None  # max L2 norm of this optimizer's gradients
    clip_grad_value: float | None = None  # max absolute value of each gradient

    def lightning_config(self) -> dict[str, Any]:
        """The dict Lightning's `configure_optimizers` accepts for this optimizer."""
        if self.scheduler is None:
            return {"optimizer": self.optimizer}
        sched = {"scheduler": self.scheduler, "interval": self.interval,
                 "frequency": self.frequency, "name": f"lr/{self.name}"}
        if self.monitor:
            sched["monitor"] = self.monitor
        return {"optimizer": self.optimizer, "lr_scheduler": sched}


def build_optimizers(model: torch.nn.Module, config: Mapping) -> list[OptimizerSpec]:
    """Build every optimizer the config states, with parameters assigned by name."""
    entries = optimizer_entries(config)
    owned = assign_parameters(model, entries)
    by_name = dict(model.named_parameters())
    return [_spec(entry, [by_name[n] for n in names], names)
            for entry, names in zip(entries, owned, strict=True)]


def assign_parameters(model: torch.nn.Module,
                      entries: Sequence[OptimizerEntry]) -> list[list[str]]:
    """Names of the trainable parameters each entry owns; refuse gaps and overlaps."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if len(entries) == 1 and entries[0].params is None:
        return [trainable]
    owned: list[list[str]] = [[] for _ in entries]
    missing = []
    for name in trainable:
        owners = [i for i, e in enumerate(entries) if any(_below(name, s) for s in e.params)]
        if len(owners) > 1:
            first, second = entries[owners[0]], entries[owners[1]]
            raise ConfigError(f"parameter '{name}' is selected by {first.key} and {second.key}",
                              key=f"{second.key}.params",
                              hint="make the 'params' of the optimizers disjoint")
        if not owners:
            missing.append(name)
        else:
            owned[owners[0]].append(name)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        where = entries[0].key.partition("[")[0].partition(".")[0]
        raise ConfigError(
            f"{len(missing)} trainable parameter(s) belong to no optimizer: {shown}",
            key=where, hint="add their module path to one entry's 'params'")
    for entry, names in zip(entries, owned, strict=True):
        if not names:
            raise ConfigError(f"{entry.key} selects no trainable parameter "
                              f"(params: {entry.params})", key=f"{entry.key}.params",
                              hint="use module paths from model.named_parameters()")
    return owned


def _spec(entry: OptimizerEntry, params: list, names: list[str]) -> OptimizerSpec:
    if not isinstance(entry.optim, Mapping) or "_target_" not in entry.optim:
        raise ConfigError("an optimizer needs a '_target_'", key=entry.optim_key,
                          hint="e.g. {_target_: torch.optim.Adam, lr: 0.001}")
    optimizer = build(entry.optim, entry.optim_key, params=params)
    spec = OptimizerSpec(entry.name, optimizer, interval=entry.interval,
                         frequency=entry.frequency, monitor=entry.monitor, param_names=names,
                         every_n_steps=entry.every_n_steps, accumulate=entry.accumulate,
                         clip_grad_norm=entry.clip_grad_norm,
                         clip_grad_value=entry.clip_grad_value)
    if entry.scheduler is not None:
        spec.scheduler = build(entry.scheduler, entry.scheduler_key, optimizer=optimizer)
    return spec


def _below(name: str, selector: str) -> bool:
    return name == selector or name.startswith(selector + ".")


def check_manual_trainer_options(config: Mapping) -> None:
    """With named optimizers Lightning optimizes manually and refuses its own clipping and
    accumulation (at fit time, after the job was queued); say what replaces them, early."""
    if not named_optimizers(config):
        return
    trainer = config.get("trainer") or {}
    for key, replacement in MANUAL_REPLACEMENTS.items():
        value = trainer.get(key)
        if value is None or (key == "gradient_clip_val" and not value) or (
                key == "accumulate_grad_batches" and value == 1):
            continue
        raise ConfigError(f"trainer.{key} does not apply with several optimizers (optims), "
                          "which are optimized manually", key=f"trainer.{key}",
                          hint=f"remove it and set '{replacement}: {value}' in the optims "
                               "entries that need it")
