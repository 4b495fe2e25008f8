"""The benchmark model and data: small enough to expose per-step overhead,
or wide enough (`hidden`, `layers`) for the step to be compute bound.

Shared verbatim by the launcher recipe and the hand-written baselines, so
every path trains exactly the same network on exactly the same batches.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


class MLP(nn.Module):
    """`model(**batch) -> (loss, stats, weight)`, the launcher's model contract."""

    def __init__(self, dim: int = 32, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, y: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        return loss, {"loss": loss.detach()}, torch.tensor(float(x.shape[0]))


class RandomData(Dataset):
    """`size` items of `dim` Gaussian features; the target is their sum."""

    def __init__(self, size: int = 4096, dim: int = 32, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, dim, generator=generator)
        self.y = self.x.sum(-1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}
