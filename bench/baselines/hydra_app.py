"""Baseline for B3: a plain Hydra app that sweeps with hydra-submitit-launcher.

It composes the benchmark recipe's own config file (bench/recipe/conf), so
both sides compose the same YAML, and each job would train the model with
the hand-written Lightning script. The sweep is submitted as Hydra users do:

    python bench/baselines/hydra_app.py -m hydra/launcher=submitit_slurm \
        hydra.launcher.partition=debug optim.lr=0.1,0.2,...

(hydra-submitit-launcher then blocks until the jobs end; B3 stops it once
sbatch has answered, and cancels the jobs.)
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="../recipe/conf", config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> None:
    from lightning_script import main

    model = cfg.model
    main(["--dim", str(model.dim), "--hidden", str(model.hidden), "--layers",
          str(model.layers), "--batch-size", str(cfg.dataloader.batch_size),
          "--lr", str(cfg.optim.lr), "--out", os.getcwd()])


if __name__ == "__main__":
    train()
