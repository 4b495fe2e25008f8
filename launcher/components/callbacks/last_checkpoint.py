"""The launcher's per-step duties (progress, preemption), carried by the callback
that saves `last.ckpt`.

Lightning calls every hook of every callback at every step, each inside a
profiler context, whether the callback implements the hook or not: about
30 us a callback per step on a CPU, 2.5-3% of a small model's step. Every run
has a ModelCheckpoint for `last.ckpt` (a hand-written script gets Lightning's
default one), so the duties ride on it instead of adding a callback: the
shared Trainer then pays for no more callbacks than a hand-written one. The
duties are plain objects with the hook methods they need.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

HOOKS = ("on_sanity_check_start", "on_train_start", "on_train_epoch_start",
         "on_train_batch_end", "on_train_epoch_end", "on_test_batch_end")


class LastCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint (all its keyword arguments) that also calls each duty's hooks,
    in order, after its own."""

    def __init__(self, duties: tuple[Any, ...] = (), **checkpoint: Any) -> None:
        super().__init__(**checkpoint)
        self.duties = tuple(duties)
        self._calls = {hook: [getattr(d, hook) for d in self.duties if _implements(d, hook)]
                       for hook in HOOKS}
        self._batch_end = self._calls["on_train_batch_end"]  # every step: one lookup less

    def _pass_on(self, hook: str, trainer: Any, pl_module: Any) -> None:
        for call in self._calls[hook]:
            call(trainer, pl_module)

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_sanity_check_start(trainer, pl_module)
        self._pass_on("on_sanity_check_start", trainer, pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_start(trainer, pl_module)
        self._pass_on("on_train_start", trainer, pl_module)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._pass_on("on_train_epoch_start", trainer, pl_module)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        for call in self._batch_end:
            call(trainer, pl_module, outputs, batch, batch_idx)

    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        self._pass_on("on_test_batch_end", trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._pass_on("on_train_epoch_end", trainer, pl_module)


def _implements(duty: Any, hook: str) -> bool:
    """Whether the duty has the hook, other than as Lightning's empty one (a duty that is a
    Callback, such as the learning-rate monitor, has every hook, with Lightning's own
    arguments, which the calls here do not pass)."""
    from pytorch_lightning.callbacks import Callback

    method = getattr(type(duty), hook, None)
    return method is not None and method is not getattr(Callback, hook, None)
