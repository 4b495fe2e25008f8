"""Named optimization steps: manual optimization (GANs, several losses) from config.

With `optims`, every optimizer has a name, and a LightningModule's
`training_step` updates one by name through `ESPnetLightningModule.manual_update`:

    d_loss = self.model.discriminator_loss(batch)
    self.manual_update(d_loss, "discriminator")
    if self.update_due("generator"):
        self.manual_update(self.model.generator_loss(batch), "generator")

One update of a name zeroes its gradients at the start of an accumulation
window, back-propagates the loss into that name's parameters only, and after
`accumulate` such calls averages the gradients over the window, clips them to
`clip_grad_norm`, steps the optimizer and its `interval: step` scheduler.
Each optims entry may set:

    every_n_steps: 1       due on every n-th training batch only; other calls do nothing
    accumulate: 1          backward calls averaged into one optimizer step
    clip_grad_norm: null   max L2 norm of this optimizer's gradients

Lightning refuses its own `gradient_clip_val` and `accumulate_grad_batches`
under manual optimization; these settings replace them, per optimizer.

Why gradients of the other names are set aside during a backward: a
generator loss flows through the discriminator too, and would otherwise leak
into a discriminator window that is still accumulating. Why clipping happens
in `on_before_optimizer_step`: only there are mixed-precision gradients
unscaled, so a norm means what the config says. A window left half full when
a checkpoint is written travels in the checkpoint, so resuming stays exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from launcher.components.modeling.optimization_spec import OptimizerSpec
from launcher.errors import ConfigError

log = logging.getLogger("launcher.components.modeling.named_steps")


@dataclass
class NamedStep:
    """One named optimizer and where its accumulation window stands."""

    spec: OptimizerSpec
    index: int  # position in the LightningModule's `optimizers()`
    params: list[torch.nn.Parameter]
    backwards: int = 0  # backward calls in the open window
    updates: int = 0  # optimizer steps taken so far
    grad_norm: float | None = None  # norm before clipping, at the latest update
    restored: list | None = None  # an open window's gradients from a checkpoint

    def window_gradients(self) -> list | None:
        """The gradients of the open window (None when no window is open)."""
        if not self.backwards:
            return None
        if self.restored is not None:
            return self.restored
        return [None if p.grad is None else p.grad.detach().clone() for p in self.params]

    def put_back_restored(self) -> None:
        """Lightning zeroes all gradients when fit starts; a resumed window gets its own back."""
        if self.restored is not None:
            for param, grad in zip(self.params, self.restored, strict=True):
                param.grad = None if grad is None else grad.to(param.device, param.dtype)
            self.restored = None

    @property
    def name(self) -> str:
        return self.spec.name

    def due(self, batch_index: int) -> bool:
        """True on every `every_n_steps`-th training batch (0-based index across epochs)."""
        return (batch_index + 1) % self.spec.every_n_steps == 0

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None


class NamedSteps:
    """The named optimizers of one LightningModule, stepped one name at a time."""

    def __init__(self, specs: Sequence[OptimizerSpec], model: torch.nn.Module) -> None:
        by_name = dict(model.named_parameters())
        self.steps = {spec.name: NamedStep(spec, i, [by_name[n] for n in spec.param_names])
                      for i, spec in enumerate(specs)}
        self._stepping: NamedStep | None = None

    @property
    def names(self) -> list[str]:
        return list(self.steps)

    def get(self, name: str) -> NamedStep:
        if name not in self.steps:
            raise ConfigError(f"no optimizer named '{name}' (configured: "
                              f"{', '.join(self.steps)})", key="optims",
                              hint=f"add an optims entry with 'name: {name}', or use one "
                                   "of the configured names in training_step")
        return self.steps[name]

    def select(self, names: str | Iterable[str] | None) -> list[NamedStep]:
        if names is None:
            return list(self.steps.values())
        return [self.get(names)] if isinstance(names, str) else [self.get(n) for n in names]

    # ---- one update ---------------------------------------------------------------
    def update(self, module: Any, loss: torch.Tensor, names: str | Iterable[str] | None,
               batch_index: int) -> list[NamedStep]:
        """Backward `loss` into the due names' parameters; step those whose window is full.

        Returns the steps that took an optimizer step.
        """
        for step in self.steps.values():
            step.put_back_restored()
        due = [s for s in self.select(names) if s.due(batch_index)]
        if not due:
            return []
        for step in due:
            if step.backwards == 0:
                step.zero_grad()
        self._backward_into(module, loss, due)
        optimizers = module.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        stepped = []
        for step in due:
            step.backwards += 1
            if step.backwards >= step.spec.accumulate:
                self._step(step, optimizers[step.index])
                stepped.append(step)
        return stepped

    def _backward_into(self, module: Any, loss: torch.Tensor, due: list[NamedStep]) -> None:
        """`manual_backward`, leaving the gradients of every other name as they were."""
        owned = {id(p) for step in due for p in step.params}
        aside = [(p, p.grad) for s in self.steps.values() if s not in due for p in s.params
                 if id(p) not in owned]
        for param, _ in aside:
            param.grad = None
        try:
            module.manual_backward(loss)
        finally:
            for param, grad in aside:
                param.grad = grad

    def _step(self, step: NamedStep, optimizer: Any) -> None:
        self._stepping = step
        try:
            optimizer.step()  # Lightning's wrapper: precision plugin, then our hook below
        finally:
            self._stepping = None
        step.zero_grad()
        step.backwards = 0
        step.updates += 1
        spec = step.spec
        if (spec.scheduler is not None and spec.interval == "step"
                and step.updates % spec.frequency == 0):
            spec.scheduler.step()

    def before_optimizer_step(self, optimizer: Any) -> None:
        """Average the window's gradients and clip them (called once they are unscaled)."""
        step = self._stepping
        if step is None:  # an optimizer stepped directly by recipe code: leave it alone
            return
        if step.backwards > 1:
            for param in step.params:
                if param.grad is not None:
                    param.grad.div_(step.backwards)
        if step.spec.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(step.params, step.spec.clip_grad_norm)
            step.grad_norm = float(norm)
        if step.spec.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(step.params, step.spec.clip_grad_value)

    # ---- epochs -----------------------------------------------------------------
    def step_schedulers(self, interval: str, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Step every scheduler with this interval (epoch: after `epoch` ends, 0-based)."""
        for step in self.steps.values():
            spec = step.spec
            if spec.scheduler is None or spec.interval != interval:
                continue
            if (epoch + 1) % spec.frequency:
                continue
            if spec.monitor is None:
                spec.scheduler.step()
                continue
            if spec.monitor not in metrics:
                raise ConfigError(
                    f"the scheduler of '{step.name}' monitors '{spec.monitor}', which was "
                    f"not logged (logged: {', '.join(sorted(metrics)) or 'nothing'})",
                    key=f"optims[{step.index}].scheduler.monitor",
                    hint="monitor a metric the model logs, e.g. valid/loss")
            spec.scheduler.step(float(metrics[spec.monitor]))

    # ---- checkpoints ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Counters, and the gradients of windows still open (so a resume continues them)."""
        return {name: {"backwards": step.backwards, "updates": step.updates,
                       "grads": step.window_gradients()}
                for name, step in self.steps.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, saved in state.items():
            step = self.steps.get(name)
            if step is None:
                log.warning("checkpoint has named step '%s', which is no longer configured; "
                            "ignored", name)
                continue
            step.backwards = int(saved["backwards"])
            step.updates = int(saved["updates"])
            step.restored = saved.get("grads") if step.backwards else None
