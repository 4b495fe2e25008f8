"""The local executor: rank processes started by the launcher, sweeps, failures."""

from __future__ import annotations

import json
from pathlib import Path

PROBE = "lightning_module._target_=src.probe.ProbeModule"


def run_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps")


def probes(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("probe.rank*.json"))]


def test_two_process_ddp_makes_one_run_directory(launch_cli, toy_recipe, monkeypatch):
    # variables of an allocation we pretend to submit from must not reach the job
    monkeypatch.setenv("SLURM_JOB_LEAK_MARK", "1")
    monkeypatch.setenv("OTHER_LEAK_MARK", "1")
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", PROBE,
                                "resources.processes_per_node=2")
    assert code == 0, out + err
    (run_dir,) = run_dirs(exp)
    ranks = probes(run_dir)
    assert [r["global_rank"] for r in ranks] == [0, 1]
    assert {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    # each rank is a process the launcher started, not a re-run of the command line
    assert all("submitit" in " ".join(r["argv"]) for r in ranks)
    assert ranks[0]["weights_sha"] == ranks[1]["weights_sha"], "gradients were not synced"
    assert ranks[0]["steps"] == 4  # 64 samples / 2 ranks / batch 16 = 2 steps x 2 epochs
    assert ranks[0]["leaked"] == ["OTHER_LEAK_MARK"]
    assert (run_dir / "run.log").is_file() and (run_dir / "run.rank1.log").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_sweep_with_a_failing_job_reports_it_and_finishes_the_other(launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", "-m", "+model.fail=false,true")
    assert code == 1
    assert "1 of 2 job(s) failed" in err
    good, bad = (exp / d for d in sorted(p.name for p in run_dirs(exp)))
    assert "model.fail=false" in good.name and "model.fail=true" in bad.name  # canonical
    assert (good / "checkpoints" / "last.ckpt").is_file()
    assert "COMPLETED  +model.fail=False" in out
    assert "FAILED     +model.fail=True" in out
    assert f"log: {bad}/run.log" in out
    log = (bad / "run.log").read_text()
    assert "Traceback" in log and "deliberate failure" in log
    registry = json.loads(next((exp / "sweeps").glob("*/jobs.json")).read_text())
    assert [j["state"] for j in registry["jobs"]] == ["COMPLETED", "FAILED"]
