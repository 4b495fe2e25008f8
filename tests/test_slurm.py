"""Against the real local SLURM cluster (slurm/up): arrays, multi-node DDP, failures."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import sacct_states

ROOT = Path(__file__).resolve().parents[1]
PROBE = "lightning_module._target_=src.probe.ProbeModule"
pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def run_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps")


def registry(exp: Path) -> dict:
    (path,) = (exp / "sweeps").glob("*/jobs.json")
    return json.loads(path.read_text())


def test_tones_sweep_is_one_job_array_and_both_runs_train(slurm_cluster, launch_cli, tmp_path):
    code, out, err = launch_cli(
        ROOT / "egs3" / "tones" / "asr1", "hydra/launcher=slurm", "--wait",
        f"exp_root={tmp_path}", "stages=[collect_stats,train]", "trainer.max_epochs=2",
        "dataset.train.num_utts=300", "dataset.valid.num_utts=64", "-m",
        "optim.lr=0.005,0.003")
    assert code == 0, out + err
    jobs = registry(tmp_path)["jobs"]
    arrays = {j["job_id"].split("_")[0] for j in jobs}
    assert len(arrays) == 1 and sorted(j["job_id"][-2:] for j in jobs) == ["_0", "_1"]
    assert set(sacct_states([j["job_id"] for j in jobs]).values()) == {"COMPLETED"}
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2
    for run_dir in dirs:
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert "valid/loss" in (run_dir / "metrics.csv").read_text()


def test_two_node_ddp_syncs_gradients(slurm_cluster, launch_cli, toy_recipe, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_LEAK_MARK", "1")  # as if submitted from inside a job
    monkeypatch.setenv("OTHER_LEAK_MARK", "1")
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, "hydra/launcher=slurm", "--wait", PROBE,
                                f"exp_root={exp}", "resources.nodes=2")
    assert code == 0, out + err
    (run_dir,) = run_dirs(exp)
    ranks = [json.loads(p.read_text()) for p in sorted(run_dir.glob("probe.rank*.json"))]
    assert [r["global_rank"] for r in ranks] == [0, 1]
    assert {r["world_size"] for r in ranks} == {2}
    assert {r["node"] for r in ranks} == {"n1", "n2"}
    assert ranks[0]["weights_sha"] == ranks[1]["weights_sha"]
    assert ranks[0]["leaked"] == ["OTHER_LEAK_MARK"]


def test_failed_job_is_reported_with_its_log_and_the_other_completes(
        slurm_cluster, launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, "hydra/launcher=slurm", "--wait",
                                f"exp_root={exp}", "-m", "+model.fail=false,true")
    assert code == 1 and "1 of 2 job(s) failed" in err
    good, bad = run_dirs(exp)
    assert "fail=False" in good.name and (good / "checkpoints" / "last.ckpt").is_file()
    assert re.search(r"FAILED\s+\+model.fail=True", out)
    assert f"log: {bad}/run.log" in out
    assert "deliberate failure" in (bad / "run.log").read_text()
    states = sacct_states([j["job_id"] for j in registry(exp)["jobs"]])
    assert sorted(states.values()) == ["COMPLETED", "FAILED"]


def test_without_wait_launch_returns_once_queued(slurm_cluster, launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    started = time.monotonic()
    code, out, _ = launch_cli(toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}")
    assert code == 0 and "QUEUED" in out and "follow with" in out
    (job,) = registry(exp)["jobs"]
    deadline = started + 120
    while sacct_states([job["job_id"]], settle_s=0).get(job["job_id"]) != "COMPLETED":
        assert time.monotonic() < deadline, "the job did not complete"
        time.sleep(1)
    assert (Path(job["run_dir"]) / "checkpoints" / "last.ckpt").is_file()
