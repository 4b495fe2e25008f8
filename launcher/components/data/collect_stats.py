"""Global feature statistics (count, sum, sum of squares) for normalisation.

A model that wants its inputs normalised exposes `collect_feats(**batch)`
returning `{name: (B, T, D) tensor, name + "_lengths": (B,) tensor}`; the
collect_stats stage runs it over the train and valid sets, every item once in
order, and writes ESPnet3's layout into `stats_dir` (the config's `stats_dir`,
else `<run_dir>/stats`):

    <stats_dir>/train/<name>_stats.npz   count, sum, sum_square (over frames)
    <stats_dir>/train/<name>_shape       "<utt_id> T,D" per utterance
    <stats_dir>/train/stats_keys         the names, one a line
    <stats_dir>/valid/...                the same for the valid set

Utterance ids come from `(utt_ids, dict)` batches, else they are the items'
indices.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from launcher import layout
from launcher.components.data.dataloader import build_dataloader, has_split, model_inputs
from launcher.errors import ConfigError
from launcher.ranks import process_rank
from launcher.signals import stop_between_stages

STATS_SPLITS = ("train", "valid")
STATS_KEYS_FILE = "stats_keys"


def stats_dir(config: Mapping, run_dir: Path) -> Path:
    """The config's `stats_dir` (relative to the recipe folder), else `<run_dir>/stats`."""
    return layout.stats_dir(config.get("stats_dir"), config.get("recipe_dir"), run_dir)


def collect_feature_stats(model: torch.nn.Module, config: Mapping, out_dir: Path) -> list[Path]:
    """Collect and write the statistics of the train and valid splits; the files written."""
    if not hasattr(model, "collect_feats"):
        raise ConfigError(f"{type(model).__name__} has no collect_feats(**batch) method",
                          key="stages", hint="drop collect_stats from stages, or add "
                                             "collect_feats to the model")
    model.eval()
    collected = {split: _collect(model, config, split) for split in STATS_SPLITS
                 if split == "train" or has_split(config, split)}
    written = []
    for split, (sums, shapes) in collected.items():
        written += _write(out_dir / split, sums, shapes)
    return written


def _collect(model: torch.nn.Module, config: Mapping, split: str) -> tuple[dict, dict]:
    sums: dict[str, tuple] = {}
    shapes: dict[str, list[str]] = {}
    seen = 0
    with torch.no_grad():
        for batch in build_dataloader(config, split, in_order=True):
            # A signal stops the stage promptly; its statistics are written at the end only.
            stop_between_stages(Path(config.get("run_dir") or "."), process_rank() == 0,
                                "during collect_stats")
            inputs = model_inputs(batch)
            feats = model.collect_feats(**inputs)
            size = _batch_size(feats)
            ids = [str(u) for u in batch[0]] if inputs is not batch else \
                [str(i) for i in range(seen, seen + size)]
            seen += size
            for name, value in feats.items():
                if name.endswith("_lengths"):
                    continue
                lengths = feats.get(f"{name}_lengths")
                _accumulate(sums, name, value, lengths)
                shapes.setdefault(name, []).extend(_shape_lines(ids, value, lengths))
    return sums, shapes


def _batch_size(feats: Mapping[str, Any]) -> int:
    return next(len(v) for k, v in feats.items() if not k.endswith("_lengths"))


def _accumulate(sums: dict, name: str, value: torch.Tensor, lengths: torch.Tensor | None) -> None:
    value = value.detach().cpu().double()
    if lengths is not None:
        lengths = lengths.detach().cpu()
        mask = torch.arange(value.shape[1])[None, :] < lengths[:, None]
        frames = value[mask]
    else:
        frames = value.reshape(-1, value.shape[-1])
    count, total, squares = sums.get(name, (0, 0.0, 0.0))
    sums[name] = (count + frames.shape[0], total + frames.sum(0).numpy(),
                  squares + (frames ** 2).sum(0).numpy())


def _shape_lines(ids: list[str], value: torch.Tensor, lengths: torch.Tensor | None) -> list[str]:
    """ESPnet3's shape lines: `T,D` of each utterance's frames (its length, not the
    padded one); `1,...` for a feature without lengths."""
    lines = []
    for b, uid in enumerate(ids):
        shape = (int(lengths[b]), *value.shape[2:]) if lengths is not None \
            else (1, *value.shape[1:])
        lines.append(f"{uid} {','.join(str(int(d)) for d in shape)}")
    return lines


def _write(directory: Path, sums: dict, shapes: dict) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = [_write_npz(directory / f"{name}_stats.npz", *values)
               for name, values in sums.items()]
    for name, lines in shapes.items():
        written.append(_write_text(directory / f"{name}_shape", "".join(f"{x}\n" for x in lines)))
    written.append(_write_text(directory / STATS_KEYS_FILE, "".join(f"{n}\n" for n in sums)))
    return written


def _write_npz(path: Path, count: int, total: Any, squares: Any) -> Path:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")  # ranks write side by side
    np.savez(tmp, count=count, sum=total, sum_square=squares)
    tmp.replace(path)
    return path


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
