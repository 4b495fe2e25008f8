"""Optimizers and learning-rate schedulers from config.

One optimizer:    `optim: {_target_: torch.optim.Adam, lr: 1e-3}` and an optional
                  `scheduler: {_target_: ..., interval: step}`.
Several:          `optims: [{name: enc, params: encoder, optim: {...}, scheduler: {...}}, ...]`
                  (or a parallel `schedulers:` list). `params` is one module path
                  or a list of them; a parameter belongs to an entry when its
                  dotted name is that path or lies below it. Every trainable
                  parameter must belong to exactly one entry: a silent leftover
                  would never train, an overlap would be stepped twice.
                  Under manual optimization an entry may also set
                  `every_n_steps`, `accumulate` and `clip_grad_norm` (see
                  `launcher.components.modeling.named_steps`, which acts on them).
`interval` (step or epoch), `frequency` and `monitor` are read by the launcher
and not passed to the scheduler class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from launcher.components.building import build
from launcher.errors import ConfigError

SCHEDULER_KEYS = ("interval", "frequency", "monitor")
INTERVALS = ("step", "epoch")
# What an `optims` entry may say; anything else is a typo that would silently do nothing.
ENTRY_KEYS = ("name", "params", "optim", "scheduler", "every_n_steps", "accumulate",
              "clip_grad_norm")
# Lightning refuses these Trainer options under manual optimization; what replaces them.
MANUAL_REPLACEMENTS = {"gradient_clip_val": "clip_grad_norm",
                       "accumulate_grad_batches": "accumulate"}


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
    """Build every optimizer the config asks for, with parameters assigned by name."""
    has_one, has_many = config.get("optim") is not None, config.get("optims") is not None
    if has_one and has_many:
        raise ConfigError("set either 'optim' (one optimizer) or 'optims' (several), not both",
                          key="optims")
    if has_many:
        return _build_many(model, config)
    if not has_one:
        raise ConfigError("no optimizer configured", key="optim",
                          hint="add 'optim: {_target_: torch.optim.Adam, lr: 0.001}'")
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    optimizer = _instantiate_optimizer(config["optim"], params, "optim")
    return [_with_scheduler(OptimizerSpec("optim", optimizer, param_names=names),
                            config.get("scheduler"), "scheduler")]


def assign_parameters(model: torch.nn.Module, entries: Sequence[Mapping]) -> list[list[str]]:
    """Names of the trainable parameters each `optims` entry owns; refuse gaps and overlaps."""
    for i, entry in enumerate(entries):
        _check_entry_keys(entry, i)
    selectors = [_selectors(entry, i) for i, entry in enumerate(entries)]
    owned: list[list[str]] = [[] for _ in entries]
    missing = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        owners = [i for i, sel in enumerate(selectors) if any(_below(name, s) for s in sel)]
        if len(owners) > 1:
            raise ConfigError(
                f"parameter '{name}' is selected by optims[{owners[0]}] and optims[{owners[1]}]",
                key=f"optims[{owners[1]}].params",
                hint="make the 'params' of the optimizers disjoint")
        if not owners:
            missing.append(name)
        else:
            owned[owners[0]].append(name)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ConfigError(
            f"{len(missing)} trainable parameter(s) belong to no optimizer: {shown}",
            key="optims", hint="add their module path to one entry's 'params'")
    for i, names in enumerate(owned):
        if not names:
            raise ConfigError(f"optims[{i}] selects no trainable parameter "
                              f"(params: {selectors[i]})", key=f"optims[{i}].params",
                              hint="use module paths from model.named_parameters()")
    return owned


def _build_many(model: torch.nn.Module, config: Mapping) -> list[OptimizerSpec]:
    entries = list(config["optims"])
    schedulers = config.get("schedulers")
    if schedulers is not None and len(schedulers) != len(entries):
        raise ConfigError(f"'schedulers' has {len(schedulers)} entries but 'optims' has "
                          f"{len(entries)}", key="schedulers",
                          hint="give one scheduler entry per optimizer, or put 'scheduler' "
                               "inside each optims entry")
    owned = assign_parameters(model, entries)
    by_name = dict(model.named_parameters())
    specs = []
    for i, (entry, names) in enumerate(zip(entries, owned, strict=True)):
        name = str(entry.get("name", f"optim{i}"))
        optimizer = _instantiate_optimizer(entry.get("optim"), [by_name[n] for n in names],
                                           f"optims[{i}].optim")
        sched = entry.get("scheduler")
        if schedulers is not None:
            sched = schedulers[i].get("scheduler", schedulers[i])
        spec = OptimizerSpec(name, optimizer, param_names=names, **update_settings(entry, i))
        specs.append(_with_scheduler(spec, sched, f"optims[{i}].scheduler"))
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError("two optims entries share one name", key="optims",
                          hint="give each entry a unique 'name'")
    return specs


def check_manual_trainer_options(config: Mapping) -> None:
    """With `optims` Lightning optimizes manually and refuses its own clipping and
    accumulation (at fit time, after the job was queued); say what replaces them, early."""
    if config.get("optims") is None:
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


def update_settings(entry: Mapping, index: int) -> dict[str, Any]:
    """`every_n_steps`, `accumulate` and `clip_grad_norm` of one entry, checked."""
    settings: dict[str, Any] = {}
    for key in ("every_n_steps", "accumulate"):
        value = entry.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be an integer >= 1, not {value!r}",
                              key=f"optims[{index}].{key}", hint=f"e.g. '{key}: 2'")
        settings[key] = value
    clip = entry.get("clip_grad_norm")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float)
                             or clip <= 0):
        raise ConfigError(f"clip_grad_norm must be a number > 0, not {clip!r}",
                          key=f"optims[{index}].clip_grad_norm",
                          hint="e.g. 'clip_grad_norm: 1.0', or leave it out for no clipping")
    settings["clip_grad_norm"] = None if clip is None else float(clip)
    return settings


def _check_entry_keys(entry: Any, index: int) -> None:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"optims[{index}] is {entry!r}, not a block of settings",
                          key=f"optims[{index}]",
                          hint="e.g. {name: encoder, params: encoder, optim: {...}}")
    for key in entry:
        if key not in ENTRY_KEYS:
            import difflib

            close = difflib.get_close_matches(str(key), ENTRY_KEYS, 1)
            raise ConfigError(f"unknown optims setting '{key}' (known: {', '.join(ENTRY_KEYS)})",
                              key=f"optims[{index}].{key}",
                              hint=f"did you mean '{close[0]}'?" if close else "remove it")
    update_settings(entry, index)


def _selectors(entry: Mapping, index: int) -> list[str]:
    params = entry.get("params") if isinstance(entry, Mapping) else None
    if isinstance(params, str):
        return [params]
    if isinstance(params, Sequence) and params and all(isinstance(p, str) for p in params):
        return list(params)
    raise ConfigError("each optims entry needs 'params': a module path or a list of them",
                      key=f"optims[{index}].params", hint="e.g. 'params: encoder'")


def _below(name: str, selector: str) -> bool:
    return name == selector or name.startswith(selector + ".")


def _instantiate_optimizer(cfg: Any, params: list, key: str) -> torch.optim.Optimizer:
    if not isinstance(cfg, Mapping) or "_target_" not in cfg:
        raise ConfigError("an optimizer needs a '_target_'", key=key,
                          hint="e.g. {_target_: torch.optim.Adam, lr: 0.001}")
    return build(cfg, key, params=params)


def _with_scheduler(spec: OptimizerSpec, cfg: Any, key: str) -> OptimizerSpec:
    if cfg is None:
        return spec
    cfg = dict(cfg)
    spec.interval = str(cfg.pop("interval", "epoch"))
    spec.frequency = int(cfg.pop("frequency", 1))
    spec.monitor = cfg.pop("monitor", None)
    if spec.interval not in INTERVALS:
        raise ConfigError(f"interval '{spec.interval}' is not one of {INTERVALS}",
                          key=f"{key}.interval")
    spec.scheduler = build(cfg, key, optimizer=spec.optimizer)
    return spec
