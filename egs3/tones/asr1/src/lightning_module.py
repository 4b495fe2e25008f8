"""A LightningModule for this recipe that skips exploding batches (docs/training_loop.md).

    launch egs3/tones/asr1 lightning_module._target_=src.lightning_module.ClippedLossModule
"""

from __future__ import annotations

import torch

from launcher.components.modeling.lightning_module import ESPnetLightningModule

MAX_LOSS = 1e3


class ClippedLossModule(ESPnetLightningModule):
    """Ignores batches whose loss explodes instead of stepping on them."""

    def training_step(self, batch, batch_idx):
        loss, stats, weight = self.model(**batch)
        self.log_stats("train", stats, weight)
        if not torch.isfinite(loss) or loss > MAX_LOSS:
            return None  # Lightning skips the optimizer step
        return loss
