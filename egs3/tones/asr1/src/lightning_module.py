"""A LightningModule for this recipe that ignores exploding batches (docs/training_loop.md).

    launch egs3/tones/asr1 lightning_module._target_=src.lightning_module.ClippedLossModule
"""

from __future__ import annotations

import torch

from launcher.components.modeling.lightning_module import ESPnetLightningModule

MAX_LOSS = 1e3


class ClippedLossModule(ESPnetLightningModule):
    """A batch whose loss explodes contributes nothing to the update.

    Its loss is multiplied by zero rather than left out (`return None`): under
    DDP every rank must take part in every backward pass, and a rank that left
    one out would leave the others waiting. The comparison stays on the
    device, so no step waits for the GPU. (A NaN or infinite loss needs nothing
    here: the shared module drops such updates on every rank.)
    """

    def training_step(self, batch, batch_idx):
        loss, stats, weight = self.model(**batch)
        self.log_stats("train", stats, weight)
        return torch.where(loss > MAX_LOSS, loss * 0.0, loss)
