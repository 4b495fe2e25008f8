"""A Trainer for the B1 ablation: the shared Trainer less some of its own callbacks.

    trainer._target_=src.ablation.WithoutCallbacks "+trainer.without=[LastCheckpoint]"

removes the callbacks of those class names after the shared Trainer built
them, so that B1 can tell what they cost per step; a checkpoint callback
removed is replaced by a plain ModelCheckpoint with the same settings (as a
hand-written script has one). Not for real runs: without its duties a run
neither reports progress nor survives preemption.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launcher.components.trainers.trainer import ESPnet3LightningTrainer


class WithoutCallbacks(ESPnet3LightningTrainer):
    def __init__(self, *args: Any, config: Mapping | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        without = set(config.pop("without", []))
        super().__init__(*args, config=config, **kwargs)
        kept = []
        for callback in self.trainer.callbacks:
            if type(callback).__name__ not in without:
                kept.append(callback)
            elif (replacement := plain(callback)) is not None:
                kept.append(replacement)
        self.trainer.callbacks = kept

    @classmethod
    def check_options(cls, config: Mapping) -> None:
        super().check_options({k: v for k, v in config.items() if k != "without"})


def plain(callback: Any) -> Any:
    """A plain ModelCheckpoint in place of a checkpoint callback; None for others."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    if not isinstance(callback, ModelCheckpoint):
        return None
    return ModelCheckpoint(dirpath=callback.dirpath, save_last=callback.save_last,
                           save_top_k=callback.save_top_k, enable_version_counter=False)
