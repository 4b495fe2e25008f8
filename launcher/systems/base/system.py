"""A System runs a recipe's stages in order; each stage is a method.

The shared System knows `collect_stats`, `train` and `evaluate`. A recipe adds
a stage by subclassing and marking a method with `@stage`, then selects its
System with `system._target_`. Stages are chosen with `stages=[...]`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from launcher import layout
from launcher.errors import ConfigError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
ALL_STAGES = "all"


def stage(method: F) -> F:
    """Mark a System method as a stage that `stages=[...]` may name."""
    method.__launcher_stage__ = True
    return method


class System:
    def __init__(self, config: Mapping) -> None:
        self.config = config
        self.exp_dir = Path(config.get("run_dir") or ".")
        recipe_dir = config.get("recipe_dir")
        self.recipe_dir = Path(recipe_dir) if recipe_dir else None

    @property
    def training_config(self) -> Mapping:
        """The run's config, by ESPnet3's name for it (`self.training_config`)."""
        return self.config

    @classmethod
    def check_config(cls, config: Any, recipe_dir: Path | None = None) -> None:
        """Refuse settings of this System's own that would fail later, with a ConfigError.

        `launch` calls it before anything is written or queued; a subclass with
        keys of its own checks them here. The base System has none."""

    @classmethod
    def known_stages(cls) -> list[str]:
        names = []
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if getattr(value, "__launcher_stage__", False) and name not in names:
                    names.append(name)
        return names

    @classmethod
    def check_stages(cls, stages: Iterable[str]) -> list[str]:
        """The stages to run, in order; `all` (ESPnet3's word) means every known stage."""
        known = cls.known_stages()
        stages = [stages] if isinstance(stages, str) else list(stages)
        if stages == [ALL_STAGES]:
            return known
        for name in stages:
            if name not in known:
                raise ConfigError(f"unknown stage '{name}'", key="stages",
                                  hint=f"known stages of {cls.__name__}: {', '.join(known)}")
        return stages

    def run(self, stages: Iterable[str]) -> None:
        """Run `stages` in order, skipping those an earlier attempt (a requeue, a
        relaunch) finished with the same config and whose outputs are all there
        (`launcher.systems.base.stage_record`); record each one as it finishes."""
        from launcher.ranks import process_rank
        from launcher.signals import stop_between_stages
        from launcher.systems.base.stage_record import StageRecord

        names = self.check_stages(stages)
        lead = process_rank() == 0
        # Read once, before this attempt records anything: every rank decides alike.
        record = StageRecord.read(self.exp_dir, self.config)
        for name in names:
            stop_between_stages(self.exp_dir, lead, f"before stage {name}")
            decision = record.decide(self, name)
            if decision.skip:
                log.info("stage %s: skipped, %s", name, decision.why)
                continue
            if decision.why:
                log.info("stage %s: %s", name, decision.why)
            log.info("stage %s: start", name)
            getattr(self, name)()
            if lead:
                record.record(name)
            log.info("stage %s: done", name)

    # ---- building blocks ----------------------------------------------------
    def build_model(self) -> Any:
        from launcher.components.selection import component_class
        from launcher.systems.base.training import instantiate_model

        if not self.config.get("task"):  # with `task:`, the task builds it
            component_class(self.config, "model", self.recipe_dir)
        return instantiate_model(self.config)

    def build_lightning_module(self, model: Any) -> Any:
        from launcher.components.selection import component_class

        cls = component_class(self.config, "lightning_module", self.recipe_dir)
        return cls(model=model, config=self.config)

    def build_trainer(self, module: Any, criteria: bool = True, **overrides: Any) -> Any:
        """The configured Trainer; `overrides` replace `trainer:` options (e.g. for testing)."""
        from omegaconf import OmegaConf

        from launcher.components.selection import component_class

        cls = component_class(self.config, "trainer", self.recipe_dir)
        options = OmegaConf.to_container(self.config["trainer"], resolve=True)
        options.pop("_target_", None)
        options.update(overrides)
        best = self.config.get("best_model_criterion") if criteria else []
        if OmegaConf.is_config(best):
            best = OmegaConf.to_container(best, resolve=True)
        return cls(model=module, exp_dir=self.exp_dir, config=options,
                   best_model_criterion=best)

    def seed(self) -> None:
        import pytorch_lightning as pl

        pl.seed_everything(int(self.config.get("seed", 0)), workers=True, verbose=False)

    # ---- stages -------------------------------------------------------------
    @stage
    def collect_stats(self) -> None:
        """Accumulate feature statistics from `model.collect_feats` over the train and
        valid sets into `stats_dir/{train,valid}/` (ESPnet3's layout; the config's
        `stats_dir`, else `<run_dir>/stats`)."""
        from launcher.components.data.collect_stats import collect_feature_stats, stats_dir

        self.seed()
        out_dir = stats_dir(self.config, self.exp_dir)
        written = collect_feature_stats(self.build_model(), self.config, out_dir)
        for path in written:
            log.info("wrote %s", path)

    @stage
    def train(self) -> None:
        """Fit the model; a run with checkpoints continues from its newest valid one."""
        from omegaconf import OmegaConf

        self.seed()
        fit = self.config.get("fit")  # ESPnet3's keyword arguments of trainer.fit
        fit = OmegaConf.to_container(fit, resolve=True) if OmegaConf.is_config(fit) else fit
        self.build_trainer(self.build_lightning_module(self.build_model())).fit(**(fit or {}))

    @stage
    def evaluate(self) -> dict[str, float]:
        """Test the trained weights on the test split (on rank 0); write `evaluate.json`."""
        from pytorch_lightning.plugins.environments import LightningEnvironment

        from launcher.ranks import process_rank

        if process_rank() != 0:
            return {}
        self.seed()
        model = self.build_model()
        source = load_trained_weights(model, self.exp_dir)
        module = self.build_lightning_module(model)
        trainer = self.build_trainer(module, criteria=False, logger=False, devices=1,
                                     num_nodes=1, strategy="auto",
                                     plugins=[LightningEnvironment()])
        results = trainer.test()[0]
        metrics = {k: float(v) for k, v in results.items()}
        report = {"weights": str(source), "metrics": metrics}
        (self.exp_dir / layout.EVALUATE_FILE).write_text(json.dumps(report, indent=2) + "\n")
        for name, value in sorted(metrics.items()):
            log.info("%s = %.4f", name, value)
        return metrics


def load_trained_weights(model: Any, exp_dir: Path) -> Path:
    """Load the averaged model if training made one, else the last checkpoint."""
    import torch

    from launcher.components.callbacks.checkpoint_folders import model_weights
    from launcher.layout import CHECKPOINT_DIR, LAST_CHECKPOINT

    averaged = sorted(exp_dir.glob(layout.AVERAGED_GLOB))
    if averaged:
        model.load_state_dict(torch.load(averaged[0], map_location="cpu"))
        return averaged[0]
    last = exp_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    if not last.exists():
        raise ConfigError(f"no trained weights in {exp_dir}", key="stages",
                          hint="run the train stage first: stages=[train,evaluate]")
    model.load_state_dict(model_weights(last))  # a file, or a sharded folder gathered
    return last
