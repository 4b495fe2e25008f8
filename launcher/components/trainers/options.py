"""The `trainer:` block's own spellings: strategies, loggers and profilers by name.

    strategy:  auto | ddp | fsdp | fsdp2 | {name: ddp|fsdp|fsdp2, <options>} | {_target_: ...}
    logger:    csv (default) | tensorboard | mlflow | wandb | [csv, mlflow] | false |
               {_target_: ...}   (trackers continue across resumes: `trackers`)
    profiler:  simple | advanced | pytorch | {_target_: ...}
    callbacks: [{_target_: ...}, ...]

Each is checked before a launch (`check_*`) and built in the job (`build_*`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.components.callbacks.criteria import is_sequence
from launcher.errors import ConfigError


# ---- builders ----------------------------------------------------------------
def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")


PROFILERS = ("simple", "advanced", "pytorch")


STRATEGY_NAMES = ("ddp", "fsdp", "fsdp2")  # fsdp2: FSDP2 (`sharded`)


def check_strategy_spec(spec: Any, accelerator: Any = None) -> None:
    """A strategy Lightning knows by name, a {name: ddp|fsdp|fsdp2, ...} block or a
    _target_; not FSDP on CPUs, which Lightning refuses only once the job runs (FSDP2
    runs on CPUs, over gloo)."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    if isinstance(name, str) and name.startswith("fsdp") and name != "fsdp2" \
            and accelerator == "cpu":
        raise ConfigError("FSDP shards over GPUs, and this run has none",
                          key="trainer.strategy",
                          hint="set resources.gpus_per_node, or use ddp on CPUs: trainer=ddp")
    if spec is None or (isinstance(spec, Mapping) and "_target_" in spec):
        return
    if isinstance(spec, Mapping):
        if spec.get("name") not in STRATEGY_NAMES:
            raise ConfigError(f"strategy name {spec.get('name')!r} is not ddp, fsdp or fsdp2",
                              key="trainer.strategy.name",
                              hint="use a name string such as 'ddp_spawn' or a "
                                   "{_target_: ...} block")
        check_strategy_options(spec)
        return
    known = strategy_names()
    if not isinstance(spec, str) or spec not in known:
        import difflib

        close = difflib.get_close_matches(str(spec), known, 3)
        raise ConfigError(f"unknown strategy {spec!r}", key="trainer.strategy",
                          hint=f"did you mean {' or '.join(map(repr, close))}?" if close
                          else f"Lightning knows: {', '.join(known)}")


def check_strategy_options(spec: Mapping) -> None:
    """The block's options are those of the strategy it names (planning refuses a typo,
    which the job would only meet once queued)."""
    import inspect

    from launcher.components.trainers.sharded import strategy_class

    cls, wrapped = strategy_class(spec["name"])
    accepted = {p for c in (*cls.__mro__, *wrapped) if "__init__" in vars(c)
                for p in inspect.signature(c.__init__).parameters} - {"self", "args", "kwargs"}
    accepted |= {"timeout_s"}
    for key in spec:
        if key != "name" and key not in accepted:
            import difflib

            close = difflib.get_close_matches(str(key), sorted(accepted), 1)
            raise ConfigError(f"'{key}' is not an option of {cls.__name__}",
                              key=f"trainer.strategy.{key}",
                              hint=f"did you mean '{close[0]}'?" if close else
                              f"its options: {', '.join(sorted(accepted))}")
    state_dict_type = spec.get("state_dict_type", "full")
    if spec["name"] == "fsdp" and state_dict_type not in ("full", "sharded"):
        raise ConfigError(f"state_dict_type {state_dict_type!r} is not full or sharded",
                          key="trainer.strategy.state_dict_type",
                          hint="sharded: each rank saves its shard (a checkpoint folder)")


