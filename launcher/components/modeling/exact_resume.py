"""What a checkpoint carries so that a run resumes exactly, and resuming on another number
of ranks without skipping or repeating a sample.

Next to Lightning's own state, the LightningModule saves the position inside the
epoch, the random state, the epoch's logged metrics so far and the number of
ranks that trained (`RESUME_KEY`). The batch order of an epoch is one global
order dealt out to the ranks (`launcher.components.data.batch_order`), so N ranks
that each trained `b` batches of `s` samples have trained exactly the first
N·b·s positions of it. A resume on M ranks deals out the rest of the epoch to
M ranks: every sample of the epoch is trained once (but for the padding that
gives every rank as many batches, as DistributedSampler pads), though the
batches are not those N ranks would have made (a global batch of another size
is another optimisation anyway). `run.log` says so; a loader whose order cannot be
converted (ESPnet's iterators, a sampler of the config's) says that its
samples may be skipped or repeated until the epoch ends.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from typing import Any

import torch

log = logging.getLogger("launcher.components.modeling.exact_resume")
RESUME_KEY = "launcher_resume"
NAMED_STEPS_KEY = "launcher_named_steps"


def pack_rng_states() -> torch.Tensor:
    """torch, numpy and Python random states as one byte tensor, which Lightning's
    weights-only checkpoint loading accepts (numpy arrays it would refuse)."""
    from launcher.compat.lightning import collect_rng_states

    blob = pickle.dumps(collect_rng_states(include_cuda=torch.cuda.is_available()))
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()


def unpack_rng_states(packed: torch.Tensor) -> dict:
    return pickle.loads(packed.numpy().tobytes())


def epoch_position(trainer: Any) -> dict[str, int]:
    """The ranks and, with a resumable batch order, how many positions of the epoch's
    global order they have trained."""
    from launcher.compat.lightning import batches_done_this_epoch

    done = batches_done_this_epoch(trainer)
    position = {"batches_done": done, "world_size": int(trainer.world_size)}
    sampler = getattr(trainer.train_dataloader, "batch_sampler", None)
    if hasattr(sampler, "resume_at"):
        position["positions_done"] = done * sampler.batch_size * int(trainer.world_size)
    return position


def resume_batch_order(sampler: Any, resume: Mapping, trainer: Any) -> None:
    """Point a resumable sampler at the first batch not yet trained on (on another number
    of ranks, at the first position of the global order not yet trained on). An epoch
    whose end is still owed keeps its (empty) rest, which is what ends it."""
    epoch, done = int(resume["epoch"]), int(resume["batches_done"])
    saved, ranks = int(resume.get("world_size", trainer.world_size)), int(trainer.world_size)
    if saved != ranks:
        _convert(sampler, resume, trainer, saved)
        return
    if not hasattr(sampler, "resume"):
        return
    if done >= len(sampler) and resume.get("owed") is None:
        epoch, done = epoch + 1, 0
    sampler.set_epoch(epoch)
    sampler.resume(epoch, done)


def _convert(sampler: Any, resume: Mapping, trainer: Any, saved: int) -> None:
    from launcher.compat.lightning_loops import set_batches_done

    epoch, ranks = int(resume["epoch"]), int(trainer.world_size)
    position = resume.get("positions_done")
    if position is None or not hasattr(sampler, "resume_at"):
        log.warning(
            "the checkpoint was written by %d rank(s) and this run has %d; this training "
            "loader's batch position cannot be converted, so samples of epoch %d may be "
            "skipped or repeated until it ends", saved, ranks, epoch)
        if hasattr(sampler, "resume"):
            sampler.set_epoch(epoch)
            sampler.resume(epoch, min(int(resume["batches_done"]), len(sampler)))
        return
    # An epoch whose batches are all done counts as so many batches of this run's (its
    # end, owed or not, then goes as Lightning has it).
    position = int(position)
    sampler.set_epoch(epoch)
    sampler.resume_at(epoch, position)
    set_batches_done(trainer, len(sampler) - sampler.batches_left(epoch))
    if trainer.is_global_zero and 0 < position < sampler.size:
        padding = (position - sampler.size) % ranks
        log.info(
            "the checkpoint was written by %d rank(s) and this run has %d: the rest of "
            "epoch %d (from sample %d of %d in its order) is dealt out to %d rank(s); no "
            "sample is skipped%s, but its batches differ from those %d rank(s) would have "
            "made", saved, ranks, epoch, position, sampler.size, ranks,
            f", {padding} repeated so that every rank has as many" if padding
            else " or repeated", saved)
