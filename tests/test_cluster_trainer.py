"""The tones recipe's own Trainer (egs3/tones/asr1/src/trainer.py), selected with
`trainer._target_` only: cluster facts and throughput in the run directory, its own
checks of Trainer options before anything runs, and the recipe still learns."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs3" / "tones" / "asr1"
CLUSTER_TRAINER = "+trainer._target_=src.trainer.ClusterTrainer"
CHANCE_TER = 0.9
# 640 utterances in batches of 16, 5 epochs: 200 steps, at a higher learning rate
SMALL = ["dataloader.batch_size=16", "dataset.train.num_utts=640", "dataset.valid.num_utts=64",
         "dataset.test.num_utts=100", "trainer.max_epochs=5", "optim.lr=0.01"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def check_cluster_files(run_dir: Path, epochs: int, samples_per_epoch: int) -> dict:
    info = json.loads((run_dir / "cluster.json").read_text())
    assert info["world_size"] == len(info["ranks"]) == 1
    (rank,) = info["ranks"]
    assert rank["global_rank"] == 0 and rank["cpus"] >= 1 and rank["gpus"] == []
    assert rank["accelerator"] == "CPUAccelerator"
    with (run_dir / "throughput.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    assert {int(r["samples"]) for r in rows} == {samples_per_epoch}
    assert all(float(r["samples_per_s"]) > 0 for r in rows)
    return rank


@pytest.mark.slow
def test_cluster_trainer_writes_node_facts_and_throughput_and_the_model_learns(
        launch_cli, tmp_path):
    code, _, err = launch_cli(RECIPE, f"exp_root={tmp_path}", CLUSTER_TRAINER, *SMALL)
    assert code == 0, err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    rank = check_cluster_files(run_dir, epochs=5, samples_per_epoch=640)
    assert rank["node"] == socket.gethostname() and rank["slurm_job_id"] is None
    report = json.loads((run_dir / "evaluate.json").read_text())
    assert report["metrics"]["test/ter"] < 0.4 * CHANCE_TER, report
    assert "src.trainer.ClusterTrainer" in (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("override,key,words", [
    ("+trainer.precision=16-mixed", "trainer.precision", "bf16-mixed"),
    ("trainer.max_epochs=-1", "trainer.max_epochs", "no end"),
])
def test_cluster_trainer_refuses_options_before_anything_runs(launch_cli, tmp_path, override,
                                                              key, words):
    code, _, err = launch_cli(RECIPE, f"exp_root={tmp_path}", CLUSTER_TRAINER, override)
    assert code == 2, err
    assert f"key '{key}'" in err and words in err and "Traceback" not in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_shared_trainer_accepts_what_the_cluster_trainer_refuses(launch_cli, tmp_path):
    code, _, err = launch_cli(RECIPE, f"exp_root={tmp_path}", "+trainer.precision=16-mixed",
                                "--dry-run")
    assert code == 0, err