def sharded_checkpoints(spec: Any) -> bool:
    """Whether a strategy writes each checkpoint as a folder of shards: FSDP with
    `state_dict_type: sharded`, FSDP2 unless `save_distributed_checkpoint: false`."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    options = spec if isinstance(spec, Mapping) else {}
    if name == "fsdp":
        return options.get("state_dict_type", "full") == "sharded"
    return name == "fsdp2" and bool(options.get("save_distributed_checkpoint", True))


FSDP2_PRECISIONS = ("32-true", "32", "bf16-mixed", "bf16-true", "16-true")  # Lightning's


def check_strategy_precision(spec: Any, precision: Any) -> None:
    """FSDP2 (Lightning's ModelParallelStrategy) takes fewer precisions than the others;
    Lightning says so only once the job runs."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    if name == "fsdp2" and precision is not None and str(precision) not in FSDP2_PRECISIONS:
        raise ConfigError(f"FSDP2 does not train in precision {precision!r}",
                          key="trainer.precision",
                          hint=f"use one of {', '.join(FSDP2_PRECISIONS)}")


def strategy_names() -> list[str]:
    from pytorch_lightning.strategies import StrategyRegistry

    return sorted({"auto", *STRATEGY_NAMES, *StrategyRegistry.available_strategies()})


def check_logger_spec(spec: Any) -> None:
    """Known names or `_target_` blocks, their tracker packages installed (this runs
    while planning: a missing package would otherwise fail the job once queued)."""
    from launcher.components.trainers.trackers import check_tracker

    if spec in (None, False, True):
        return
    for i, item in enumerate(as_list(spec)):
        key = "trainer.logger" if not is_sequence(spec) else f"trainer.logger[{i}]"
        if _built(item, "pytorch_lightning.loggers", "Logger"):
            continue  # built by a System (a Lightning app's `logger:` blocks)
        if isinstance(item, Mapping):
            if "_target_" not in item:
                raise ConfigError("a logger block needs a '_target_'", key=key,
                                  hint="e.g. {_target_: pytorch_lightning.loggers.CSVLogger, "
                                       "save_dir: ...}")
            check_tracker(item, key)
        elif item not in LOGGERS:
            raise ConfigError(f"unknown logger {item!r}", key=key,
                              hint=f"use {', '.join(LOGGERS)}, a list of them, false, or a "
                                   "{_target_: ...} block")
        else:
            check_tracker(item, key)


def check_profiler_spec(spec: Any) -> None:
    if spec in (None, False) or (isinstance(spec, Mapping) and "_target_" in spec):
        return
    if spec not in PROFILERS:
        raise ConfigError(f"unknown profiler {spec!r}", key="trainer.profiler",
                          hint=f"use {', '.join(PROFILERS)} or a {{_target_: ...}} block")


def check_callbacks_spec(specs: Any) -> None:
    """A list of `_target_` blocks (or, from a System, of callbacks already built)."""
    if not is_sequence(specs) or not all(
            (isinstance(s, Mapping) and "_target_" in s)
            or _built(s, "pytorch_lightning.callbacks", "Callback") for s in specs):
        raise ConfigError("callbacks must be a list of {_target_: ...} blocks",
                          key="trainer.callbacks",
                          hint="e.g. callbacks: [{_target_: "
                               "pytorch_lightning.callbacks.LearningRateMonitor}]")


def build_strategy(spec: Any) -> Any:
    from hydra.utils import instantiate

    if spec is None or (isinstance(spec, str) and spec not in STRATEGY_NAMES):
        return spec or "auto"
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    if "_target_" in spec:
        return instantiate(spec)
    name = spec.pop("name", None)
    if name not in STRATEGY_NAMES:
        raise ConfigError(f"strategy name '{name}' is not ddp, fsdp or fsdp2",
                          key="trainer.strategy.name",
                          hint="use a string such as 'ddp_spawn' or a {_target_: ...} block")
    from launcher.components.trainers.sharded import strategy_class

    return strategy_class(name)[0](**_timeouts(spec))


def _timeouts(options: dict) -> dict:
    """`timeout_s: 600` reads better in YAML than a timedelta."""
    if "timeout_s" in options:
        from datetime import timedelta

        options["timeout"] = timedelta(seconds=float(options.pop("timeout_s")))
    return options


def build_loggers(spec: Any, exp_dir: Path) -> Any:
    """The loggers; trackers (TensorBoard, MLflow, W&B) continue the tracker run of the
    run folder's earlier attempts (`launcher.components.trainers.trackers`)."""
    from hydra.utils import instantiate

    from launcher.components.trainers.trackers import Trackers

    if spec in (None, False):
        return False
    items = spec if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]
    loggers, trackers = [], Trackers(exp_dir)
    for item in items:
        if _built(item, "pytorch_lightning.loggers", "Logger"):
            loggers.append(item)
        elif (tracker := trackers.build(item)) is not None:
            loggers.append(tracker)
        elif isinstance(item, Mapping):
            loggers.append(instantiate(item))
        elif item == "csv":
            from launcher.components.trainers.csv_logger import ResumableCSVLogger

            loggers.append(ResumableCSVLogger(save_dir=str(exp_dir), name="", version=""))
        else:
            raise ConfigError(f"unknown logger '{item}'", key="trainer.logger",
                              hint=f"use {', '.join(LOGGERS)}, a list of them, false, "
                                   "or a {_target_: ...} block")
    trackers.save()
    return loggers


def build_profiler(spec: Any, exp_dir: Path) -> Any:
    from hydra.utils import instantiate

    if spec in (None, False):
        return None
    if isinstance(spec, Mapping):
        return instantiate(spec)
    if spec in ("simple", "advanced", "pytorch"):
        return spec_profiler(spec, exp_dir)
    raise ConfigError(f"unknown profiler '{spec}'", key="trainer.profiler",
                      hint="use simple, advanced, pytorch or a {_target_: ...} block")


def spec_profiler(name: str, exp_dir: Path) -> Any:
    from pytorch_lightning import profilers

    cls = {"simple": profilers.SimpleProfiler, "advanced": profilers.AdvancedProfiler,
           "pytorch": profilers.PyTorchProfiler}[name]
    return cls(dirpath=str(exp_dir), filename="profile")


def build_callbacks(specs: Any) -> list:
    from launcher.components.building import build

    if not specs:
        return []
    check_callbacks_spec(specs)
    return [s if not isinstance(s, Mapping) else build(s, f"trainer.callbacks[{i}]")
            for i, s in enumerate(specs)]


def _built(item: Any, module: str, name: str) -> bool:
    """Whether `item` is already a Lightning object of that kind (a YAML file cannot give
    one: a System hands them over, built from blocks of its own)."""
    import importlib

    return isinstance(item, getattr(importlib.import_module(module), name))
