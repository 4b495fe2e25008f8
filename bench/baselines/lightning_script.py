"""Baseline: the training script a user writes by hand with PyTorch Lightning.

A minimal LightningModule (log the loss, return it, one SGD optimizer) and a
plain `pytorch_lightning.Trainer`; the same model, data, batch size, seed and
step clock as the launcher path. Trainer options match what the launcher
path gets for this recipe (CSV logger, no progress bar, no model summary);
all others are Lightning's defaults.

    python bench/baselines/lightning_script.py --hidden 64 --steps 2000 --out DIR
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import CSVLogger
from recipe_code import recipe_module, training_arguments
from torch.utils.data import DataLoader


class LitRegressor(pl.LightningModule):
    def __init__(self, model: torch.nn.Module, lr: float) -> None:
        super().__init__()
        self.model = model
        self.lr = lr

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self.model(**batch)
        # What the launcher's module logs: the epoch mean of the training loss.
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = training_arguments(__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1, help=">1: DDP on CPU (gloo)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: train on one GPU (B1 with BENCH_DEVICE=gpu)")
    parser.add_argument("--out", required=True, help="folder for logs and checkpoints")
    parser.add_argument("--idle-callbacks", type=int, default=0,
                        help="add callbacks that do nothing (what each callback costs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    model_code, timing = recipe_module("model"), recipe_module("timing")
    pl.seed_everything(args.seed, workers=True, verbose=False)
    model = model_code.MLP(args.dim, args.hidden, args.layers)
    # One epoch of exactly `steps` steps on every rank.
    data = model_code.RandomData(args.steps * args.batch_size * args.devices, args.dim, seed=0)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    trainer = pl.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=1, max_steps=args.steps, default_root_dir=args.out,
        logger=CSVLogger(args.out), enable_progress_bar=False, enable_model_summary=False,
        callbacks=[timing.StepTimer(), *(Callback() for _ in range(args.idle_callbacks))])
    trainer.fit(LitRegressor(model, args.lr), loader)


if __name__ == "__main__":
    main()
