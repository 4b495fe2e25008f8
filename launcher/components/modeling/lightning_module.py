"""The shared LightningModule: any `model(**batch) -> (loss, stats, weight)` trains.

Stats are logged as `train/<name>`, `valid/<name>` and `test/<name>`, averaged
over the epoch with `weight` (e.g. the number of utterances or tokens in the
batch) and synced across ranks. A recipe customises the loop by subclassing
and overriding `training_step`; the config selects the subclass through
`lightning_module._target_`.

With several optimizers (`optims`) the module optimizes manually: each
optimizer has a name, and `manual_update(loss, name)` updates one of them
(see `launcher.components.modeling.named_steps`); without a name it updates them all at once.

Checkpoints also carry the position inside the epoch, the random state and
the epoch's logged metrics so far, so a run stopped mid-epoch resumes exactly
where it was, and one stopped on the last batch of an epoch runs the epoch's
validation and end first (`launcher.compat.lightning_loops`). A subclass that overrides
`on_save_checkpoint`, `on_load_checkpoint`, `on_train_start`,
`on_train_batch_start`, `on_train_epoch_end` or `on_before_optimizer_step`
calls `super()` to keep that and clipping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from launcher.compat.lightning import batch_index, set_rng_states
from launcher.compat.lightning_loops import (
    EPOCH_END,
    VALIDATION,
    move_past_last_step,
    owed_at_save,
    settle_validation_counters,
    take_the_plateau_step,
)
from launcher.compat.lightning_metrics import pack_logged_metrics, restore_logged_metrics
from launcher.components.data.dataloader import build_dataloader, has_split, model_inputs
from launcher.components.modeling.exact_resume import (
    NAMED_STEPS_KEY,
    RESUME_KEY,
    epoch_position,
    pack_rng_states,
    resume_batch_order,
    unpack_rng_states,
)
from launcher.components.modeling.finite_updates import FiniteUpdates
from launcher.components.modeling.named_steps import NamedSteps
from launcher.components.modeling.optimization_spec import (
    OptimizerSpec,
    build_optimizers,
    check_manual_trainer_options,
    named_steps_of,
)
from launcher.components.modeling.optimizer_config import named_optimizers
from launcher.errors import ConfigError


class ESPnetLightningModule(pl.LightningModule):
    def __init__(self, model: torch.nn.Module, config: Mapping) -> None:
        super().__init__()
        self.model = model
        self.config = config
        # Lightning steps one optimizer automatically; several need manual steps.
        self.automatic_optimization = not named_optimizers(config)
        check_manual_trainer_options(config)  # a clear error before Lightning's
        self.optimizer_specs: list[OptimizerSpec] = []
        self.named_steps: NamedSteps | None = None  # built with the optimizers
        self._named_steps_state: dict | None = None  # from a checkpoint, until then
        self._resume: dict | None = None
        self._rng_to_restore: dict | None = None
        self._metrics_to_restore: dict | None = None
        self._owed: str | None = None  # what the checkpoint's epoch still owed
        self._plateau_step_owed = False
        self.finite_updates = FiniteUpdates()

    def forward(self, **batch: Any) -> tuple[torch.Tensor, dict, torch.Tensor]:
        return self.model(**batch)

    # ---- steps -------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        loss, stats, weight = self.model(**model_inputs(batch))
        self.log_stats("train", stats, weight)
        steps = named_steps_of(loss)
        if self.automatic_optimization:
            if steps is not None:
                raise ConfigError("the model asks for named updates (OptimizationStep) but "
                                  "one unnamed optimizer is configured", key="optim",
                                  hint="name the optimizers: 'optimizers: {<name>: "
                                       "{optimizer: ..., params: ...}}'")
            return loss
        if steps is None:
            self.manual_update(loss)
            return loss
        for step in steps:  # ESPnet3's form: the model names the updates it wants
            self.manual_update(step.loss, step.name)
        return None

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        _, stats, weight = self.model(**model_inputs(batch))
        self.log_stats("valid", stats, weight)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        _, stats, weight = self.model(**model_inputs(batch))
        self.log_stats("test", stats, weight)

    def log_stats(self, prefix: str, stats: Mapping[str, Any], weight: Any) -> None:
        """Log each stat as `<prefix>/<name>`, weighted over the epoch and synced across ranks."""
        batch_size = _batch_size(weight)
        for name, value in stats.items():
            if value is None:
                continue
            if torch.is_tensor(value) and not value.is_floating_point():
                value = value.float()  # Lightning's `log` detaches a copy itself
            self.log(f"{prefix}/{name}", value, on_step=False, on_epoch=True,
                     batch_size=batch_size, sync_dist=True, prog_bar=name == "loss")

    def manual_update(self, loss: torch.Tensor,
                      name: str | Iterable[str] | None = None) -> bool:
        """Update the optimizer called `name` (a list of names, or all of them) with `loss`.

        Zeroes its gradients at the start of an accumulation window, back-propagates
        `loss` into its parameters only, and once the window is full averages,
        clips, steps the optimizer and its step scheduler. A name that is not due
        on this batch (`every_n_steps`) is left alone. Returns whether an optimizer
        stepped. The loss of a named update is logged as `train/<name>_loss`, the
        gradient norm before clipping as `train/<name>_grad_norm`.
        """
        steps, batch = self._named_steps(), self._batch_index()
        due = [s for s in steps.select(name) if s.due(batch)]
        stepped = steps.update(self, loss, name, batch)
        if name is not None:  # an unnamed update's loss is the model's, logged as train/loss
            for step in due:
                self.log(f"train/{step.name}_loss", loss.detach().float(), on_step=False,
                         on_epoch=True, batch_size=1, sync_dist=True)
        for step in stepped:
            if step.grad_norm is not None:
                self.log(f"train/{step.name}_grad_norm", step.grad_norm, on_step=False,
                         on_epoch=True, batch_size=1, sync_dist=True)
        return bool(stepped)

    def update_due(self, name: str) -> bool:
        """Whether `manual_update(loss, name)` acts on this batch; if not, skip its loss."""
        return self._named_steps().get(name).due(self._batch_index())

    def on_before_backward(self, loss: torch.Tensor) -> None:
        self.finite_updates.before_backward(loss)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.finite_updates.before_optimizer_step(optimizer, self.trainer.strategy,
                                                  self.trainer.world_size)
        if self.named_steps is not None:
            self.named_steps.before_optimizer_step(optimizer)

    def on_train_epoch_end(self) -> None:
        if self._plateau_step_owed:
            take_the_plateau_step(self.trainer)
            self._plateau_step_owed = False
        if self.named_steps is not None:
            self.named_steps.step_schedulers("epoch", self.current_epoch,
                                             self.trainer.callback_metrics)

    def _named_steps(self) -> NamedSteps:
        if self.named_steps is None:
            raise ConfigError("manual_update needs named optimizers, and 'optim' configures "
                              "one unnamed optimizer", key="optim",
                              hint="configure 'optims' instead (a one-entry list will do)")
        return self.named_steps

    def _batch_index(self) -> int:
        """Index of the current training batch, counted across epochs (and resumes)."""
        return batch_index(self.trainer)

    # ---- optimizers and data ------------------------------------------------
    def configure_model(self) -> None:
        """Under FSDP2 (`strategy: fsdp2`), shard the model over the data-parallel ranks,
        once, as the strategy's policy says."""
        from torch.distributed.fsdp import FSDPModule

        shard = getattr(self._trainer.strategy if self._trainer else None, "shard_model", None)
        if shard is not None and not isinstance(self.model, FSDPModule):
            shard(self.model, self.device_mesh["data_parallel"])

    def configure_optimizers(self) -> Any:
        self.optimizer_specs = build_optimizers(self.model, self.config)
        if not self.automatic_optimization:
            self.named_steps = NamedSteps(self.optimizer_specs, self.model)
            if self._named_steps_state is not None:
                self.named_steps.load_state_dict(self._named_steps_state)
                self._named_steps_state = None
        configs = [spec.lightning_config() for spec in self.optimizer_specs]
        return configs[0] if len(configs) == 1 else configs

    def train_dataloader(self) -> Any:
        loader = self._loader("train")
        if self._resume is not None:
            resume_batch_order(loader.batch_sampler, self._resume, self.trainer)
        return loader

    def val_dataloader(self) -> Any:
        return self._loader("valid") if has_split(self.config, "valid") else []

    def test_dataloader(self) -> Any:
        return self._loader("test")

    def _loader(self, split: str) -> Any:
        return build_dataloader(self.config, split, rank=self.global_rank,
                                world_size=self.trainer.world_size if self._trainer else 1)

    # ---- exact resume ---------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[RESUME_KEY] = {"epoch": self.current_epoch,
                                  **epoch_position(self.trainer),
                                  "owed": self._owed_at_save(),
                                  "metrics": pack_logged_metrics(self.trainer),
                                  "rng": pack_rng_states()}
        if self.named_steps is not None:
            checkpoint[NAMED_STEPS_KEY] = self.named_steps.state_dict()
        for logger in self.trainer.loggers:  # what a resume from here will not log again
            logger.save()

    def _owed_at_save(self) -> str | None:
        owed = owed_at_save(self.trainer)
        # An owed end without validation comes from the empty rest of the epoch's
        # batches, which only a resumable batch order gives (`resume_batch_order`); other
        # orders leave the epoch to Lightning, which counts it as done.
        sampler = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        if owed == EPOCH_END and not hasattr(sampler, "resume"):
            return None
        return owed

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resume = checkpoint.get(RESUME_KEY)
        state = checkpoint.get(NAMED_STEPS_KEY)
        if state is not None and self.named_steps is not None:
            self.named_steps.load_state_dict(state)
        else:  # optimizers are built after this hook (for most strategies)
            self._named_steps_state = state
        resume = self._resume or {}
        packed = resume.get("rng")
        self._rng_to_restore = None if packed is None else unpack_rng_states(packed)
        self._metrics_to_restore = resume.get("metrics")
        self._owed = resume.get("owed")
        if self._owed is not None and "loops" in checkpoint:
            move_past_last_step(checkpoint["loops"], self._owed)

    def on_train_start(self) -> None:
        self.finite_updates.check_every = max(1, self.trainer.log_every_n_steps)
        if self._metrics_to_restore is not None:
            restore_logged_metrics(self.trainer, self._metrics_to_restore)
            self._metrics_to_restore = None
            self._plateau_step_owed = True
        if self._owed is not None:
            if self._owed == VALIDATION:
                settle_validation_counters(self.trainer)
            # The epoch's validation and end, as the uninterrupted run did them right
            # after the step, start from the random state it had then.
            self._restore_rng()
            self._owed = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Restored here, right before the next step, as an uninterrupted run has it.
        self._restore_rng()

    def _restore_rng(self) -> None:
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None


def _batch_size(weight: Any) -> Any:
    """The weight of a batch's stats, as Lightning's `log` takes it. A tensor stays one,
    where it is (Lightning only multiplies, adds and divides by it): reading it would
    make every step wait for the GPU."""
    if torch.is_tensor(weight):
        return weight.detach() if weight.requires_grad else weight
    return max(1, int(weight))
