"""Generator and discriminator for 2-D points, their losses, and how to score the samples.

The generator maps Gaussian noise to points; the discriminator scores points
as real or generated. Training uses the non-saturating GAN loss, with an R1
penalty on the discriminator's gradient at real points (Mescheder et al.,
2018), which keeps the pair from circling between modes.

`forward(x)` is for evaluation, in the shape the shared LightningModule
expects: `(loss, stats, weight)`, where the stats say how close the generated
points are to the real ones:

- `energy_distance`: 2E|X-Y| - E|X-X'| - E|Y-Y'|, zero exactly when the two
  distributions are equal;
- `modes_covered`: how many Gaussians receive at least a fifth of their fair
  share of generated points within 3 standard deviations;
- `high_quality`: the fraction of generated points within 3 standard
  deviations of some Gaussian.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.functional import softplus

from .data import MIXTURE, mode_centres


def mlp(inputs: int, hidden: int, outputs: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
    return nn.Sequential(*blocks, nn.Linear(hidden, outputs))


class GAN(nn.Module):
    def __init__(self, noise_dim: int = 2, hidden: int = 128, layers: int = 3,
                 r1_gamma: float = 0.1, mixture: Mapping = MIXTURE) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.r1_gamma = r1_gamma
        self.std = float(mixture["std"])
        self.generator = mlp(noise_dim, hidden, 2, layers)
        self.discriminator = mlp(2, hidden, 1, layers)
        self.register_buffer("centres", mode_centres(mixture), persistent=False)

    def sample(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, self.noise_dim, device=self.centres.device))

    # ---- training: one loss per named optimizer ------------------------------
    def discriminator_loss(self, x: torch.Tensor) -> torch.Tensor:
        real = x.detach().requires_grad_(self.r1_gamma > 0)
        fake = self.sample(len(x)).detach()
        real_score = self.discriminator(real)
        loss = softplus(-real_score).mean() + softplus(self.discriminator(fake)).mean()
        if self.r1_gamma > 0:
            (grad,) = torch.autograd.grad(real_score.sum(), real, create_graph=True)
            loss = loss + 0.5 * self.r1_gamma * grad.pow(2).sum(1).mean()
        return loss

    def generator_loss(self, n: int) -> torch.Tensor:
        return softplus(-self.discriminator(self.sample(n))).mean()

    # ---- evaluation ---------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict, torch.Tensor]:
        with torch.no_grad():
            fake = self.sample(len(x))
            stats = sample_quality(x, fake, self.centres, self.std)
        return stats["energy_distance"], stats, torch.tensor(float(len(x)))


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()


def sample_quality(real: torch.Tensor, fake: torch.Tensor, centres: torch.Tensor,
                   std: float) -> dict[str, torch.Tensor]:
    distance = torch.cdist(fake, centres)
    near = distance.min(1).values < 3 * std
    nearest = distance.argmin(1)
    fair_share = 1.0 / len(centres)
    share = torch.stack([((nearest == k) & near).float().mean() for k in range(len(centres))])
    return {"energy_distance": energy_distance(real, fake),
            "modes_covered": (share >= fair_share / 5).sum().float(),
            "high_quality": near.float().mean()}
