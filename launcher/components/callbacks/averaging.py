"""The average of a criterion's best checkpoints, as ESPnet writes it.

`valid/loss` with its 3 best checkpoints becomes `valid.loss.ave_3best.pth`
in the run folder: floating-point weights averaged, integer buffers (counters)
taken from one of them, keys without the LightningModule's `model.` prefix,
so that ESPnet inference code loads it into the bare model. Averaging
several good checkpoints usually beats the single best one for free. Sharded
checkpoint folders are gathered into whole tensors first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from launcher import layout


def average_checkpoints(paths: Sequence[str | Path], monitor: str, exp_dir: Path) -> Path:
    """Write the average of the checkpoints at `paths`; return its path."""
    import torch

    from launcher.components.callbacks.checkpoint_folders import model_weights

    states = [model_weights(p) for p in paths]
    model_state = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            value = sum(s[key] for s in states) / len(states)
        model_state[key] = value
    target = exp_dir / layout.averaged_file(monitor, len(paths))
    tmp = target.with_name(f".{target.name}.tmp")  # a reader never sees half a file
    torch.save(model_state, tmp)
    tmp.replace(target)
    for stale in exp_dir.glob(layout.averaged_glob(monitor)):
        if stale != target:  # fewer best checkpoints than top_k so far: an older count
            stale.unlink(missing_ok=True)
    return target
