"""Global feature statistics (count, sum, sum of squares) for normalisation.

A model that wants its inputs normalised exposes `collect_feats(**batch)`
returning `{name: (B, T, D) tensor, name + "_lengths": (B,) tensor}`; the
collect_stats stage runs it over the train set once and writes
`<run_dir>/stats/<name>_stats.npz`, which the model's normaliser loads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from launcher.components.data.dataloader import build_dataloader, model_inputs
from launcher.errors import ConfigError
from launcher.ranks import process_rank
from launcher.signals import stop_between_stages


def collect_feature_stats(model: torch.nn.Module, config: Mapping, out_dir: Path) -> list[Path]:
    if not hasattr(model, "collect_feats"):
        raise ConfigError(f"{type(model).__name__} has no collect_feats(**batch) method",
                          key="stages", hint="drop collect_stats from stages, or add "
                                             "collect_feats to the model")
    sums: dict[str, list] = {}
    model.eval()
    with torch.no_grad():
        for batch in build_dataloader(config, "train"):
            # A signal stops the stage promptly; its statistics are written at the end only.
            stop_between_stages(Path(config.get("run_dir") or "."), process_rank() == 0,
                                "during collect_stats")
            feats = model.collect_feats(**model_inputs(batch))
            for name, value in feats.items():
                if name.endswith("_lengths"):
                    continue
                _accumulate(sums, name, value, feats.get(f"{name}_lengths"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (count, total, squares) in sums.items():
        path = out_dir / f"{name}_stats.npz"
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp.npz")  # ranks write side by side
        np.savez(tmp, count=count, sum=total, sum_square=squares)
        tmp.replace(path)
        written.append(path)
    return written


def _accumulate(sums: dict, name: str, value: torch.Tensor, lengths: torch.Tensor | None) -> None:
    value = value.double()
    if lengths is not None:
        mask = torch.arange(value.shape[1])[None, :] < lengths[:, None]
        frames = value[mask]
    else:
        frames = value.reshape(-1, value.shape[-1])
    count, total, squares = sums.get(name, (0, 0.0, 0.0))
    sums[name] = (count + frames.shape[0], total + frames.sum(0).numpy(),
                  squares + (frames ** 2).sum(0).numpy())
