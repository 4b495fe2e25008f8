"""A LightningModule as the lightning-hydra-template writes one: the network, the
optimizer and the scheduler come from the config (the last two as partials), and
`configure_optimizers` is the module's own."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


class BlobsLitModule(pl.LightningModule):
    def __init__(self, net: torch.nn.Module, optimizer: Any, scheduler: Any = None,
                 compile: bool = False) -> None:
        super().__init__()
        # Kept in the checkpoint (the template does the same); the net is saved as weights.
        self.save_hyperparameters(logger=False, ignore=["net"])
        self.net = net
        self.criterion = torch.nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: Any, split: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        acc = (logits.argmax(dim=1) == y).float().mean()
        on_step = split == "train"
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True)
        self.log(f"{split}/acc", acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.hparams.optimizer(params=self.parameters())
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.hparams.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss",
                                 "interval": "epoch", "frequency": 1}}
