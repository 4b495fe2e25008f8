"""Adversarial training with two named optimizers, and a picture of what was learnt.

`training_step` updates the optimizers named `discriminator` and `generator`
in `optims`, each with its own loss; how often each one steps, accumulation,
clipping and schedulers come from the config (see launcher.components.modeling.named_steps).

The test stage also scores the generator training started from (built again
from the same seed), so `evaluate` reports the untrained value next to the
trained one, and it draws real, untrained and trained samples side by side
in `<run_dir>/samples.png`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from launcher.components.modeling.lightning_module import ESPnetLightningModule

log = logging.getLogger(__name__)
PLOT = "samples.png"
PLOTTED_POINTS = 2000


class GANModule(ESPnetLightningModule):
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        real = batch["x"]
        d_loss = self.model.discriminator_loss(real)
        self.manual_update(d_loss, "discriminator")
        if self.update_due("generator"):
            self.manual_update(self.model.generator_loss(len(real)), "generator")
        return d_loss.detach()

    # ---- evaluation: trained against untrained, and a plot ------------------
    def on_test_start(self) -> None:
        self.untrained = untrained_twin(self.config).to(self.device).eval()
        self.points: dict[str, list[torch.Tensor]] = {"real": [], "untrained": [],
                                                      "trained": []}

    def test_step(self, batch: dict, batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        _, stats, weight = self.untrained(**batch)
        self.log_stats("test/untrained", stats, weight)
        with torch.no_grad():
            n = len(batch["x"])
            for name, points in (("real", batch["x"]), ("untrained", self.untrained.sample(n)),
                                 ("trained", self.model.sample(n))):
                self.points[name].append(points.cpu())

    def on_test_end(self) -> None:
        if self.trainer.is_global_zero:
            points = {k: torch.cat(v)[:PLOTTED_POINTS] for k, v in self.points.items()}
            path = plot_samples(points, self.model.centres.cpu(),
                                Path(self.config["run_dir"]) / PLOT)
            if path is not None:
                log.info("wrote %s", path)


def untrained_twin(config) -> torch.nn.Module:
    """The model exactly as training started: built right after seeding, as `train` does."""
    from hydra.utils import instantiate

    with torch.random.fork_rng():
        torch.manual_seed(int(config.get("seed", 0)))
        return instantiate(config["model"])


def plot_samples(points: dict[str, torch.Tensor], centres: torch.Tensor,
                 path: Path) -> Path | None:
    """Real, untrained and trained samples in three panels with the same axes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed, so no %s (pip install 'launcher[plots]')",
                    path.name)
        return None
    figure, axes = plt.subplots(1, len(points), figsize=(4 * len(points), 4.2),
                                sharex=True, sharey=True)
    limit = float(centres.abs().max()) * 1.6
    for ax, (name, xy) in zip(axes, points.items(), strict=True):
        ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0.4)
        ax.scatter(centres[:, 0], centres[:, 1], s=30, marker="x", color="black")
        ax.set_title(f"{name} ({len(xy)} points)")
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=80)
    plt.close(figure)
    tmp.replace(path)
    return path
