"""Never lose training, against the real local SLURM cluster: signals, requeues,
damaged checkpoints, retry budgets, a killed rank, relaunched sweeps."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import sacct_states

from launcher.status_file import read_status

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
PROBE = "lightning_module._target_=src.probe.ProbeModule"
SLOW = [PROBE, "hydra/launcher=slurm", "+model.dropout=0.3", "+model.step_sleep_s=0.3",
        "trainer.max_epochs=3", "++trainer.progress_interval_s=0",
        "++trainer.checkpoint_every_n_steps=1"]


def weights(run_dir: Path) -> str:
    return json.loads((run_dir / "probe.rank0.json").read_text())["weights_sha"]


def submit(launch_cli, recipe: Path, exp: Path, *extra: str) -> tuple[str, Path]:
    code, out, err = launch_cli(recipe, f"exp_root={exp}", *SLOW, *extra)
    assert code == 0, out + err
    (path,) = (exp / "sweeps").glob("*/jobs.json")
    (job,) = json.loads(path.read_text())["jobs"]
    return job["job_id"], Path(job["run_dir"])


def wait_for(what, check, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


def at_step(run_dir: Path, step: int) -> None:
    log = run_dir / "run.log"
    wait_for(f"step {step}", lambda: log.exists() and re.search(
        rf"  step {step}  ", log.read_text()))


def state_is(run_dir: Path, state: str, **details) -> None:
    def check():
        status = read_status(run_dir)
        return status.get("state") == state and all(status.get(k) == v
                                                     for k, v in details.items())
    wait_for(f"state {state} {details}", check)


def warn(job_id: str) -> None:
    """What SLURM sends before the time limit (--signal=USR2@120)."""
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, slurm_cluster):
    """The weights of the same run on SLURM without any interruption."""
    import shutil

    from conftest import TOY

    from launcher.cli import main

    recipe = tmp_path_factory.mktemp("clean") / "toy" / "recipe"
    shutil.copytree(TOY, recipe)
    exp = recipe.parent / "exp"
    assert main([str(recipe), f"exp_root={exp}", "--wait", *SLOW]) == 0
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    return weights(run_dir)


def test_two_warnings_mid_epoch_requeue_and_end_bitwise_equal(
        launch_cli, toy_recipe, uninterrupted):
    """Each warning requeues the same job, which resumes mid-epoch (three interruptions
    of a local run: tests/test_resume.py)."""
    job_id, run_dir = submit(launch_cli, toy_recipe, toy_recipe / "exp")
    for n, step in enumerate((3, 7), start=1):
        at_step(run_dir, step)
        warn(job_id)
        state_is(run_dir, "requeued", requeues=n)
    state_is(run_dir, "completed")
    log = (run_dir / "run.log").read_text()
    assert log.count("requeued job") == 2 and log.count("resuming from") == 2
    assert weights(run_dir) == uninterrupted
    assert sacct_states([job_id])[job_id] == "COMPLETED"


def test_truncated_newest_checkpoint_resumes_from_the_previous(
        launch_cli, toy_recipe, uninterrupted):
    job_id, run_dir = submit(launch_cli, toy_recipe, toy_recipe / "exp")
    at_step(run_dir, 4)
    warn(job_id)
    state_is(run_dir, "requeued", requeues=1)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # damaged while the job waits to restart
    state_is(run_dir, "completed")
    log = (run_dir / "run.log").read_text()
    assert "last.ckpt is unreadable" in log
    assert "resuming from the older checkpoint" in log
    assert weights(run_dir) == uninterrupted


def test_retry_budget_used_up_is_reported_and_the_run_kept(launch_cli, toy_recipe):
    job_id, run_dir = submit(launch_cli, toy_recipe, toy_recipe / "exp",
                             "+requeue.max_requeues=1")
    at_step(run_dir, 2)
    warn(job_id)
    state_is(run_dir, "requeued", requeues=1)
    at_step(run_dir, 6)
    warn(job_id)
    state_is(run_dir, "out_of_retries")
    assert sacct_states([job_id])[job_id] == "FAILED"
    assert "out of retries" in (run_dir / "run.log").read_text()
    for kept in ("config.yaml", "checkpoints/last.ckpt", "metrics.csv"):
        assert (run_dir / kept).is_file()


def test_killed_rank_ends_the_job_in_bounded_time_and_relaunch_resumes(
        launch_cli, toy_recipe):
    exp = toy_recipe / "exp"
    ddp = ["resources.nodes=2", "+trainer.strategy={name:ddp,timeout_s:20}"]
    job_id, run_dir = submit(launch_cli, toy_recipe, exp, *ddp)
    at_step(run_dir, 3)
    os.kill(int((run_dir / "pid.rank1").read_text()), signal.SIGKILL)
    killed = time.monotonic()
    wait_for("the job to end", lambda: sacct_states([job_id], settle_s=0).get(job_id)
             not in (None, "PENDING", "RUNNING", "COMPLETING"), timeout=90)
    assert time.monotonic() - killed < 90
    assert sacct_states([job_id])[job_id] == "FAILED"
    code, out, err = launch_cli(toy_recipe, f"exp_root={exp}", "--wait", *SLOW, *ddp)
    assert code == 0, out + err
    log = (run_dir / "run.log").read_text()
    assert "resuming from" in log and read_status(run_dir)["state"] == "completed"


def test_a_warning_to_a_two_node_run_checkpoints_on_both_and_requeues_once(
        launch_cli, toy_recipe):
    """The ranks agree on acting at the same batch (every PreemptionWatch.agree_every
    batches; one optimizer: one step a batch), so both stop there, one checkpoint is
    taken and the job requeued once."""
    from launcher.components.callbacks.preemption import PreemptionWatch

    agree_every = PreemptionWatch(Path(".")).agree_every
    # 2 steps an epoch on each of two ranks: 8 epochs make 16 steps
    job_id, run_dir = submit(launch_cli, toy_recipe, toy_recipe / "exp", "resources.nodes=2",
                             "trainer.max_epochs=8")
    at_step(run_dir, 2)
    warn(job_id)
    state_is(run_dir, "requeued", requeues=1)
    assert read_status(run_dir)["step"] % agree_every == 0
    state_is(run_dir, "completed")
    log = (run_dir / "run.log").read_text()
    assert log.count("requeued job") == 1 and "resuming from" in log
    assert sacct_states([job_id])[job_id] == "COMPLETED"


def test_relaunching_a_finished_sweep_submits_nothing(launch_cli, toy_recipe, slurm_cluster):
    exp = toy_recipe / "exp"
    args = [toy_recipe, f"exp_root={exp}", "hydra/launcher=slurm", "--wait", "-m",
            "optim.lr=0.05,0.01"]
    assert launch_cli(*args)[0] == 0
    code, out, _ = launch_cli(*args)
    assert code == 0
    assert "submitted job" not in out
    assert out.count("already complete: not submitted again") == 2
