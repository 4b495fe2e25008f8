"""The logged metrics a Lightning checkpoint leaves out, carried for an exact resume.

A value logged with `on_epoch=True` is accumulated over the epoch's batches and logged
at its end; `trainer.callback_metrics` holds the latest values, which callbacks and
plateau schedulers read. Neither is in a Lightning checkpoint: a run resumed inside an
epoch logged that epoch's training metrics over the batches after the resume only, and
had nothing for a plateau scheduler to monitor until the next validation.

Both travel in the module's checkpoint entry as plain tensors (which weights-only
loading accepts): every rank's accumulators (gathered, since only rank 0 writes the
file; a resume with another world size starts the epoch's sums afresh, with a warning)
and the callback metrics. Values logged as torchmetrics objects keep their own state.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger("launcher.compat.lightning_metrics")
REDUCTIONS = {"mean": torch.mean, "sum": torch.sum, "max": torch.max, "min": torch.min,
              "builtin_sum": sum, "builtin_max": max, "builtin_min": min}
FLAGS = ("prog_bar", "logger", "on_step", "enable_graph", "add_dataloader_idx")


def pack_logged_metrics(trainer: Any) -> dict:
    """The training epoch's accumulators of every rank (none once the epoch's training
    has ended: Lightning resumes into the next epoch then), and the callback metrics.
    Every rank calls it (saving a checkpoint is collective)."""
    mine = {}
    if _inside_epoch(trainer):
        results = trainer.fit_loop.epoch_loop._results
        mine = {key: _pack(metric) for key, metric in results.items() if _carried(metric)}
    callback = {name: value.detach().cpu() for name, value in trainer.callback_metrics.items()
                if torch.is_tensor(value)}
    return {"ranks": _gather(trainer, mine), "callback": callback}


def restore_logged_metrics(trainer: Any, packed: dict) -> None:
    """Put them back, before the resumed run logs anything (from `on_train_start`)."""
    # First: reading callback_metrics computes whatever the results hold.
    trainer.callback_metrics.update(packed["callback"])
    ranks = packed["ranks"]
    if len(ranks) != trainer.world_size:
        log.warning("the checkpoint was saved by %d rank(s), this run has %d: the training "
                    "metrics of this epoch are averaged over the batches after the resume",
                    len(ranks), trainer.world_size)
        return
    results = trainer.fit_loop.epoch_loop._results
    device = trainer.lightning_module.device
    for key, saved in ranks[trainer.global_rank].items():
        _restore(trainer, results, key, saved, device)
    if ranks[trainer.global_rank]:
        # Lightning wipes a hook's epoch values at its first `log` in an epoch's first
        # batch (`should_reset_tensors`); this epoch is past its first batch.
        trainer._logger_connector._first_loop_iter = False


def _inside_epoch(trainer: Any) -> bool:
    """Between an epoch's start and the end of its training batches (and validation),
    where Lightning restarts a checkpoint in the middle of the epoch."""
    epochs = trainer.fit_loop.epoch_progress.total
    return epochs.processed == epochs.started - 1


def _carried(metric: Any) -> bool:
    meta = metric.meta
    return (metric.is_tensor and meta.on_epoch and not metric.has_reset
            and meta.sync.group is None and _reduction_name(meta.reduce_fx) is not None)


def _reduction_name(fn: Any) -> str | None:
    return next((name for name, known in REDUCTIONS.items() if known is fn), None)


def _pack(metric: Any) -> dict:
    meta = metric.meta
    packed = {"fx": meta.fx, "name": meta.name, "reduce_fx": _reduction_name(meta.reduce_fx),
              "sync_dist": meta.sync.should, "rank_zero_only": meta.sync.rank_zero_only,
              "value": metric.value.detach().cpu(),
              **{flag: getattr(meta, flag) for flag in FLAGS}}
    if meta.is_mean_reduction:
        packed["count"] = metric.cumulated_batch_size.detach().cpu()
    return packed


def _restore(trainer: Any, results: Any, key: str, saved: dict, device: Any) -> None:
    """Registered as `self.log` would register it (a later `log` of the same value must
    find the same settings), then given the saved sums exactly."""
    value = saved["value"].to(device)
    results.log(saved["fx"], saved["name"], value, on_epoch=True,
                reduce_fx=REDUCTIONS[saved["reduce_fx"]], batch_size=1,
                sync_dist=saved["sync_dist"], sync_dist_fn=trainer.strategy.reduce,
                rank_zero_only=saved["rank_zero_only"],
                **{flag: saved[flag] for flag in FLAGS})
    metric = results[key]
    metric.value = value
    if "count" in saved:
        metric.cumulated_batch_size = saved["count"].to(device)


def _gather(trainer: Any, mine: dict) -> list[dict]:
    if trainer.world_size == 1:
        return [mine]
    import torch.distributed as dist

    everyone: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(everyone, mine)
    return everyone
