"""The checkpoints every run keeps: `last.ckpt`, and each criterion's best; their average.

`best_model_criterion` entries `[metric, top_k, mode]` keep the best `top_k`
checkpoints each; `trainer.average_checkpoints` averages them into
`<metric>.ave_<k>best.pth`, the ESPnet habit that usually beats the single best."""

from __future__ import annotations

from pathlib import Path

from launcher import layout
from launcher.components.callbacks.criteria import metric_slug


def checkpoint_callbacks(exp_dir: Path, criteria: list[tuple[str, int, str]],
                         duties: tuple = ()) -> list:
    """`last.ckpt` (its callback also runs the per-step `duties`) and each criterion's best."""
    from launcher.components.callbacks.criterion_checkpoint import CriterionCheckpoint
    from launcher.components.callbacks.last_checkpoint import LastCheckpoint

    directory = str(layout.checkpoints(exp_dir))
    # No "-v1" copies: a resumed run overwrites its own files.
    callbacks = [LastCheckpoint(duties, dirpath=directory, save_last=True, save_top_k=0,
                          enable_version_counter=False)]
    for metric, top_k, mode in criteria:
        slug = metric_slug(metric)
        callbacks.append(CriterionCheckpoint(
            dirpath=directory, monitor=metric, mode=mode, save_top_k=top_k,
            filename=f"{slug}.epoch{{epoch:03d}}-step{{step}}-{{{metric}:.4f}}",
            auto_insert_metric_name=False, enable_version_counter=False))
    return callbacks


def average_best_checkpoints(callbacks: list, exp_dir: Path) -> list[Path]:
    """Average each criterion's top-k checkpoints into `<metric>.ave_<k>best.pth`.

    Averaging several good checkpoints is the ESPnet habit: it usually beats
    the single best one for free. Integer buffers (counters) are copied from
    one of them, since averaging them means nothing.
    """
    import torch

    written = []
    for callback in callbacks:
        if not callback.monitor or not callback.best_k_models:
            continue
        paths = list(callback.best_k_models)
        states = [torch.load(p, map_location="cpu", weights_only=False)["state_dict"]
                  for p in paths]
        averaged = {}
        for key, value in states[0].items():
            if value.is_floating_point():
                averaged[key] = sum(s[key] for s in states) / len(states)
            else:
                averaged[key] = value
        model_state = {k.removeprefix("model."): v for k, v in averaged.items()
                       if k.startswith("model.")}
        target = exp_dir / layout.averaged_file(metric_slug(callback.monitor), len(paths))
        torch.save(model_state, target)
        written.append(target)
    return written
