"""The tones recipe end to end through the real `launch` command: it must learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs3" / "tones" / "asr1"
LAUNCH = Path(sys.executable).parent / "launch"
CHANCE_TER = 0.9  # a random digit per reference digit is wrong 9 times in 10


@pytest.mark.slow
def test_tones_learns_far_below_chance(tmp_path):
    result = subprocess.run(
        [str(LAUNCH), "egs3/tones/asr1", f"exp_root={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "default"
    assert f"run directory: {run_dir}" in result.stdout
    report = json.loads((run_dir / "evaluate.json").read_text())
    assert report["metrics"]["test/ter"] < 0.3 * CHANCE_TER, report
    assert report["weights"].endswith("valid.loss.ave_2best.pth")
    for name in ("config.yaml", "run.log", "metrics.csv", "stats/train/feats_stats.npz",
                 "stats/valid/feats_shape", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    log = (run_dir / "run.log").read_text()
    assert "\r" not in log and "\r" not in result.stdout + result.stderr
    assert "epoch 6/6  batch 47/47  step 282  loss" in log  # plain progress lines
    assert "src.model.TonesCTC" in (run_dir / "config.yaml").read_text()


def test_train_without_collected_stats_says_what_to_run(launch_cli, tmp_path):
    """Refused while planning: nothing is written, no job starts to fail at its first batch."""
    code, _, err = launch_cli(RECIPE, f"exp_root={tmp_path}", "stages=[train]",
                              "dataset.train.num_utts=8", "dataset.valid.num_utts=8")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "command-line override 'stages=[train]'" in line
    assert "model.stats_file is" in line and "stages=[collect_stats,train]" in line
    assert list(tmp_path.iterdir()) == []


ESPNET3_RUN = ("trainer.max_epochs=2", "dataset.train.0.dataset.num_utts=128",
               "dataset.valid.0.dataset.num_utts=32", "dataset.test.0.dataset.num_utts=32")


def only_run(exp_dir: Path) -> Path:
    (run_dir,) = [p for p in exp_dir.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.slow
def test_espnet3_spelling_with_the_pages_system_module_and_trainer(tmp_path):
    """`python run.py` in the recipe folder with ESPnet3's flags and conf/training.yaml:
    ESPnet3's keys, and src/system.py building the recipe's own LightningModule and
    Trainer as ESPnet3's page sketches it; the run in its exp_dir."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "run.py", "--stages", "all", "--training_config",
         "conf/training.yaml", f"exp_dir={tmp_path}", *ESPNET3_RUN],
        cwd=RECIPE, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run(tmp_path)  # overrides: a subfolder of exp_dir
    config = (run_dir / "config.yaml").read_text()
    assert "src.system.MySystem" in config and "exp_tag: training" in config
    assert (run_dir / "cluster.json").is_file()  # the recipe's Trainer ran
    report = json.loads((run_dir / "evaluate.json").read_text())
    assert report["weights"].endswith("valid.loss.ave_2best.pth")
    for name in ("stats/train/feats_stats.npz", "stats/train/feats_shape",
                 "stats/valid/feats_shape", "stats/train/stats_keys"):
        assert (run_dir / name).is_file(), name
