"""The shared Trainer wrapper: the `trainer:` config block becomes a Lightning Trainer.

Keys are those of `pytorch_lightning.Trainer`, plus a few the wrapper
translates so that a YAML file can say them:

    strategy:  auto | ddp | fsdp | {name: ddp|fsdp, <options>} | {_target_: ...}
    logger:    csv (default) | tensorboard | [csv, tensorboard] | false | {_target_: ...}
    profiler:  simple | advanced | pytorch | {_target_: ...}
    callbacks: [{_target_: ...}, ...]
    average_checkpoints: true   average each criterion's top-k into one model file
    progress_interval_s: 30     seconds between progress lines when there is no bar
    checkpoint_every_n_steps: / checkpoint_every_min:   periodic checkpoints as well
    keep_periodic_checkpoints: 2

Checkpoints go to `<exp_dir>/checkpoints`: the best `top_k` for each
`[metric, top_k, mode]` in `best_model_criterion`, and always `last.ckpt`.
A recipe's own Trainer subclasses this one and overrides `extra_callbacks`
or `check_options`; the config selects it with `trainer._target_`.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.criteria import is_sequence, metric_slug, parse_criteria
from launcher.errors import ConfigError

WRAPPER_KEYS = ("_target_", "strategy", "logger", "profiler", "callbacks",
                "average_checkpoints", "progress_interval_s", "checkpoint_every_n_steps",
                "checkpoint_every_min", "keep_periodic_checkpoints")
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


class ESPnet3LightningTrainer:
    def __init__(self, model: Any = None, exp_dir: str | Path | None = None,
                 config: Mapping | None = None,
                 best_model_criterion: Sequence | None = None) -> None:
        import pytorch_lightning as pl

        self.model = model
        self.exp_dir = Path(exp_dir if exp_dir is not None else ".")
        self.config = dict(config or {})
        self.check_options(self.config)
        self.criteria = parse_criteria(best_model_criterion)
        options = {k: v for k, v in self.config.items() if k not in WRAPPER_KEYS}
        # A bar redrawn with carriage returns is unreadable in a log file.
        options.setdefault("enable_progress_bar", sys.stdout.isatty())
        self.checkpoint_callbacks = checkpoint_callbacks(
            self.exp_dir, self.criteria, run_duties(options, self.config, self.exp_dir))
        options["plugins"] = [*as_list(options.get("plugins")), *cluster_plugins(options),
                              *checkpoint_io_plugins(options)]
        # Our dataloaders shard batches across ranks themselves (exactly resumable).
        options.setdefault("use_distributed_sampler", False)
        self.trainer = pl.Trainer(
            default_root_dir=str(self.exp_dir),
            strategy=build_strategy(self.config.get("strategy", "auto")),
            logger=build_loggers(self.config.get("logger", "csv"), self.exp_dir),
            profiler=build_profiler(self.config.get("profiler"), self.exp_dir),
            callbacks=[*build_callbacks(self.config.get("callbacks")),
                       *self.checkpoint_callbacks, *self.resilience_callbacks(),
                       *self.extra_callbacks()],
            **options,
        )

    def resilience_callbacks(self) -> list:
        """Periodic checkpoints, when configured (preemption is one of the run hooks)."""
        from launcher.checkpointing import periodic_checkpoint

        steps = self.config.get("checkpoint_every_n_steps")
        minutes = self.config.get("checkpoint_every_min")
        if not (steps or minutes):
            return []
        return [periodic_checkpoint(self.exp_dir / CHECKPOINT_DIR, steps, minutes,
                                    int(self.config.get("keep_periodic_checkpoints", 2)))]

    # ---- hooks for a recipe's own Trainer -----------------------------------
    def extra_callbacks(self) -> list:
        """Callbacks a subclass adds (cluster monitors, throughput loggers, ...)."""
        return []

    @classmethod
    def check_options(cls, config: Mapping) -> None:
        """Refuse options Lightning does not know; subclasses add their own checks."""
        import pytorch_lightning as pl

        accepted = set(inspect.signature(pl.Trainer).parameters) | set(WRAPPER_KEYS)
        for key in config:
            if key not in accepted:
                import difflib

                close = difflib.get_close_matches(key, sorted(accepted), 1)
                raise ConfigError(
                    f"'{key}' is not an option of pytorch_lightning.Trainer",
                    key=f"trainer.{key}",
                    hint=f"did you mean '{close[0]}'?" if close else "remove it")
        if "default_root_dir" in config:
            raise ConfigError("the run directory is chosen by the launcher",
                              key="trainer.default_root_dir", hint="remove it")
        check_strategy_spec(config.get("strategy"))
        check_logger_spec(config.get("logger", "csv"))
        check_profiler_spec(config.get("profiler"))
        if config.get("callbacks"):
            check_callbacks_spec(config["callbacks"])

    # ---- running ------------------------------------------------------------
    def fit(self, *args: Any, **kwargs: Any) -> None:
        self.trainer.fit(self.model, *args, **kwargs)
        if self.config.get("average_checkpoints") and self.trainer.is_global_zero:
            average_best_checkpoints(self.checkpoint_callbacks, self.exp_dir)

    def validate(self, *args: Any, **kwargs: Any) -> list[dict]:
        return self.trainer.validate(self.model, *args, **kwargs)

    def test(self, *args: Any, **kwargs: Any) -> list[dict]:
        return self.trainer.test(self.model, *args, **kwargs)


# ---- builders ----------------------------------------------------------------
def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def run_duties(options: Mapping, config: Mapping, exp_dir: Path) -> tuple:
    """Progress (for `launch status`, and plain log lines wherever there is no bar),
    then acting on preemption signals; called at every step by `RunHooks`."""
    from launcher.preemption import PreemptionWatch
    from launcher.progress import ProgressLog

    progress = ProgressLog(str(exp_dir), float(config.get("progress_interval_s", 30)),
                           lines=not options.get("enable_progress_bar"))
    return progress, PreemptionWatch(exp_dir)


def checkpoint_io_plugins(options: Mapping) -> list:
    """Atomic checkpoint writes, unless the config brings its own CheckpointIO."""
    from lightning_fabric.plugins import CheckpointIO

    from launcher.checkpointing import AtomicCheckpointIO

    if any(isinstance(p, CheckpointIO) for p in as_list(options.get("plugins"))):
        return []
    return [AtomicCheckpointIO()]


def cluster_plugins(options: Mapping) -> list:
    """Inside a launcher job, ranks come from the processes the launcher started."""
    from pytorch_lightning.plugins.environments import ClusterEnvironment

    from launcher.cluster_env import SubmititEnvironment
    from launcher.ranks import under_submitit

    if not under_submitit() or any(isinstance(p, ClusterEnvironment)
                                   for p in as_list(options.get("plugins"))):
        return []
    return [SubmititEnvironment()]


def checkpoint_callbacks(exp_dir: Path, criteria: list[tuple[str, int, str]],
                         duties: tuple = ()) -> list:
    """`last.ckpt` (its callback also runs the per-step `duties`) and each criterion's best."""
    from launcher.criterion_checkpoint import CriterionCheckpoint
    from launcher.run_hooks import RunHooks

    directory = str(exp_dir / CHECKPOINT_DIR)
    # No "-v1" copies: a resumed run overwrites its own files.
    callbacks = [RunHooks(duties, dirpath=directory, save_last=True, save_top_k=0,
                          enable_version_counter=False)]
    for metric, top_k, mode in criteria:
        slug = metric_slug(metric)
        callbacks.append(CriterionCheckpoint(
            dirpath=directory, monitor=metric, mode=mode, save_top_k=top_k,
            filename=f"{slug}.epoch{{epoch:03d}}-step{{step}}-{{{metric}:.4f}}",
            auto_insert_metric_name=False, enable_version_counter=False))
    return callbacks


