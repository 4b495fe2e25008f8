"""Points from a ring of Gaussians, generated from a seed (no download).

`mixture.modes` Gaussians of standard deviation `mixture.std` sit evenly on
a circle of radius `mixture.radius`: the classic toy problem on which a GAN
that drops modes is easy to see. The model gets the same `mixture` block to
score its samples against. A batch is fetched in one indexing operation (`__getitems__`), so
the data loader costs nothing next to the two networks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch.utils.data import Dataset

MIXTURE = {"modes": 8, "radius": 2.0, "std": 0.05}


def mode_centres(mixture: Mapping) -> torch.Tensor:
    angles = torch.arange(int(mixture["modes"])) * (2 * math.pi / int(mixture["modes"]))
    return float(mixture["radius"]) * torch.stack([angles.cos(), angles.sin()], dim=1)


class GaussianRing(Dataset):
    def __init__(self, num_samples: int = 25600, seed: int = 0,
                 mixture: Mapping = MIXTURE) -> None:
        generator = torch.Generator().manual_seed(seed)
        which = torch.randint(int(mixture["modes"]), (num_samples,), generator=generator)
        noise = float(mixture["std"]) * torch.randn(num_samples, 2, generator=generator)
        self.points = mode_centres(mixture)[which] + noise

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.points[index]}

    def __getitems__(self, indices: list[int]) -> dict:
        return {"x": self.points[indices]}


def collate(batch: dict) -> dict:
    """The batch `__getitems__` built is already a batch."""
    return batch
