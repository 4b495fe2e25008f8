"""The shared LightningModule: any `model(**batch) -> (loss, stats, weight)` trains.

Stats are logged as `train/<name>`, `valid/<name>` and `test/<name>`, averaged
over the epoch with `weight` (e.g. the number of utterances or tokens in the
batch) and synced across ranks. A recipe customises the loop by subclassing
and overriding `training_step`; the config selects the subclass through
`lightning_module._target_`.

Checkpoints also carry the position inside the epoch and the random state,
so a run stopped mid-epoch resumes exactly where it was (a subclass that
overrides `on_save_checkpoint`, `on_load_checkpoint` or
`on_train_batch_start` calls `super()` to keep that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from launcher.data import build_dataloader, has_split
from launcher.optim import OptimizerSpec, build_optimizers


class ESPnetLightningModule(pl.LightningModule):
    def __init__(self, model: torch.nn.Module, config: Mapping) -> None:
        super().__init__()
        self.model = model
        self.config = config
        # Lightning steps one optimizer automatically; several need manual steps.
        self.automatic_optimization = config.get("optims") is None
        self.optimizer_specs: list[OptimizerSpec] = []
        self._resume: dict | None = None
        self._rng_to_restore: dict | None = None

    def forward(self, **batch: Any) -> tuple[torch.Tensor, dict, torch.Tensor]:
        return self.model(**batch)

    # ---- steps -------------------------------------------------------------
    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        loss, stats, weight = self.model(**batch)
        self.log_stats("train", stats, weight)
        if not self.automatic_optimization:
            self.manual_update(loss)
        return loss

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        _, stats, weight = self.model(**batch)
        self.log_stats("valid", stats, weight)

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        _, stats, weight = self.model(**batch)
        self.log_stats("test", stats, weight)

    def log_stats(self, prefix: str, stats: Mapping[str, Any], weight: Any) -> None:
        """Log each stat as `<prefix>/<name>`, weighted over the epoch and synced across ranks."""
        batch_size = max(1, int(weight.item() if torch.is_tensor(weight) else weight))
        for name, value in stats.items():
            if value is None:
                continue
            if torch.is_tensor(value):
                value = value.detach().float()
            self.log(f"{prefix}/{name}", value, on_step=False, on_epoch=True,
                     batch_size=batch_size, sync_dist=True, prog_bar=name == "loss")

    def manual_update(self, loss: torch.Tensor) -> None:
        """Default update for several optimizers: one backward, then every optimizer steps."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for opt in optimizers:
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in optimizers:
            opt.step()
        self._step_schedulers("step")

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            self._step_schedulers("epoch")

    def _step_schedulers(self, interval: str) -> None:
        for spec in self.optimizer_specs:
            if spec.scheduler is not None and spec.interval == interval:
                spec.scheduler.step()

    # ---- optimizers and data ------------------------------------------------
    def configure_optimizers(self) -> Any:
        self.optimizer_specs = build_optimizers(self.model, self.config)
        configs = [spec.lightning_config() for spec in self.optimizer_specs]
        return configs[0] if len(configs) == 1 else configs

    def train_dataloader(self) -> Any:
        loader = self._loader("train")
        if self._resume is not None:
            resume_batch_order(loader.batch_sampler, self._resume)
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
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        checkpoint[RESUME_KEY] = {"epoch": self.current_epoch,
                                  "batches_done": progress.processed,
                                  "rng": pack_rng_states()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resume = checkpoint.get(RESUME_KEY)
        packed = (self._resume or {}).get("rng")
        self._rng_to_restore = None if packed is None else unpack_rng_states(packed)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:
            # Restored here, right before the next step, as an uninterrupted run has it.
            from lightning_fabric.utilities.seed import _set_rng_states

            _set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None


RESUME_KEY = "launcher_resume"


def pack_rng_states() -> torch.Tensor:
    """torch, numpy and Python random states as one byte tensor, which Lightning's
    weights-only checkpoint loading accepts (numpy arrays it would refuse)."""
    import pickle

    from lightning_fabric.utilities.seed import _collect_rng_states

    blob = pickle.dumps(_collect_rng_states(include_cuda=torch.cuda.is_available()))
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()


def unpack_rng_states(packed: torch.Tensor) -> dict:
    import pickle

    return pickle.loads(packed.numpy().tobytes())


def resume_batch_order(sampler: Any, resume: Mapping) -> None:
    """Point a resumable sampler at the first batch not yet trained on."""
    if not hasattr(sampler, "resume"):
        return
    epoch, done = int(resume["epoch"]), int(resume["batches_done"])
    if done >= len(sampler):
        epoch, done = epoch + 1, 0
    sampler.set_epoch(epoch)
    sampler.resume(epoch, done)
