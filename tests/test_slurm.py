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
    """The tones recipe in ESPnet3's spelling (conf/training.yaml: its own System, module
    and Trainer): one array, each run in a subfolder of the config's exp_dir."""
    exp_dir = tmp_path / "espnet3"
    code, out, err = launch_cli(
        ROOT / "egs3" / "tones" / "asr1", "--config-name", "training",
        "hydra/launcher=slurm", "--wait", f"exp_root={tmp_path}", f"exp_dir={exp_dir}",
        "stages=[collect_stats,train]", "trainer.max_epochs=2",
        "dataset.train.0.dataset.num_utts=300", "dataset.valid.0.dataset.num_utts=64", "-m",
        "optimizer.lr=0.005,0.003")
    assert code == 0, out + err
    jobs = registry(tmp_path)["jobs"]
    arrays = {j["job_id"].split("_")[0] for j in jobs}
    assert len(arrays) == 1 and sorted(j["job_id"][-2:] for j in jobs) == ["_0", "_1"]
    assert set(sacct_states([j["job_id"] for j in jobs]).values()) == {"COMPLETED"}
    dirs = run_dirs(exp_dir)  # named from the overrides (cut to 80 characters, then a digest)
    assert len(dirs) == 2 and all(d.name.startswith("dataset.train.0.dataset") for d in dirs)
    for run_dir in dirs:
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert "valid/loss" in (run_dir / "metrics.csv").read_text()
        assert (run_dir / "stats" / "valid" / "feats_shape").is_file()
        ranks = json.loads((run_dir / "cluster.json").read_text())["ranks"]
        assert ranks[0]["slurm_job_id"] is not None  # the recipe's Trainer, in the job


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
    assert "fail=false" in good.name and (good / "checkpoints" / "last.ckpt").is_file()
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


def test_paths_with_spaces_and_hashes_reach_sbatch_whole(slurm_cluster, launch_cli, toy_recipe):
    """sbatch reads `#` as a comment and a space as the end of a directive value unless
    quoted: the run and its scheduler logs land where the dry run said."""
    exp = toy_recipe / "my runs #1"
    code, out, err = launch_cli(toy_recipe, "hydra/launcher=slurm", "--wait",
                                f"exp_root='{exp}'", "trainer.max_epochs=1")
    assert code == 0, out + err
    (run_dir,) = run_dirs(exp)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    (job,) = registry(exp)["jobs"]
    assert Path(job["stdout"]).is_file() and str(exp) in job["stdout"]
    assert sacct_states([job["job_id"]]) == {job["job_id"]: "COMPLETED"}


def test_a_second_job_of_a_running_run_leaves_it_alone(slurm_cluster, launch_cli, toy_recipe):
    """Two launches queued before either started: the first job to start owns the run
    folder; the other fails saying who owns it, and writes no status of its own."""
    exp = toy_recipe / "exp"
    command = ("hydra/launcher=slurm", f"exp_root={exp}", "+model.step_sleep_s=0.3",
               "trainer.max_epochs=4")
    first = launch_cli(toy_recipe, *command)
    second = launch_cli(toy_recipe, *command)
    assert first[0] == 0 and second[0] == 0, (first, second)
    jobs = [j for path in sorted((exp / "sweeps").glob("*/jobs.json"))
            for j in json.loads(path.read_text())["jobs"]]
    states = sacct_states([j["job_id"] for j in jobs], settle_s=180)
    assert sorted(states.values()) == ["COMPLETED", "FAILED"], states
    (run_dir,) = run_dirs(exp)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and not status.get("error")
    loser = next(j for j in jobs if states[j["job_id"]] == "FAILED")
    assert "is in use by job" in Path(loser["stderr"]).read_text()


def test_gpus_on_a_partition_without_any_are_refused_before_submitting(
        slurm_cluster, launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, "hydra/launcher=slurm", "+cluster=local",
                              f"exp_root={exp}", "resources.gpus_per_node=1")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "key 'resources.gpus_per_node'" in line and "partition 'debug' has no GPUs" in line
    assert not exp.exists()


def test_an_sbatch_refusal_is_one_line_and_leaves_no_sweep_folder(
        slurm_cluster, launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}",
                              "resources.mem_gb=100000")
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after sbatch's own words
    assert line.startswith("launch: error: the scheduler refused the jobs, nothing was queued")
    assert "Requested node configuration is not available" in line
    assert not (exp / "sweeps").exists()


def test_an_unknown_partition_is_refused_before_submitting(slurm_cluster, launch_cli,
                                                          toy_recipe):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}",
                              "resources.partition=gpu")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "key 'resources.partition'" in line and "no partition 'gpu'" in line
    assert "choose one of: debug" in line and not exp.exists()
    # A dry run still shows the script (for another cluster, say), and the refusal.
    code, out, _ = launch_cli(toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}",
                              "resources.partition=gpu", "--dry-run")
    assert code == 0 and "#SBATCH --partition=gpu" in out
    assert out.rstrip().splitlines()[-1].startswith("=== a launch here would be refused:")
