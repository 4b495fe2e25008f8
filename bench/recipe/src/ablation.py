"""A Trainer for the B1 ablation: the shared Trainer less some of its own callbacks.

    trainer._target_=src.ablation.WithoutCallbacks "+trainer.without=[RunHooks]"

removes the callbacks of those class names after the shared Trainer built
them, so that B1 can tell what they cost per step. Not for real runs:
without them a run neither reports progress nor survives preemption.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launcher.trainer import ESPnet3LightningTrainer


class WithoutCallbacks(ESPnet3LightningTrainer):
    def __init__(self, *args: Any, config: Mapping | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        without = set(config.pop("without", []))
        super().__init__(*args, config=config, **kwargs)
        self.trainer.callbacks = [c for c in self.trainer.callbacks
                                  if type(c).__name__ not in without]

    @classmethod
    def check_options(cls, config: Mapping) -> None:
        super().check_options({k: v for k, v in config.items() if k != "without"})
