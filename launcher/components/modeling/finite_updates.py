"""Updates from non-finite gradients are dropped on every rank, without a per-step sync.

A NaN or infinite loss (a bad utterance, an overflow) would otherwise write
NaN into every weight. ESPnet3 checks the loss and gathers that verdict from
all ranks at every step, which makes every step wait for the GPU. Here the
check is on the gradients right before the optimizer step: under DDP they
are already averaged across ranks by the gradient all-reduce, so every rank
reaches the same verdict from the same numbers with no collective of its own
(a sharded strategy adds one small all-reduce, still never read by the host).
A bad update's gradients are set to zero on the device, so the batch changes
nothing but the optimizer's running averages, which decay by one step.

The host reads the count of dropped updates only every `log_every_n_steps`
optimizer steps, the cadence at which Lightning already reads logged values:
it logs how many were dropped, and stops the run with an error once
`MAX_CONSECUTIVE` in a row were (ESPnet3 stops after 100 as well).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from launcher.errors import LauncherError

MAX_CONSECUTIVE = 100
log = logging.getLogger(__name__)


class TrainingDiverged(LauncherError):
    """Too many updates in a row had non-finite gradients."""


class FiniteUpdates:
    def __init__(self, check_every: int = 50, max_consecutive: int = MAX_CONSECUTIVE) -> None:
        self.check_every = max(1, int(check_every))
        self.max_consecutive = max_consecutive
        self._steps = 0
        self._in_a_row: torch.Tensor | None = None  # on the gradients' device
        self._dropped: torch.Tensor | None = None
        self._reported = 0

    def before_optimizer_step(self, optimizer: Any, strategy: Any = None) -> None:
        """Zero the gradients of `optimizer` if any is not finite (on every rank alike)."""
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        if not grads:
            return
        finite = torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()
        if _sharded(strategy):
            finite = strategy.reduce(finite.float(), reduce_op="min") > 0
        zero = torch.zeros((), dtype=grads[0].dtype, device=finite.device)
        for grad in grads:
            torch.where(finite, grad, zero, out=grad)
        self._count(finite)

    def _count(self, finite: torch.Tensor) -> None:
        bad = (~finite).to(torch.int64)
        if self._in_a_row is None:
            self._in_a_row, self._dropped = bad.clone(), bad.clone()
        else:
            self._in_a_row = (self._in_a_row + bad) * bad
            self._dropped += bad
        self._steps += 1
        if self._steps % self.check_every == 0:
            self.check()

    def check(self) -> None:
        """Read the counts (a host sync, hence only at the logging cadence)."""
        if self._dropped is None:
            return
        dropped, in_a_row = int(self._dropped), int(self._in_a_row)
        if dropped > self._reported:
            log.warning("dropped %d update(s) with non-finite gradients so far "
                        "(%d in a row now)", dropped, in_a_row)
            self._reported = dropped
        if in_a_row >= self.max_consecutive:
            raise TrainingDiverged(
                f"training diverged: the last {in_a_row} updates all had NaN or infinite "
                "gradients. HINT: lower the learning rate, clip gradients "
                "(trainer.gradient_clip_val), or check the data for broken utterances")


def _sharded(strategy: Any) -> bool:
    return type(strategy).__name__ in ("FSDPStrategy", "DeepSpeedStrategy")
