"""Updates from non-finite gradients are dropped on every rank, without a per-step sync.

A NaN or infinite loss (a bad utterance, an overflow) would otherwise write
NaN into every weight. ESPnet3 checks the loss and gathers that verdict from
all ranks at every step, which makes every step wait for the GPU. Here the
check is on the gradients right before the optimizer step: under DDP they
are already averaged across ranks by the gradient all-reduce, so every rank
reaches the same verdict from the same numbers with no collective of its own
(a sharded strategy adds one small all-reduce, still never read by the host).
On an accelerator, a bad update's gradients are set to zero on the device, so
the batch changes nothing but the optimizer's running averages, which decay
by one step; on a CPU, where deciding costs no wait, the update is skipped
outright.

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
    """Too many updates in a row had non-finite gradients."""


class FiniteUpdates:
    def __init__(self, check_every: int = 50, max_consecutive: int = MAX_CONSECUTIVE) -> None:
        self.check_every = max(1, int(check_every))
        self.max_consecutive = max_consecutive
        self._steps = 0
        self._in_a_row: Any = 0  # a tensor on the gradients' device, on an accelerator
        self._dropped: Any = 0
        self._reported = 0

    def before_optimizer_step(self, optimizer: Any, strategy: Any = None) -> None:
        """Drop this update if any gradient of `optimizer` is not finite (on every rank)."""
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        norms = torch._foreach_norm(grads)
        if _on_host(grads, strategy):
            # No device to wait for: decide here, and skip the update outright (an
            # optimizer leaves parameters without gradients alone, momentum included).
            finite = math.isfinite(sum(n.item() for n in norms))
            if not finite:
                for param in params:
                    param.grad = None
            self._count(not finite)
            return
        finite = torch.isfinite(torch.stack(norms)).all()
        if _sharded(strategy):
            finite = strategy.reduce(finite.float(), reduce_op="min") > 0
        zero = torch.zeros((), dtype=grads[0].dtype, device=finite.device)
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
            log.warning("dropped %d update(s) with non-finite gradients so far "
                        "(%d in a row now)", dropped, in_a_row)
            self._reported = dropped
        if in_a_row >= self.max_consecutive:
            raise TrainingDiverged(
                f"training diverged: the last {in_a_row} updates all had NaN or infinite "
                "gradients. HINT: lower the learning rate, clip gradients "
                "(trainer.gradient_clip_val), or check the data for broken utterances")


def _on_host(grads: list, strategy: Any) -> bool:
    return grads[0].device.type == "cpu" and not _sharded(strategy)


def _sharded(strategy: Any) -> bool:
    return type(strategy).__name__ in ("FSDPStrategy", "DeepSpeedStrategy")
