"""The shared LightningModule: any `model(**batch) -> (loss, stats, weight)` trains.

Stats are logged as `train/<name>`, `valid/<name>` and `test/<name>`, averaged
over the epoch with `weight` (e.g. the number of utterances or tokens in the
batch) and synced across ranks. A recipe customises the loop by subclassing
and overriding `training_step`; the config selects the subclass through
`lightning_module._target_`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from launcher.data import build_dataloader, has_split
from launcher.optim import OptimizerSpec, build_optimizers


class ESPnetLightningModule(pl.LightningModule):
    def __init__(self, model: torch.nn.Module, config: Mapping) -> None:
        super().__init__()
        self.model = model
        self.config = config
        # Lightning steps one optimizer automatically; several need manual steps.
        self.automatic_optimization = config.get("optims") is None
        self.optimizer_specs: list[OptimizerSpec] = []

    def forward(self, **batch: Any) -> tuple[torch.Tensor, dict, torch.Tensor]:
        return self.model(**batch)

    # ---- steps -------------------------------------------------------------
    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        loss, stats, weight = self.model(**batch)
        self.log_stats("train", stats, weight)
        if not self.automatic_optimization:
            self.manual_update(loss)
        return loss

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        _, stats, weight = self.model(**batch)
        self.log_stats("valid", stats, weight)

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        _, stats, weight = self.model(**batch)
        self.log_stats("test", stats, weight)

    def log_stats(self, prefix: str, stats: Mapping[str, Any], weight: Any) -> None:
        """Log each stat as `<prefix>/<name>`, weighted over the epoch and synced across ranks."""
        batch_size = max(1, int(weight.item() if torch.is_tensor(weight) else weight))
        for name, value in stats.items():
            if value is None:
                continue
            if torch.is_tensor(value):
                value = value.detach().float()
            self.log(f"{prefix}/{name}", value, on_step=False, on_epoch=True,
                     batch_size=batch_size, sync_dist=True, prog_bar=name == "loss")

    def manual_update(self, loss: torch.Tensor) -> None:
        """Default update for several optimizers: one backward, then every optimizer steps."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for opt in optimizers:
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in optimizers:
            opt.step()
        self._step_schedulers("step")

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            self._step_schedulers("epoch")

    def _step_schedulers(self, interval: str) -> None:
        for spec in self.optimizer_specs:
            if spec.scheduler is not None and spec.interval == interval:
                spec.scheduler.step()

    # ---- optimizers and data ------------------------------------------------
    def configure_optimizers(self) -> Any:
        self.optimizer_specs = build_optimizers(self.model, self.config)
        configs = [spec.lightning_config() for spec in self.optimizer_specs]
        return configs[0] if len(configs) == 1 else configs

    def train_dataloader(self) -> Any:
        return build_dataloader(self.config, "train")

    def val_dataloader(self) -> Any:
        return build_dataloader(self.config, "valid") if has_split(self.config, "valid") else []

    def test_dataloader(self) -> Any:
        return build_dataloader(self.config, "test")