LOGGERS = ("csv", "tensorboard")
PROFILERS = ("simple", "advanced", "pytorch")
STRATEGY_NAMES = ("ddp", "fsdp")


def check_strategy_spec(spec: Any) -> None:
    """A strategy Lightning knows by name, a {name: ddp|fsdp, ...} block or a _target_."""
    if spec is None or (isinstance(spec, Mapping) and "_target_" in spec):
        return
    if isinstance(spec, Mapping):
        if spec.get("name") not in STRATEGY_NAMES:
            raise ConfigError(f"strategy name {spec.get('name')!r} is not ddp or fsdp",
                              key="trainer.strategy.name",
                              hint="use a name string such as 'ddp_spawn' or a "
                                   "{_target_: ...} block")
        return
    known = strategy_names()
    if not isinstance(spec, str) or spec not in known:
        import difflib

        close = difflib.get_close_matches(str(spec), known, 3)
        raise ConfigError(f"unknown strategy {spec!r}", key="trainer.strategy",
                          hint=f"did you mean {' or '.join(map(repr, close))}?" if close
                          else f"Lightning knows: {', '.join(known)}")


def strategy_names() -> list[str]:
    from pytorch_lightning.strategies import StrategyRegistry

    return sorted({"auto", *STRATEGY_NAMES, *StrategyRegistry.available_strategies()})


