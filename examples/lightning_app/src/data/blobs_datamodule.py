"""A LightningDataModule over Gaussian blobs generated from a seed (nothing downloads)."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class BlobsDataModule(pl.LightningDataModule):
    def __init__(self, num_samples: Sequence[int] = (512, 128, 128), num_classes: int = 3,
                 batch_size: int = 32, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        generator = torch.Generator().manual_seed(self.hparams.seed)
        classes = self.hparams.num_classes
        angles = torch.arange(classes) * (2 * torch.pi / classes)
        centres = torch.stack([angles.cos(), angles.sin()], dim=1) * 2.0
        for name, size in zip(("train", "val", "test"), self.hparams.num_samples,
                              strict=True):
            labels = torch.randint(0, classes, (size,), generator=generator)
            points = centres[labels] + 1.2 * torch.randn(size, 2, generator=generator)
            self.splits[name] = TensorDataset(points, labels)

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.hparams.batch_size,
                          shuffle=shuffle, num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
