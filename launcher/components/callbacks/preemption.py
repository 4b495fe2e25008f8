"""Acting on a signal at a step boundary: checkpoint, then requeue or stop, on all ranks.

The flag is set by `launcher.signals`, which also holds the policy; this is
the training side that acts on it, at the next step.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

from launcher.compat.lightning import take_sigterm_from
from launcher.signals import (
    FLAG,
    OutOfRetries,
    Requeued,
    RequeuePolicy,
    Stopped,
    requeue_this_job,
    restart_count,
    stop_between_stages,
)
from launcher.status_file import OUT_OF_RETRIES, REQUEUED, STOPPED, write_status

log = logging.getLogger(__name__)


class PreemptionWatch:
    """Acts on a received signal at a step boundary, on every rank together.

    Called by `last_checkpoint.LastCheckpoint`. With several ranks, whether any
    rank has the signal is agreed (a collective) every `agree_every` batches,
    counted from the start of this process's fit, so at the same batches on
    every rank; one process just looks at its flag. (Not by global step: with
    several optimizers it can move in strides that skip every multiple.)
    """

    def __init__(self, exp_dir: Path, agree_every: int = 8) -> None:
        self.exp_dir = exp_dir
        self.agree_every = agree_every
        self._batches = 0

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self.on_train_start(trainer, pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Lightning installs its own SIGTERM handler when fit starts; take it back (before
        the sanity check, and again before training), so that a signal always leads to a
        checkpoint first. A SIGTERM its handler saw meanwhile becomes ours to act on."""
        FLAG.retake()
        if take_sigterm_from(trainer):
            FLAG.received = FLAG.received or signal.SIGTERM

    def on_test_batch_end(self, trainer: Any, pl_module: Any) -> None:
        """Testing (the evaluate stage) keeps nothing to resume: a signal stops it at once,
        and the stage runs again from its start next time."""
        stop_between_stages(self.exp_dir, trainer.is_global_zero, "during evaluate")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batches += 1
        flagged = FLAG.received is not None
        if trainer.world_size > 1:
            if self._batches % self.agree_every:
                return
            flagged = trainer.strategy.reduce_boolean_decision(flagged, all=False)
        if flagged:
            checkpoint_and_leave(trainer, self.exp_dir, FLAG.policy)


def checkpoint_and_leave(trainer: Any, exp_dir: Path, policy: RequeuePolicy) -> None:
    from launcher.layout import CHECKPOINT_DIR, LAST_CHECKPOINT

    path = exp_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    trainer.save_checkpoint(str(path))
    # Rank 0 decides for all: SIGTERM, Ctrl-C (or no scheduler to requeue with) mean stop.
    stop, code = trainer.strategy.broadcast((FLAG.stops, FLAG.exit_code), src=0)
    step = trainer.global_step
    if stop:
        _leave(trainer, exp_dir, STOPPED, f"stopped at step {step} by {FLAG.cause}; "
               f"checkpoint {path}; launch the same command again to continue",
               lambda: Stopped(code))
    used = restart_count()
    if used >= policy.max_requeues:
        _leave(trainer, exp_dir, OUT_OF_RETRIES,
               f"warning signal at step {step} with {used} of {policy.max_requeues} "
               f"requeue(s) used: out of retries; checkpoint {path}", OutOfRetries,
               requeues=used)
    if trainer.is_global_zero:
        # Recorded first: the requeue ends this process soon after it is accepted.
        write_status(exp_dir, REQUEUED, step=step, requeues=used + 1)
        job_id = requeue_this_job()
        log.info("requeued job %s at step %d (requeue %d of %d); checkpoint %s", job_id,
                 step, used + 1, policy.max_requeues, path)
    _leave(trainer, exp_dir, REQUEUED, None, Requeued, requeues=used + 1)


def _leave(trainer: Any, exp_dir: Path, state: str, message: str | None,
           ending: Any, **details: Any) -> None:
    if trainer.is_global_zero:
        if message:
            log.warning(message)
        write_status(exp_dir, state, step=trainer.global_step, **details)
    raise ending()
