"""Resuming from a checkpoint taken on the last batch of an epoch, before the epoch ended.

A stop signal saves at the end of a training step, and so does a periodic checkpoint
(except that, under automatic optimization, Lightning defers one due on an epoch's
last batch to the end of the validation). On an epoch's last batch that is before the
epoch's validation and its end. Lightning 2.6 restores such a checkpoint as
an epoch already done: `FitLoop.reset` counts it processed and completed (the
checkpoint is `restarted_on_train_batch_end`, `restarted_mid_epoch` and `is_last_batch`)
and `_TrainingEpochLoop.reset` starts the next epoch's batches. The epoch's validation,
its metrics and best checkpoints, its end hooks and plateau step never happen, and the
next epoch starts without `on_train_epoch_start`.

So the checkpoint records what the epoch still owed (`owed_at_save`), and loading moves
the loop counters to where the uninterrupted run stood right after that step
(`move_past_last_step`): with a validation owed, to the start of that validation, which
Lightning restarts from its first batch; without one, to the end of the epoch's
batches, whose empty remainder (`exact_resume.resume_batch_order`) ends the epoch.
The resumed run then validates, ends the epoch and goes on as the
uninterrupted run did.
"""

from __future__ import annotations

from typing import Any

VALIDATION, EPOCH_END = "validation", "epoch_end"


def owed_at_save(trainer: Any) -> str | None:
    """What the epoch still owes if a checkpoint is saved now: at the end of its last
    training step, its validation (when due after this step) or only its end; else None."""
    if not trainer.training:
        return None
    epoch_loop = trainer.fit_loop.epoch_loop
    batches = epoch_loop.batch_progress
    total = batches.total
    # Inside on_train_batch_end: the step is processed, not yet completed.
    in_step_end = total.ready == total.started == total.processed == total.completed + 1
    if not (in_step_end and batches.is_last_batch):
        return None
    # The very test Lightning makes right after on_train_batch_end.
    due = epoch_loop._should_check_val_fx(trainer.fit_loop._data_fetcher)
    return VALIDATION if due else EPOCH_END


def move_past_last_step(loops: dict, owed: str) -> None:
    """Rewrite a checkpoint's loop counters (`checkpoint["loops"]`, before Lightning
    restores them) from inside the last step's end to the state just after it."""
    fit = loops["fit_loop"]
    batches = fit["epoch_loop.batch_progress"]
    for tracker in (batches["total"], batches["current"]):
        tracker["completed"] = tracker["processed"]
    if owed == VALIDATION:
        # A validation started whose first batch is not done: Lightning runs it again
        # from the top (`restarted_mid_evaluation`) before ending the epoch.
        validation = fit["epoch_loop.val_loop.batch_progress"]
        for tracker in (validation["total"], validation["current"]):
            tracker.update(ready=1, started=1, processed=0, completed=0)
        validation["is_last_batch"] = False
    else:
        # What Lightning counts after a step that validation does not follow.
        fit["epoch_loop.state_dict"]["_batches_that_stepped"] += 1


def settle_validation_counters(trainer: Any) -> None:
    """From `on_train_start`, once Lightning has read the moved counters (`FitLoop.reset`):
    the owed validation counts its batches from zero, as it would have, so that a
    checkpoint taken at its end does not read as one taken in its middle."""
    trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.reset()


def take_the_plateau_step(trainer: Any) -> None:
    """At the end of the first epoch after a resume (from `on_train_epoch_end`).

    Lightning skips the ReduceLROnPlateau step at the end of the epoch it restarted in
    (`FitLoop.on_advance_end`: `if not self.restarting`), the metrics it monitors having
    been lost with the process. Here they are restored (`lightning_metrics`) or
    computed again, so the step is taken as in the uninterrupted run."""
    trainer.fit_loop._restarting = False


def set_batches_done(trainer: Any, done: int) -> None:
    """Count `done` batches of the current epoch as processed (a resume on another
    number of ranks, whose share of the epoch has another length): the epoch's progress
    counters (`fit_loop.epoch_loop.batch_progress.current`), restored from the
    checkpoint before the train dataloader is requested, all moved alike."""
    current = trainer.fit_loop.epoch_loop.batch_progress.current
    shift = done - current.processed  # a save at a batch's end has it processed, not completed
    current.ready += shift
    current.started += shift
    current.processed += shift
    current.completed += shift
