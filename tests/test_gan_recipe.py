"""The GAN recipe (egs3/toy2d/gan1) through `launch`, locally and on SLURM: it must learn.

The untrained generator puts all its points in a blob near the centre
(energy distance to the data about 1.4, no mode covered); trained, its
points must lie on the ring's modes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs3" / "toy2d" / "gan1"
# 16 epochs of 50 batches: 800 discriminator and 800 generator steps
SHORT = ["dataset.train.num_samples=12800", "trainer.max_epochs=16"]
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def check_learnt(run_dir: Path) -> dict:
    report = json.loads((run_dir / "evaluate.json").read_text())
    metrics = report["metrics"]
    untrained = metrics["test/untrained/energy_distance"]
    assert untrained > 1.0 and metrics["test/untrained/modes_covered"] == 0, metrics
    assert metrics["test/energy_distance"] < 0.05 * untrained, metrics
    assert metrics["test/modes_covered"] >= 6, metrics
    assert metrics["test/high_quality"] > 0.2, metrics
    assert report["weights"].endswith("valid.energy_distance.ave_1best.pth")
    assert (run_dir / "samples.png").read_bytes().startswith(PNG)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("train/discriminator_loss", "train/generator_loss",
                   "train/discriminator_grad_norm", "valid/energy_distance"):
        assert column in header, header
    log = (run_dir / "run.log").read_text()
    assert "test/untrained/energy_distance = " in log and "test/energy_distance = " in log
    return metrics


@pytest.mark.slow
def test_gan_learns_the_modes_locally(launch_cli, tmp_path):
    code, out, err = launch_cli(RECIPE, f"exp_root={tmp_path}", *SHORT)
    assert code == 0, err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert f"run directory: {run_dir}" in out
    check_learnt(run_dir)
    config = (run_dir / "config.yaml").read_text()
    assert "src.lightning_module.GANModule" in config and "src.model.GAN" in config


@pytest.mark.slow
@pytest.mark.slurm
def test_gan_learns_the_modes_on_slurm(slurm_cluster, launch_cli, tmp_path):
    code, out, err = launch_cli(RECIPE, "hydra/launcher=slurm", "--wait",
                                f"exp_root={tmp_path}", *SHORT)
    assert code == 0, out + err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "sweeps"]
    check_learnt(run_dir)
    assert "COMPLETED" in out