def check_logger_spec(spec: Any) -> None:
    if spec in (None, False, True):
        return
    for i, item in enumerate(as_list(spec)):
        key = "trainer.logger" if not is_sequence(spec) else f"trainer.logger[{i}]"
        if isinstance(item, Mapping):
            if "_target_" not in item:
                raise ConfigError("a logger block needs a '_target_'", key=key,
                                  hint="e.g. {_target_: pytorch_lightning.loggers.CSVLogger, "
                                       "save_dir: ...}")
        elif item not in LOGGERS:
            raise ConfigError(f"unknown logger {item!r}", key=key,
                              hint=f"use {', '.join(LOGGERS)}, a list of them, false, or a "
                                   "{_target_: ...} block")


def check_profiler_spec(spec: Any) -> None:
    if spec in (None, False) or (isinstance(spec, Mapping) and "_target_" in spec):
        return
    if spec not in PROFILERS:
        raise ConfigError(f"unknown profiler {spec!r}", key="trainer.profiler",
                          hint=f"use {', '.join(PROFILERS)} or a {{_target_: ...}} block")


def check_callbacks_spec(specs: Any) -> None:
    if not is_sequence(specs) or not all(isinstance(s, Mapping) and "_target_" in s
                                          for s in specs):
        raise ConfigError("callbacks must be a list of {_target_: ...} blocks",
                          key="trainer.callbacks",
                          hint="e.g. callbacks: [{_target_: "
                               "pytorch_lightning.callbacks.LearningRateMonitor}]")


def build_strategy(spec: Any) -> Any:
    from hydra.utils import instantiate

    if spec is None or (isinstance(spec, str) and spec not in ("ddp", "fsdp")):
        return spec or "auto"
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    if "_target_" in spec:
        return instantiate(spec)
    name = spec.pop("name", None)
    if name == "ddp":
        from pytorch_lightning.strategies import DDPStrategy

        return DDPStrategy(**_timeouts(spec))
    if name == "fsdp":
        from pytorch_lightning.strategies import FSDPStrategy

        return FSDPStrategy(**_timeouts(spec))
    raise ConfigError(f"strategy name '{name}' is not ddp or fsdp", key="trainer.strategy.name",
                      hint="use a string such as 'ddp_spawn' or a {_target_: ...} block")


def _timeouts(options: dict) -> dict:
    """`timeout_s: 600` reads better in YAML than a timedelta."""
    if "timeout_s" in options:
        from datetime import timedelta

        options["timeout"] = timedelta(seconds=float(options.pop("timeout_s")))
    return options


def build_loggers(spec: Any, exp_dir: Path) -> Any:
    from hydra.utils import instantiate

    if spec in (None, False):
        return False
    items = spec if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]
    loggers = []
    for item in items:
        if isinstance(item, Mapping):
            loggers.append(instantiate(item))
        elif item == "csv":
            from launcher.csv_log import ResumableCSVLogger

            loggers.append(ResumableCSVLogger(save_dir=str(exp_dir), name="", version=""))
        elif item == "tensorboard":
            from pytorch_lightning.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(save_dir=str(exp_dir), name="tensorboard",
                                             version=""))
        else:
            raise ConfigError(f"unknown logger '{item}'", key="trainer.logger",
                              hint="use csv, tensorboard, a list of them, false, "
                                   "or a {_target_: ...} block")
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
    from launcher.building import build

    if not specs:
        return []
    check_callbacks_spec(specs)
    return [build(s, f"trainer.callbacks[{i}]") for i, s in enumerate(specs)]


def average_best_checkpoints(callbacks: list, exp_dir: Path) -> list[Path]:
    """Average each criterion's top-k checkpoints into `<metric>.ave_<k>best.pth`.

    Averaging several good checkpoints is the ESPnet habit: it usually beats
    the single best one for free. Integer buffers (counters) are copied from
    one of them, since averaging them means nothing.
    """
    import torch

    written = []
    for callback in callbacks:
        if not callback.monitor or not callback.best_k_models:
            continue
        paths = list(callback.best_k_models)
        states = [torch.load(p, map_location="cpu", weights_only=False)["state_dict"]
                  for p in paths]
        averaged = {}
        for key, value in states[0].items():
            if value.is_floating_point():
                averaged[key] = sum(s[key] for s in states) / len(states)
            else:
                averaged[key] = value
        model_state = {k.removeprefix("model."): v for k, v in averaged.items()
                       if k.startswith("model.")}
        target = exp_dir / f"{metric_slug(callback.monitor)}.ave_{len(paths)}best.pth"
        torch.save(model_state, target)
        written.append(target)
    return written
