"""The shared Trainer wrapper: the `trainer:` config block becomes a Lightning Trainer.

Keys are those of `pytorch_lightning.Trainer`, plus a few the wrapper
translates so that a YAML file can say them:

    strategy:  auto | ddp | fsdp | {name: ddp|fsdp, <options>} | {_target_: ...}
    logger:    csv (default) | tensorboard | mlflow | wandb | a list | false | {_target_: ...}
    profiler:  simple | advanced | pytorch | {_target_: ...}
    callbacks: [{_target_: ...}, ...]
    average_checkpoints: true   keep each criterion's top-k averaged in one model file
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
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.components.callbacks.criteria import parse_criteria
from launcher.components.callbacks.default_callbacks import checkpoint_callbacks
from launcher.components.callbacks.trial_report import trial_callbacks
from launcher.components.trainers.options import (
    as_list,
    build_callbacks,
    build_loggers,
    build_profiler,
    build_strategy,
    check_callbacks_spec,
    check_logger_spec,
    check_profiler_spec,
    check_strategy_precision,
    check_strategy_spec,
)
from launcher.errors import ConfigError
from launcher.layout import CHECKPOINT_DIR

# Trainer.fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path): our
# fit() takes the arguments after the model; this many of them come before ckpt_path.
FIT_CKPT_PATH_POSITION = 4
log = logging.getLogger(__name__)
WRAPPER_KEYS = ("_target_", "strategy", "logger", "profiler", "callbacks",
                "average_checkpoints", "progress_interval_s", "checkpoint_every_n_steps",
                "checkpoint_every_min", "keep_periodic_checkpoints")


class ESPnet3LightningTrainer:
    def __init__(self, model: Any = None, exp_dir: str | Path | None = None,
                 config: Mapping | None = None,
                 best_model_criterion: Sequence | None = None) -> None:
        import pytorch_lightning as pl

        self.model = model
        self.exp_dir = Path(exp_dir if exp_dir is not None else ".")
        self.config = _plain(config)
        self.check_options(self.config)
        # None: ESPnet3's default [[valid/loss, 3, min]]; [] keeps no best checkpoints.
        self.criteria = (None if best_model_criterion is None
                         else parse_criteria(best_model_criterion))
        options = {k: v for k, v in self.config.items() if k not in WRAPPER_KEYS}
        # A bar redrawn with carriage returns is unreadable in a log file.
        options.setdefault("enable_progress_bar", sys.stdout.isatty())
        configured = build_callbacks(self.config.get("callbacks"))
        added = [*self.resilience_callbacks(), *self.extra_callbacks(), *trial_callbacks()]
        duties = run_duties(options, self.config, self.exp_dir, [*configured, *added])
        self.checkpoint_callbacks = checkpoint_callbacks(
            self.exp_dir, self.criteria, duties,
            average=bool(self.config.get("average_checkpoints", True)))
        options["plugins"] = [*as_list(options.get("plugins")), *cluster_plugins(options),
                              *checkpoint_io_plugins(options)]
        # Our dataloaders shard batches across ranks themselves (exactly resumable).
        options.setdefault("use_distributed_sampler", False)
        self.trainer = pl.Trainer(
            default_root_dir=str(self.exp_dir),
            strategy=build_strategy(self.config.get("strategy", "auto")),
            logger=build_loggers(self.config.get("logger", "csv"), self.exp_dir),
            profiler=build_profiler(self.config.get("profiler"), self.exp_dir),
            callbacks=[*configured, *self.checkpoint_callbacks, *added],
            **options,
        )

    def resilience_callbacks(self) -> list:
        """Periodic checkpoints, when configured (preemption is one of the run hooks)."""
        from launcher.components.callbacks.checkpoints import periodic_checkpoint

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
        check_strategy_spec(config.get("strategy"), config.get("accelerator"))
        check_strategy_precision(config.get("strategy"), config.get("precision"))
        check_logger_spec(config.get("logger", "csv"))
        check_profiler_spec(config.get("profiler"))
        if config.get("callbacks"):
            check_callbacks_spec(config["callbacks"])

    # ---- running ------------------------------------------------------------
    def fit(self, *args: Any, **kwargs: Any) -> None:
        """`Trainer.fit` with the module's own dataloaders; a run with checkpoints
        continues from its newest valid one unless `ckpt_path` is given."""
        if "ckpt_path" not in kwargs and len(args) < FIT_CKPT_PATH_POSITION:
            kwargs["ckpt_path"] = self.resume_from()
        self.trainer.fit(self.model, *args, **kwargs)

    def resume_from(self) -> str | None:
        from launcher.components.callbacks.checkpoints import resume_checkpoint

        resume = resume_checkpoint(self.exp_dir / CHECKPOINT_DIR)
        if resume is None:
            return None
        log.info("resuming from %s", resume)
        return str(resume)

    def validate(self, *args: Any, **kwargs: Any) -> list[dict]:
        return self.trainer.validate(self.model, *args, **kwargs)

    def test(self, *args: Any, **kwargs: Any) -> list[dict]:
        return self.trainer.test(self.model, *args, **kwargs)


def _plain(config: Any) -> dict:
    """The options as a plain dict (ESPnet3 recipes pass `config.trainer` itself)."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(config):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config or {})


def run_duties(options: Mapping, config: Mapping, exp_dir: Path,
               callbacks: Sequence = ()) -> tuple:
    """Progress (for `launch status`, and plain log lines wherever there is no bar),
    the learning rates, then acting on preemption signals; called at every step by
    `LastCheckpoint`."""
    from launcher.components.callbacks.default_callbacks import learning_rates
    from launcher.components.callbacks.preemption import PreemptionWatch
    from launcher.components.callbacks.progress import ProgressLog

    progress = ProgressLog(str(exp_dir), float(config.get("progress_interval_s", 30)),
                           lines=not options.get("enable_progress_bar"))
    rates = learning_rates(config.get("logger", "csv"), callbacks)
    return progress, *rates, PreemptionWatch(exp_dir)


def checkpoint_io_plugins(options: Mapping) -> list:
    """Atomic checkpoint writes, unless the config brings its own CheckpointIO."""
    from lightning_fabric.plugins import CheckpointIO

    from launcher.components.callbacks.checkpoints import AtomicCheckpointIO

    if any(isinstance(p, CheckpointIO) for p in as_list(options.get("plugins"))):
        return []
    return [AtomicCheckpointIO()]


def cluster_plugins(options: Mapping) -> list:
    """Inside a launcher job, ranks come from the processes the launcher started (so
    Lightning's advice to prepend `srun`, given wherever srun is installed, is moot)."""
    import warnings

    from pytorch_lightning.plugins.environments import ClusterEnvironment

    warnings.filterwarnings("ignore", message="The `srun` command is available on your system")

    from launcher.components.trainers.cluster_env import SubmititEnvironment
    from launcher.ranks import under_submitit

    if not under_submitit() or any(isinstance(p, ClusterEnvironment)
                                   for p in as_list(options.get("plugins"))):
        return []
    return [SubmititEnvironment()]
