"""The callbacks every run has, as ESPnet3's defaults: `last.ckpt`, each criterion's
best checkpoints and their average, and the learning rates.

`best_model_criterion` entries `[metric, top_k, mode]` keep the best `top_k`
checkpoints each (`[[valid/loss, 3, min]]` when the config names none);
unless `trainer.average_checkpoints: false`, their average is kept up to date
in `<metric>.ave_<k>best.pth` (`valid.loss.ave_3best.pth`).

Lightning calls every hook of every callback at every step (about 30 us each
on a CPU), so the per-step extras ride on the `last.ckpt` callback as duties
(`launcher.components.callbacks.last_checkpoint`) instead of adding callbacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from launcher import layout
from launcher.components.callbacks.criteria import metric_slug
from launcher.metrics_file import DEFAULT_METRIC

# ESPnet3's; `launch status` tracks the same metric by default
DEFAULT_CRITERIA = [(DEFAULT_METRIC[0], 3, DEFAULT_METRIC[1])]


def checkpoint_callbacks(exp_dir: Path, criteria: list[tuple[str, int, str]] | None,
                         duties: tuple = (), average: bool = True) -> list:
    """`last.ckpt` (its callback also runs the per-step `duties`) and each criterion's
    best; `criteria=None` means ESPnet3's default, which a module may leave unlogged."""
    from launcher.components.callbacks.criterion_checkpoint import CriterionCheckpoint
    from launcher.components.callbacks.last_checkpoint import LastCheckpoint

    directory = str(layout.checkpoints(exp_dir))
    # No "-v1" copies: a resumed run overwrites its own files.
    callbacks = [LastCheckpoint(duties, dirpath=directory, save_last=True, save_top_k=0,
                                enable_version_counter=False)]
    required = criteria is not None
    for metric, top_k, mode in criteria if required else DEFAULT_CRITERIA:
        slug = metric_slug(metric)
        callbacks.append(CriterionCheckpoint(
            required, exp_dir if average else None,
            dirpath=directory, monitor=metric, mode=mode, save_top_k=top_k,
            filename=f"{slug}.epoch{{epoch:03d}}-step{{step}}-{{{metric}:.4f}}",
            auto_insert_metric_name=False, enable_version_counter=False))
    return callbacks


def learning_rates(logger_spec: object, callbacks: Sequence = ()) -> tuple:
    """Lightning's LearningRateMonitor, as a duty: unless there is no logger to write to,
    or the config or the Trainer adds one of its own."""
    from pytorch_lightning.callbacks import LearningRateMonitor

    from launcher.compat.lightning import EpochLearningRateMonitor

    if logger_spec in (False, None, []) or \
            any(isinstance(c, LearningRateMonitor) for c in callbacks):
        return ()
    return (EpochLearningRateMonitor(),)
