"""Updates from a non-finite loss or gradients are dropped on every rank, without a
per-step sync.

A NaN or infinite loss (a bad utterance, an overflow) would otherwise write
NaN into every weight. ESPnet3 checks the loss and gathers that verdict from
all ranks at every step, which makes every step wait for the GPU. Here:

- alone (one process), the loss is checked as it goes into `backward`: one
  number, nothing to agree on, no pass over the weights;
- with several ranks, the gradients are checked right before the optimizer
  step: DDP's gradient all-reduce has already averaged them, so a NaN on any
  rank is a NaN on all, and every rank reaches the same verdict from the same
  numbers with no collective of its own (a sharded strategy, whose gradients
  are split across ranks, adds one small all-reduce, never read by the host).

On a CPU, where deciding costs no wait, a bad update is skipped outright (the
optimizer leaves parameters without gradients alone, momentum included). On
an accelerator the gradients are set to zero on the device instead, so the
batch changes nothing but the optimizer's running averages, which decay by
one step.

The host reads the count of dropped updates only every `log_every_n_steps`
optimizer steps, the cadence at which Lightning already reads logged values:
it logs how many were dropped, and stops the run with an error once
`MAX_CONSECUTIVE` in a row were (ESPnet3 stops after 100 as well).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from launcher.errors import LauncherError

MAX_CONSECUTIVE = 100
log = logging.getLogger(__name__)


class TrainingDiverged(LauncherError):
    """Too many updates in a row had a non-finite loss or gradients."""


class FiniteUpdates:
    def __init__(self, check_every: int = 50, max_consecutive: int = MAX_CONSECUTIVE) -> None:
        self.check_every = max(1, int(check_every))
        self.max_consecutive = max_consecutive
        self._steps = 0
        self._in_a_row: Any = 0  # tensors on the device, on an accelerator
        self._dropped: Any = 0
        self._reported = 0
        self._loss_finite: Any = True  # of the losses since the last update

    def before_backward(self, loss: torch.Tensor) -> None:
        """Note whether `loss` is finite (all of them, when several make one update)."""
        finite = math.isfinite(loss.item()) if loss.device.type == "cpu" \
            else torch.isfinite(loss.detach())
        self._loss_finite = finite & self._loss_finite

    def before_optimizer_step(self, optimizer: Any, strategy: Any = None,
                              world_size: int = 1) -> None:
        """Drop this update if its loss (alone) or any of its gradients (with several
        ranks) was not finite; the same on every rank."""
        finite, self._loss_finite = self._loss_finite, True
        several = world_size > 1 or _sharded(strategy)
        if finite is True and not several:  # every step's case: nothing to look at
            self._count(False)
            return
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        if several:
            finite = _gradients_finite(grads, strategy)
        if isinstance(finite, bool):
            if not finite:
                for param in params:
                    param.grad = None
            self._count(not finite)
            return
        zero = torch.zeros((), dtype=grads[0].dtype, device=grads[0].device)
        for grad in grads:
            torch.where(finite, grad, zero, out=grad)
        self._count((~finite).to(torch.int64))

    def _count(self, bad: Any) -> None:
        self._in_a_row = (self._in_a_row + bad) * bad
        self._dropped = self._dropped + bad
        self._steps += 1
        if self._steps % self.check_every == 0:
            self.check()

    def check(self) -> None:
        """Read the counts (a host sync on an accelerator, hence only at the cadence)."""
        dropped, in_a_row = int(self._dropped), int(self._in_a_row)
        if dropped > self._reported:
            log.warning("dropped %d update(s) with a non-finite loss or gradients so far "
                        "(%d in a row now)", dropped, in_a_row)
            self._reported = dropped
        if in_a_row >= self.max_consecutive:
            raise TrainingDiverged(
                f"training diverged: the last {in_a_row} updates all had a NaN or infinite "
                "loss or gradients. HINT: lower the learning rate, clip gradients "
                "(trainer.gradient_clip_val), or check the data for broken utterances")


def _gradients_finite(grads: list, strategy: Any) -> Any:
    """Whether every gradient is finite: a bool on a CPU, a device tensor elsewhere."""
    norms = torch._foreach_norm(grads)
    if grads[0].device.type == "cpu" and not _sharded(strategy):
        return math.isfinite(sum(n.item() for n in norms))
    finite = torch.isfinite(torch.stack(norms)).all()
    if _sharded(strategy):
        finite = strategy.reduce(finite.float(), reduce_op="min") > 0
    return finite


def _sharded(strategy: Any) -> bool:
    return type(strategy).__name__ in ("FSDPStrategy", "DeepSpeedStrategy")
