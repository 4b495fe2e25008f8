"""Run an existing Lightning app (lightning-hydra-template's shape) with no adapter.

The config's `model:` is the app's LightningModule (its own
`configure_optimizers`), `data:` its LightningDataModule, `callbacks:` and
`logger:` named blocks, `trainer:` Lightning's options; `train`, `test` and
`ckpt_path` mean what the template's `train.py` makes them mean. The launcher's
Trainer wrapper builds the Trainer, so the resources decide devices, nodes and
strategy, and the run gets the launcher's `last.ckpt`, progress for `launch
status`, signal handling and `metrics.csv`. Selected automatically for such a
config (`launcher.components.lightning_app`), or with `system._target_`.

Resume: the launcher's exact mid-epoch resume needs its own batch order; an
app's DataModule has its own dataloaders, so the run resumes from its newest
checkpoint as Lightning resumes, and `run.log` says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher import layout
from launcher.components.lightning_app import APP_KEYS, named_blocks
from launcher.errors import ConfigError
from launcher.systems.base.system import System, stage

log = logging.getLogger(__name__)
NOT_RESUMED_EXACTLY = (
    "exact mid-epoch resume is not guaranteed for this app: its DataModule's dataloaders "
    "do not record their position as the launcher's do; resuming at the last checkpoint, "
    "{path}, as Lightning resumes (an epoch stopped midway may not see exactly the batches "
    "it would have seen)")


class LightningAppSystem(System):
    config_keys = APP_KEYS

    @classmethod
    def known_stages(cls) -> list[str]:
        """`train` (fit, then test with `test: true`); not the ESPnet3 recipe stages."""
        return [s for s in super().known_stages() if s not in ("collect_stats", "evaluate")]

    @classmethod
    def check_config(cls, config: Any, recipe_dir: Path | None = None) -> None:
        """`model` must be a LightningModule and `data` a LightningDataModule of
        `pytorch_lightning` (the Trainer here is its)."""
        import pytorch_lightning as pl

        from launcher.components.targets import locate

        for key, base in (("model", pl.LightningModule), ("data", pl.LightningDataModule)):
            block = config.get(key)
            if not isinstance(block, Mapping) or "_target_" not in block:
                raise ConfigError(f"a Lightning app needs '{key}._target_'", key=key,
                                  hint=f"e.g. {key}: {{_target_: src.{key}.My{base.__name__}}}")
            target = block["_target_"]
            cls_ = locate(target, key=f"{key}._target_", recipe_dir=recipe_dir)
            require_lightning_class(cls_, base, key=f"{key}._target_", target=target)

    # ---- the stage --------------------------------------------------------------------
    @stage
    def train(self) -> None:
        """Fit (unless `train: false`), then test (with `test: true`) the best checkpoint
        the app's ModelCheckpoint kept, as the template's train.py does."""
        from launcher.components.building import build, user_spelling

        if self.config.get("seed") is not None:
            self.seed()
        data = build(self.config["data"], "data")
        model = build(self.config["model"], "model")
        callbacks = [self._callback(block, f"callbacks{name}")
                     for name, block in named_blocks(self._resolved("callbacks")).items()]
        loggers = [build(block, f"logger{name}")
                   for name, block in named_blocks(self._resolved("logger")).items()]
        trainer = self.build_app_trainer(model, callbacks, loggers)
        log.info("Lightning app: model %s, data %s; the resources give accelerator=%s, "
                 "devices=%s, num_nodes=%s", user_spelling(self.config.model._target_),
                 user_spelling(self.config.data._target_),
                 *(self.config.trainer.get(k) for k in ("accelerator", "devices", "num_nodes")))
        if self.config.get("train", True):
            trainer.fit(datamodule=data, ckpt_path=self._start_from(trainer),
                        **own_checkpoints(trainer.trainer.fit))
        if self.config.get("test"):
            self._test(trainer, data, callbacks)

    def build_app_trainer(self, model: Any, callbacks: list, loggers: list) -> Any:
        """The launcher's Trainer wrapper with the app's callbacks and loggers added (to
        the wrapper's CSV log, which `launch status` reads), and Lightning's distributed
        sampler for the app's own dataloaders."""
        from omegaconf import OmegaConf

        from launcher.components.trainers.options import as_list

        trainer = OmegaConf.to_container(self.config["trainer"], resolve=True)
        logger = trainer.get("logger", "csv")
        logger = [*([] if logger in (None, False) else as_list(logger)), *loggers]
        return self.build_trainer(
            model, criteria=False, callbacks=[*as_list(trainer.get("callbacks")), *callbacks],
            logger=logger or False,
            use_distributed_sampler=trainer.get("use_distributed_sampler", True),
            best_model_criterion=self._criteria(callbacks))

    def build_trainer(self, module: Any, criteria: bool = True, **overrides: Any) -> Any:
        """`System.build_trainer`, but `best_model_criterion` is an override (`criteria` is
        not read): the app's ModelCheckpoints already keep some of the config's."""
        from omegaconf import OmegaConf

        from launcher.components.selection import component_class

        best = overrides.pop("best_model_criterion", None)
        cls = component_class(self.config, "trainer", self.recipe_dir)
        options = OmegaConf.to_container(self.config["trainer"], resolve=True)
        options.pop("_target_", None)
        options.update(overrides)
        return cls(model=module, exp_dir=self.exp_dir, config=options,
                   best_model_criterion=best or [])

    # ---- pieces -----------------------------------------------------------------------
    def _resolved(self, key: str) -> Any:
        from omegaconf import OmegaConf

        node = self.config.get(key)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

    def _callback(self, block: Mapping, key: str) -> Any:
        """The app's callback; a ModelCheckpoint writing into the run's checkpoints folder
        leaves `last.ckpt` to the launcher, which writes it at every stop as well."""
        from pytorch_lightning.callbacks import ModelCheckpoint

        from launcher.components.building import build

        callback = build(block, key)
        ours = layout.checkpoints(self.exp_dir).resolve()
        if isinstance(callback, ModelCheckpoint) and callback.save_last and (
                callback.dirpath is None or Path(callback.dirpath).resolve() == ours):
            callback.save_last = False
            log.info("%s.save_last: the launcher keeps %s/%s itself (at every stop too)",
                     key, layout.CHECKPOINT_DIR, layout.LAST_CHECKPOINT)
        return callback

    def _criteria(self, callbacks: list) -> list:
        """`best_model_criterion` less the metrics the app's ModelCheckpoints already keep
        the best checkpoints of."""
        from omegaconf import OmegaConf
        from pytorch_lightning.callbacks import ModelCheckpoint

        criteria = self.config.get("best_model_criterion") or []
        if OmegaConf.is_config(criteria):
            criteria = OmegaConf.to_container(criteria, resolve=True)
        kept = {c.monitor for c in callbacks if isinstance(c, ModelCheckpoint) and c.monitor}
        return [c for c in criteria if c[0] not in kept]

    def _start_from(self, trainer: Any) -> str | None:
        """The run's newest checkpoint (with the line saying how exact the resume is), else
        the app's `ckpt_path`, else None."""
        resume = trainer.resume_from()
        if resume is not None:
            log.warning(NOT_RESUMED_EXACTLY.format(path=resume))
            return resume
        start = self.config.get("ckpt_path")
        if start:
            log.info("starting from ckpt_path %s", start)
        return start or None

    def _test(self, trainer: Any, data: Any, callbacks: list) -> None:
        """Test the best checkpoint the app's first ModelCheckpoint kept (with `train:
        false`, `ckpt_path`; else the weights as they are); the metrics go to
        evaluate.json, as the evaluate stage's do."""
        from pytorch_lightning.callbacks import ModelCheckpoint

        from launcher.ranks import process_rank

        best = next((c.best_model_path for c in callbacks
                     if isinstance(c, ModelCheckpoint) and c.best_model_path), None)
        if best is None and not self.config.get("train", True):
            best = self.config.get("ckpt_path") or None  # test only: the weights given
        if best is None:
            log.warning("no best checkpoint kept by the app's callbacks; testing the weights "
                        "as they are")
        results = trainer.test(datamodule=data, ckpt_path=best,
                               **own_checkpoints(trainer.trainer.test))
        metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
        if process_rank() == 0:
            report = {"weights": best or "current", "metrics": metrics}
            (self.exp_dir / layout.EVALUATE_FILE).write_text(json.dumps(report, indent=2) + "\n")


def own_checkpoints(method: Any) -> dict:
    """`weights_only=False` where Lightning takes it (2.6): an app's checkpoint keeps its
    hyperparameters, such as the optimizer's partial, which torch's weights-only loading
    refuses; the checkpoints are the run's own (or the config's `ckpt_path`)."""
    import inspect

    return {"weights_only": False} if "weights_only" in inspect.signature(method).parameters \
        else {}


def require_lightning_class(cls: Any, base: type, *, key: str, target: str) -> None:
    """Refuse a class not derived from `base`, naming the `lightning` package when the
    class comes from it (the launcher's Trainer is `pytorch_lightning`'s)."""
    import inspect

    if inspect.isclass(cls) and issubclass(cls, base):
        return
    unified = inspect.isclass(cls) and any(
        k.__module__.split(".")[0] == "lightning" for k in cls.__mro__)
    hint = (f"derive it from pytorch_lightning.{base.__name__}: the launcher trains with "
            "pytorch_lightning (the same API as lightning.pytorch)" if unified
            else f"derive it from pytorch_lightning.{base.__name__}")
    raise ConfigError(f"'{target}' is not a pytorch_lightning.{base.__name__}", key=key,
                      hint=hint)
