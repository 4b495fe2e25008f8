"""Where a config states its optimizers, in our spelling or ESPnet3's, read once.

    ours                                     ESPnet3's
    optim: {...}                             optimizer: {...}
    scheduler: {_target_, interval,          scheduler: {...}, scheduler_interval,
                monitor, frequency}          scheduler_monitor (val_scheduler_criterion)
    optims: [{name, params, optim,           optimizers: {<name>: {params, optimizer,
              every_n_steps, accumulate,       step_every_n_iters, accum_grad_steps,
              clip_grad_norm, scheduler}]      gradient_clip_val, gradient_clip_algorithm}}
                                             schedulers: {<name>: {scheduler, interval,
                                                                   monitor}}

Either spelling may be used, not both for one thing: two places that say the same
thing would leave one silently ignored. As in ESPnet3, the single optimizer's
scheduler steps every step unless told otherwise (one that monitors a metric, such
as ReduceLROnPlateau, every epoch, when the metric exists); a named optimizer's
scheduler steps every epoch. ESPnet3 selects parameters by name below the
LightningModule, so a leading `model.` in `params` is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from launcher.errors import ConfigError

SCHEDULER_KEYS = ("interval", "frequency", "monitor")
INTERVALS = ("step", "epoch")
ENTRY_KEYS = ("name", "params", "optim", "scheduler", "every_n_steps", "accumulate",
              "clip_grad_norm")
ESPNET3_ENTRY = ("optimizer", "params", "step_every_n_iters", "accum_grad_steps",
                 "gradient_clip_val", "gradient_clip_algorithm")
ESPNET3_SCHEDULER_ENTRY = ("scheduler", "interval", "monitor")
# The top-level keys of the single optimizer's scheduler settings, by ESPnet3's names.
TOP_LEVEL_SCHEDULER = {"scheduler_interval": "interval", "scheduler_monitor": "monitor",
                       "val_scheduler_criterion": "monitor"}


@dataclass
class OptimizerEntry:
    """One optimizer as the config states it, with where each part was written."""

    name: str
    key: str  # its entry, for errors about its settings
    optim: Any
    optim_key: str
    params: list[str] | None = None  # None: every trainable parameter
    scheduler: dict | None = None  # the scheduler's own arguments
    scheduler_key: str = "scheduler"
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None
    every_n_steps: int = 1
    accumulate: int = 1
    clip_grad_norm: float | None = None
    clip_grad_value: float | None = None


def named_optimizers(config: Mapping) -> bool:
    """Whether the config names several optimizers (manual optimization)."""
    return config.get("optims") is not None or config.get("optimizers") is not None


def optimizer_entries(config: Mapping) -> list[OptimizerEntry]:
    """Every optimizer the config states, in order; refuses a thing said twice."""
    _one_of(config, "optim", "optimizer", "one optimizer")
    _one_of(config, "optims", "optimizers", "named optimizers")
    single = config.get("optim") is not None or config.get("optimizer") is not None
    if single and named_optimizers(config):
        given = "optim" if config.get("optim") is not None else "optimizer"
        raise ConfigError(f"set either '{given}' (one optimizer) or named optimizers "
                          "(optims / optimizers), not both", key=given)
    if config.get("optimizers") is not None:
        _no_top_level_scheduler_settings(config)
        return _espnet3_entries(config)
    if config.get("optims") is not None:
        _no_top_level_scheduler_settings(config)
        return _our_entries(config)
    if not single:
        raise ConfigError("no optimizer configured", key="optim",
                          hint="add 'optim: {_target_: torch.optim.Adam, lr: 0.001}' "
                               "(ESPnet3's 'optimizer:' works too)")
    return [_single_entry(config)]


def _single_entry(config: Mapping) -> OptimizerEntry:
    key = "optim" if config.get("optim") is not None else "optimizer"
    entry = OptimizerEntry(name="optim", key=key, optim=config[key], optim_key=key)
    block = config.get("scheduler")
    top = {name: config.get(name) for name in TOP_LEVEL_SCHEDULER
           if config.get(name) is not None}
    if block is None:
        if top:
            name = next(iter(top))
            raise ConfigError(f"'{name}' is set but there is no scheduler", key=name,
                              hint="add 'scheduler: {_target_: ...}' or remove it")
        return entry
    block = _settings_block(block, "scheduler")
    for name, value in top.items():
        setting = TOP_LEVEL_SCHEDULER[name]
        if block.get(setting) is not None and block[setting] != value:
            raise ConfigError(
                f"'{name}: {value}' and 'scheduler.{setting}: {block[setting]}' say the "
                "same thing differently", key=name, hint="keep one of them")
        block[setting] = value
    entry.scheduler_key = "scheduler"
    _take_scheduler(entry, block, default_interval=None)
    return entry


def _our_entries(config: Mapping) -> list[OptimizerEntry]:
    entries = config["optims"]
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ConfigError("'optims' must be a list of optimizer entries", key="optims",
                          hint="e.g. [{name: enc, params: encoder, optim: {...}}]")
    schedulers = config.get("schedulers")
    if schedulers is not None and (isinstance(schedulers, Mapping)
                                   or len(schedulers) != len(entries)):
        raise ConfigError(f"'schedulers' has {len(schedulers)} entries but 'optims' has "
                          f"{len(entries)}", key="schedulers",
                          hint="give one scheduler entry per optimizer, or put 'scheduler' "
                               "inside each optims entry")
    if not entries:
        raise ConfigError("'optims' is empty", key="optims",
                          hint="list at least one optimizer, or use 'optim' for one")
    found = []
    for i, raw in enumerate(entries):
        key = f"optims[{i}]"
        _check_keys(raw, ENTRY_KEYS, key, "optims")
        entry = OptimizerEntry(name=str(raw.get("name", f"optim{i}")), key=key,
                               optim=raw.get("optim"), optim_key=f"{key}.optim",
                               params=_selectors(raw.get("params"), f"{key}.params"))
        _take_updates(entry, raw.get("every_n_steps", 1), raw.get("accumulate", 1),
                      raw.get("clip_grad_norm"), names=("every_n_steps", "accumulate",
                                                        "clip_grad_norm"))
        block, entry.scheduler_key = raw.get("scheduler"), f"{key}.scheduler"
        if schedulers is not None:
            block = schedulers[i].get("scheduler", schedulers[i])
            entry.scheduler_key = f"schedulers[{i}]"
        if block is not None:
            _take_scheduler(entry, _settings_block(block, entry.scheduler_key), "epoch")
        found.append(entry)
    if len({e.name for e in found}) != len(found):
        raise ConfigError("two optims entries share one name", key="optims",
                          hint="give each entry a unique 'name'")
    return found


def _espnet3_entries(config: Mapping) -> list[OptimizerEntry]:
    optimizers = _mapping(config["optimizers"], "optimizers", "{gen: {optimizer: {...}, "
                          "params: generator}, ...}")
    schedulers = _mapping(config.get("schedulers") or {}, "schedulers",
                          "{gen: {scheduler: {...}, interval: epoch}, ...}")
    if not optimizers:
        raise ConfigError("'optimizers' is empty", key="optimizers",
                          hint="name at least one optimizer, or use 'optimizer' for one")
    for name in schedulers:
        if name not in optimizers:
            raise ConfigError(f"scheduler '{name}' has no optimizer of that name "
                              f"(optimizers: {', '.join(map(str, optimizers))})",
                              key=f"schedulers.{name}",
                              hint="name each scheduler after the optimizer it drives")
    found = []
    for name, raw in optimizers.items():
        key = f"optimizers.{name}"
        _check_keys(raw, ESPNET3_ENTRY, key, "optimizers")
        if raw.get("optimizer") is None:
            raise ConfigError(f"optimizer '{name}' has no 'optimizer' block",
                              key=f"{key}.optimizer",
                              hint="e.g. 'optimizer: {_target_: torch.optim.Adam, lr: 0.001}'")
        entry = OptimizerEntry(name=str(name), key=key, optim=raw["optimizer"],
                               optim_key=f"{key}.optimizer",
                               params=_selectors(raw.get("params"), f"{key}.params",
                                                 espnet3=True))
        _take_updates(entry, raw.get("step_every_n_iters", 1), raw.get("accum_grad_steps", 1),
                      raw.get("gradient_clip_val"),
                      names=("step_every_n_iters", "accum_grad_steps", "gradient_clip_val"),
                      algorithm=raw.get("gradient_clip_algorithm", "norm"))
        if name in schedulers:
            _espnet3_scheduler(entry, schedulers[name], f"schedulers.{name}")
        found.append(entry)
    return found


def _espnet3_scheduler(entry: OptimizerEntry, raw: Any, key: str) -> None:
    _check_keys(raw, ESPNET3_SCHEDULER_ENTRY, key, "schedulers")
    if raw.get("scheduler") is None:
        raise ConfigError(f"scheduler '{entry.name}' has no 'scheduler' block",
                          key=f"{key}.scheduler", hint="e.g. 'scheduler: {_target_: "
                                                        "torch.optim.lr_scheduler.StepLR, ...}'")
    block = dict(_settings_block(raw["scheduler"], f"{key}.scheduler"))
    for setting in ("interval", "monitor"):
        if raw.get(setting) is not None:
            block[setting] = raw[setting]
    entry.scheduler_key = f"{key}.scheduler"
    _take_scheduler(entry, block, "epoch")


def _take_scheduler(entry: OptimizerEntry, block: dict, default_interval: str | None) -> None:
    """Split the launcher's settings from the scheduler's own arguments; check them."""
    settings = {k: block.pop(k) for k in SCHEDULER_KEYS if k in block}
    entry.monitor = settings.get("monitor")
    # A monitored metric exists once per validation: such a scheduler steps per epoch.
    default = default_interval or ("epoch" if entry.monitor is not None else "step")
    entry.interval = str(settings.get("interval") or default)
    if entry.interval not in INTERVALS:
        raise ConfigError(f"interval '{entry.interval}' is not one of {INTERVALS}",
                          key=_setting_key(entry.scheduler_key, "interval"))
    frequency = settings.get("frequency", 1)
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ConfigError(f"frequency must be an integer >= 1, not {frequency!r}",
                          key=_setting_key(entry.scheduler_key, "frequency"))
    entry.frequency = frequency
    entry.scheduler = block


def _take_updates(entry: OptimizerEntry, every: Any, accumulate: Any, clip: Any,
                  names: tuple[str, str, str], algorithm: Any = "norm") -> None:
    for name, value in zip(names[:2], (every, accumulate), strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, not {value!r}",
                              key=f"{entry.key}.{name}", hint=f"e.g. '{name}: 2'")
    entry.every_n_steps, entry.accumulate = every, accumulate
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float)
                             or clip <= 0):
        raise ConfigError(f"{names[2]} must be a number > 0, not {clip!r}",
                          key=f"{entry.key}.{names[2]}",
                          hint=f"e.g. '{names[2]}: 1.0', or leave it out for no clipping")
    if algorithm not in ("norm", "value"):
        raise ConfigError(f"gradient_clip_algorithm must be norm or value, not {algorithm!r}",
                          key=f"{entry.key}.gradient_clip_algorithm")
    if clip is not None:
        setattr(entry, f"clip_grad_{algorithm}", float(clip))


def _selectors(params: Any, key: str, espnet3: bool = False) -> list[str]:
    if isinstance(params, str):
        params = [params]
    if not (isinstance(params, Sequence) and params and all(isinstance(p, str) for p in params)):
        raise ConfigError("each named optimizer needs 'params': a module path or a list of "
                          "them", key=key, hint="e.g. 'params: encoder'")
    if espnet3:  # ESPnet3 names parameters below the LightningModule: model.encoder...
        params = [p.removeprefix("model.") for p in params]
    return list(params)


def _settings_block(block: Any, key: str) -> dict:
    if not isinstance(block, Mapping) or "_target_" not in block:
        raise ConfigError("a scheduler needs a '_target_'", key=key,
                          hint="e.g. {_target_: torch.optim.lr_scheduler.StepLR, step_size: 10}")
    return dict(block)


def _setting_key(scheduler_key: str, setting: str) -> str:
    if scheduler_key.startswith("schedulers.") and scheduler_key.endswith(".scheduler"):
        return f"{scheduler_key.removesuffix('.scheduler')}.{setting}"
    return f"{scheduler_key}.{setting}"


def _check_keys(entry: Any, known: tuple[str, ...], key: str, where: str) -> None:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{key} is {entry!r}, not a block of settings", key=key,
                          hint=f"each entry of '{where}' is a block such as "
                               "{params: encoder, ...}")
    for name in entry:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(name), known, 1)
            raise ConfigError(f"unknown {where} setting '{name}' (known: {', '.join(known)})",
                              key=f"{key}.{name}",
                              hint=f"did you mean '{close[0]}'?" if close else "remove it")


def _mapping(node: Any, key: str, example: str) -> Mapping:
    if not isinstance(node, Mapping):
        raise ConfigError(f"'{key}' must map names to entries, not {type(node).__name__}",
                          key=key, hint=f"e.g. {example}")
    return node


def _one_of(config: Mapping, ours: str, theirs: str, what: str) -> None:
    if config.get(ours) is not None and config.get(theirs) is not None:
        raise ConfigError(f"'{ours}' and '{theirs}' both configure {what}", key=theirs,
                          hint=f"keep one of them ('{theirs}' is ESPnet3's name for "
                               f"'{ours}')")


def _no_top_level_scheduler_settings(config: Mapping) -> None:
    for name in TOP_LEVEL_SCHEDULER:
        if config.get(name) is not None:
            raise ConfigError(f"'{name}' applies to the single optimizer's scheduler only",
                              key=name, hint="set 'interval'/'monitor' in each named "
                                             "optimizer's scheduler instead")

