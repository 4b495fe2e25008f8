"""A failed job is named with its exception line and the log holding its traceback;
`launch status` says what `--wait` said about a job that just ended; and no command
names a run folder that was never made (a job cancelled while queued, or one that
failed before its run began)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from launcher.executors.outcome import describe, failure_summary
from launcher.executors.registry import SubmittedJob, Sweep, remember
from launcher.followups import slurm_queries as scheduler
from launcher.status_file import write_status

BOOM = "ValueError: boom: hidden=1"


def jobs_of(tmp_path: Path) -> list[SubmittedJob]:
    """Three ended jobs: one failed in its run, one failed before making its folder
    (its scheduler log says why), one cancelled while queued (no folder, no log)."""
    logs = tmp_path / "sweeps" / "s1" / ".submitit"
    logs.mkdir(parents=True)
    ran, early, queued = (tmp_path / n for n in ("ran", "early", "queued"))
    ran.mkdir()
    (ran / "run.log").write_text(f"Traceback (most recent call last):\n{BOOM}\n")
    write_status(ran, "failed", error=BOOM)
    (logs / "early.err").write_text("setup: module cuda/99 not found\n")
    return [
        SubmittedJob(0, ["+model.boom=1"], str(ran), job_id="7_0", state="FAILED", error=BOOM,
                     stderr=str(logs / "ran.err")),
        SubmittedJob(1, ["+model.boom=2"], str(early), job_id="7_1", state="FAILED",
                     error="setup: module cuda/99 not found", stderr=str(logs / "early.err")),
        SubmittedJob(2, ["+model.boom=3"], str(queued), job_id="7_2", state="CANCELLED",
                     error="has not produced any output (state: CANCELLED by 0)",
                     stderr=str(logs / "queued.err")),
    ]


def test_the_summary_and_the_error_name_each_cause_and_only_folders_that_exist(
        tmp_path, launch_cli, monkeypatch):
    from launcher import launch as launching
    from launcher.executors.base import SweepFailed

    jobs = jobs_of(tmp_path)

    def failing(*args, **kwargs):
        raise SweepFailed(jobs)

    monkeypatch.setattr(launching, "launch", failing)
    code, out, err = launch_cli("egs3/tones/asr1", "-m", "+model.boom=1,2,3")
    assert code == 1 and "Traceback" not in err
    assert f"run directory: {tmp_path / 'ran'}" in out
    assert f"error: {BOOM}" in out and f"log: {tmp_path / 'ran' / 'run.log'}" in out
    assert str(tmp_path / "early") not in out + err  # only its scheduler log is named
    assert "not started: the job ended before its run folder was made" in out
    assert "error: setup: module cuda/99 not found" in out
    assert "not started: cancelled while queued" in out and "it wrote no log" in out
    assert str(tmp_path / "queued") not in out + err
    for cause in (BOOM, "setup: module cuda/99 not found", "cancelled before it started"):
        assert cause in err, err  # the error line, or a line beside it, names each cause
    assert err.strip().splitlines()[-1].startswith("launch: error: 3 of 3 job(s) failed")
    for record in jobs:  # --wait, as each job ends
        text = describe(record)
        assert "run directory:" not in text or record.run_dir.endswith("ran")
    summary = failure_summary(jobs)
    assert summary.startswith("3 of 3 job(s) failed: job 7_0 FAILED (+model.boom=1): ")
    assert f"{BOOM}; log: {tmp_path / 'ran' / 'run.log'}" in summary
    assert str(tmp_path / "queued") not in summary


def test_wait_records_the_runs_own_error_line(tmp_path):
    from launcher.executors.waiting import settle

    class Ended:  # a submitit job whose results() raises with the whole trace
        state = "FAILED"

        def results(self):
            raise RuntimeError("Job failed with trace:\n  File x\nlauncher.errors.Other: noise")

    run = tmp_path / "run"
    run.mkdir()
    record = SubmittedJob(0, ["x=1"], str(run), job_id="5", submitted="2000-01-01T00:00:00")
    write_status(run, "failed", error=f"{BOOM}\nsecond line")
    settle(Ended(), record)
    assert (record.state, record.error) == ("FAILED", BOOM)


def fake_sweep(tmp_path: Path, backend: str, jobs: list[SubmittedJob]) -> Path:
    sweep_dir = tmp_path / "sweeps" / "s1"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    Sweep(str(sweep_dir), backend, "/recipe", "config", [], jobs=jobs).save()
    remember(sweep_dir)
    return sweep_dir


def table(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines()[2:]}


def test_status_after_wait_says_what_wait_said(tmp_path, launch_cli, monkeypatch):
    """sacct lags: right after a job ended it may still say RUNNING, and squeue lists a
    COMPLETING job. The state `--wait` recorded wins; a job squeue lists as pending
    again (requeued by hand) is shown as the scheduler says."""
    jobs = jobs_of(tmp_path)
    states = {"7_0": scheduler.SchedulerState("RUNNING", "0:10"),  # sacct only: stale
              "7_1": scheduler.SchedulerState("COMPLETING", "0:10", live=True),
              "7_2": scheduler.SchedulerState("PENDING", "0:00", live=True)}
    monkeypatch.setattr(scheduler, "query", lambda ids: states)
    sweep_dir = fake_sweep(tmp_path, "slurm", jobs)
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    rows = table(out)
    assert "  failed  " in rows["7_0"] and rows["7_0"].endswith(BOOM)
    assert f"{tmp_path / 'ran' / 'run.log'}" in rows["7_0"]
    assert "  failed  " in rows["7_1"] and "not started" in rows["7_1"]
    assert str(Path(jobs[1].stderr)) in rows["7_1"]  # its log: the scheduler's
    assert "  queued  " in rows["7_2"]


def test_a_job_that_never_started_is_said_so_by_every_command(tmp_path, launch_cli,
                                                              monkeypatch):
    """Not "missing", and no run folder named: status, logs, cancel and report say the
    job was cancelled while queued or ended before its run began, and name the
    scheduler's log when there is one. sacct gives the tasks of an array that never
    started one line for the array."""
    monkeypatch.setattr(scheduler.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(scheduler, "_squeue", lambda wanted: {})
    monkeypatch.setattr(scheduler, "_sacct", lambda bases: {
        "7_0": scheduler.SchedulerState("FAILED"), "7_1": scheduler.SchedulerState("FAILED"),
        "7": scheduler.SchedulerState("CANCELLED")})
    jobs = jobs_of(tmp_path)
    sweep_dir = fake_sweep(tmp_path, "slurm", jobs)
    code, out, err = launch_cli("status", sweep_dir)
    rows = table(out)
    assert "  cancelled  " in rows["7_2"] and "not started: cancelled while queued" in rows["7_2"]
    assert "  failed  " in rows["7_1"] and "setup: module cuda/99 not found" in rows["7_1"]
    assert "missing" not in out and str(tmp_path / "queued") not in out
    code, out, err = launch_cli("logs", tmp_path / "queued")
    assert code == 2 and "job 7_2 never started (cancelled)" in err and "no log" in err
    code, out, err = launch_cli("logs", tmp_path / "early")
    assert code == 2 and f"its scheduler log is {jobs[1].stderr}" in err
    code, out, err = launch_cli("logs", tmp_path / "early", "--err")
    assert code == 0 and out == "setup: module cuda/99 not found\n"
    code, out, err = launch_cli("cancel", sweep_dir)
    assert code == 0 and out == "nothing to cancel: every job has ended\n"
    code, out, err = launch_cli("report", sweep_dir)
    assert code == 0, err
    report = (sweep_dir / "report.csv").read_text()
    assert str(tmp_path / "queued") not in report and str(tmp_path / "early") not in report
    assert "not started: cancelled while queued" in report


def test_a_local_job_that_failed_before_its_folder_is_failed_not_missing(tmp_path, launch_cli):
    jobs = jobs_of(tmp_path)[1:2]
    gone = subprocess.Popen(["true"])
    gone.wait()
    jobs[0].job_id = str(gone.pid)
    sweep_dir = fake_sweep(tmp_path, "local", jobs)
    _, out, _ = launch_cli("status", sweep_dir)
    line = table(out)[str(gone.pid)]
    assert "  failed  " in line and "missing" not in line and jobs[0].stderr in line


def test_cancel_names_no_folder_for_a_queued_job(tmp_path, launch_cli, monkeypatch):
    calls = []
    monkeypatch.setattr(scheduler, "query", lambda ids: {
        "8_0": scheduler.SchedulerState("PENDING", live=True)})
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: calls.append(argv))
    job = SubmittedJob(0, ["x=1"], str(tmp_path / "later"), job_id="8_0")
    sweep_dir = fake_sweep(tmp_path, "slurm", [job])
    _, out, _ = launch_cli("cancel", sweep_dir)
    assert calls == [["scancel", "8"]]  # every job of its array: the array, in one argument
    assert out == "cancelled job 8_0: x=1 (not started: it had no run folder yet)\n"


@pytest.mark.slurm
def test_a_sweep_cancelled_while_queued_on_slurm(slurm_cluster, launch_cli, toy_recipe):
    """The real sacct: an array whose tasks never started is one line. The tasks are
    held back by a begin time, so no other job of the cluster is kept waiting."""
    exp = toy_recipe / "exp"
    (toy_recipe / "conf" / "cluster").mkdir()
    (toy_recipe / "conf" / "cluster" / "later.yaml").write_text(
        "partition: debug\nsbatch: {begin: now+600}\n")
    code, out, err = launch_cli(toy_recipe, "hydra/launcher=slurm", "+cluster=later",
                                f"exp_root={exp}", "-m", "optim.lr=0.1,0.2")
    assert code == 0, out + err
    (sweep_dir,) = (exp / "sweeps").iterdir()
    _, out, err = launch_cli("cancel", sweep_dir)
    assert out.count("(not started: it had no run folder yet)") == 2, out + err
    jobs = json.loads((sweep_dir / "jobs.json").read_text())["jobs"]
    deadline = time.monotonic() + 30
    while True:
        _, out, _ = launch_cli("status", sweep_dir)
        if out.count("  cancelled  ") == 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.count("not started: cancelled while queued") == 2, out
    assert not any(Path(j["run_dir"]).exists() for j in jobs)
    assert not any(j["run_dir"] in out for j in jobs)
