"""`launch status` reads a sweep with one squeue and one sacct call, never torch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from launcher.executors.local import GpuPool
from launcher.executors.registry import SubmittedJob, Sweep
from launcher.status_file import write_status

SQUEUE = """#!/bin/sh
echo squeue >> "$CALLS"
printf '900_0|RUNNING|1:02\\n900_1|PENDING|0:00\\n777|RUNNING|5:00\\n'
"""
SACCT = """#!/bin/sh
echo sacct "$@" >> "$CALLS"
printf '900_0|RUNNING|00:01:02\\n900_1|PENDING|00:00:00\\n900_2|COMPLETED|00:03:00\\n'
printf '900_3|FAILED|00:00:09\\n900_4|TIMEOUT|01:00:00\\n900_5|CANCELLED by 0|00:00:30\\n'
printf '900_6|COMPLETED|00:02:00\\n900_[7-99]|PENDING|00:00:00\\n'
"""


def fake_sweep(folder: Path, count: int) -> Path:
    sweep_dir = folder / "sweeps" / "s1"
    sweep_dir.mkdir(parents=True)
    jobs = []
    for i in range(count):
        run_dir = folder / f"run{i}"
        run_dir.mkdir()
        jobs.append(SubmittedJob(i, [f"optim.lr={i}"], str(run_dir), job_id=f"900_{i}",
                                 stderr=str(sweep_dir / f"{i}.err")))
    (folder / "run2" / "metrics.csv").write_text(
        "epoch,step,valid/loss\n0,9,0.9\n1,19,0.5\n2,29,0.7\n")
    (folder / "run2" / "progress.json").write_text(
        json.dumps({"epoch": 3, "max_epochs": 3, "step": 30}))
    write_status(folder / "run6", "out_of_retries")
    Sweep(str(sweep_dir), "slurm", "/r", "config", [], jobs=jobs).save()
    return sweep_dir


def shimmed_env(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("squeue", SQUEUE), ("sacct", SACCT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "CALLS": str(tmp_path / "calls")}


def test_hundred_jobs_one_squeue_one_sacct_no_torch(tmp_path):
    sweep_dir = fake_sweep(tmp_path, 100)
    code = ("import sys\nfrom launcher.cli import main\n"
            "rc = main(['status', sys.argv[1], '--all'])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\nsys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(sweep_dir)], capture_output=True,
                            text=True, env=shimmed_env(tmp_path))
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert sorted(c.split()[0] for c in calls) == ["sacct", "squeue"]
    (sacct,) = [c for c in calls if c.startswith("sacct")]
    assert sacct.endswith("-j 900")  # the array, once, not 100 ids
    assert result.stdout.strip().endswith("NO TORCH")
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:-1]}
    assert len(lines) == 100
    assert "running" in lines["900_0"] and "1:02" in lines["900_0"]
    assert "queued" in lines["900_1"]
    assert "completed" in lines["900_2"] and "0.7" in lines["900_2"] and "0.5" in lines["900_2"]
    assert "3/3 s30" in lines["900_2"]
    assert "failed" in lines["900_3"] and f"{tmp_path}/run3/run.log" in lines["900_3"]
    assert "timed out" in lines["900_4"]
    assert "cancelled" in lines["900_5"]
    assert "out of retries" in lines["900_6"]


def test_a_big_sweep_is_summarised_unless_all(tmp_path, monkeypatch, launch_cli):
    from launcher.followups.status_summary import SHOWN_UP_TO

    sweep_dir = fake_sweep(tmp_path, 100)
    for i in range(10, 20):  # ten finished runs with a best valid/loss of 0.10 .. 0.19
        (tmp_path / f"run{i}" / "metrics.csv").write_text(
            f"epoch,step,valid/loss\n0,9,0.{i}\n")
        write_status(tmp_path / f"run{i}", "completed")
    monkeypatch.setenv("PATH", shimmed_env(tmp_path)["PATH"])
    monkeypatch.setenv("CALLS", str(tmp_path / "calls"))
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    title, _header, *rows, left = out.strip().splitlines()
    counts = title.split("): ", 1)[1].split(", ")
    assert sum(int(c.split()[0]) for c in counts) == 100  # the title counts every job
    shown = [r.split()[0] for r in rows]
    # the best five (lowest valid/loss first in the table's order), then those that need
    # a look, then the running one; each once
    assert shown == ["900_0", "900_3", "900_4", "900_5", "900_6",
                     "900_10", "900_11", "900_12", "900_13", "900_14"]
    assert left.startswith(f"{100 - len(shown)} more job(s) not shown (") and \
        left.endswith("--all prints every row")
    code, out, err = launch_cli("status", sweep_dir, "--all")
    assert len(out.strip().splitlines()) == 2 + 100 > SHOWN_UP_TO


def test_gpu_pool_gives_each_job_its_own_gpus():
    class Job:
        finished = False

        def done(self):
            return self.finished

    pool = GpuPool([0, 1, 2, 3], per_job=2)
    first, second = Job(), Job()
    assert pool.take() == [0, 1]
    pool.hold(first, [0, 1])
    assert pool.take() == [2, 3]
    pool.hold(second, [2, 3])
    assert not pool.can_take()
    second.finished = True
    pool.release_finished()
    assert pool.can_take() and pool.take() == [2, 3]


def test_a_run_in_phases_shows_the_phase_that_wrote_last(tmp_path):
    import os

    from launcher.followups.run_files import live_dir, metric_values, progress_of

    run = tmp_path / "run"
    for n, (phase, epoch, step, loss) in enumerate((("short", 2, 20, 0.9), ("long", 1, 30, 0.4))):
        folder = run / "phases" / phase
        folder.mkdir(parents=True)
        (folder / "progress.json").write_text(
            json.dumps({"epoch": epoch, "max_epochs": 2, "step": step}))
        (folder / "metrics.csv").write_text(f"epoch,step,valid/loss\n0,{step},{loss}\n")
        os.utime(folder / "progress.json", ns=(n * 10**9, n * 10**9))
    assert live_dir(str(run)) == run / "phases" / "long"
    assert progress_of(str(run)) == "long 1/2 s30"
    assert metric_values(str(live_dir(str(run))), ("valid/loss", "min")) == ("0.4", "0.4")
    assert progress_of(str(tmp_path / "plain")) == "-"


def test_the_scheduler_decides_for_slurm_jobs_and_a_run_that_never_ended_died(
        launch_cli, tmp_path, monkeypatch):
    from launcher.followups import slurm_queries as scheduler
    from launcher.liveness import process_start_ticks

    states = {"900_0": scheduler.SchedulerState("RUNNING", "0:10"),
              "900_1": scheduler.SchedulerState("COMPLETED", "0:20")}
    monkeypatch.setattr(scheduler, "query", lambda ids: states)
    sweep_dir = fake_sweep(tmp_path, 7)
    gone = subprocess.Popen(["true"])
    gone.wait()
    for i in range(3):
        write_status(tmp_path / f"run{i}", "running", host=socket.gethostname(), pid=gone.pid,
                     pid_start=process_start_ticks(os.getpid()))
    write_status(tmp_path / "run2", "running", host="node-9")
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "  running  " in lines["900_0"]  # SLURM says it runs: it may be a new attempt
    assert "  died  " in lines["900_1"]  # the job ended, the run never said how
    assert "  running  " in lines["900_2"]  # unknown to SLURM, on another host: cannot tell


def test_watch_ends_when_every_run_died_is_missing_or_damaged(tmp_path):
    sweep_dir = tmp_path / "sweeps" / "s1"
    sweep_dir.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    runs = [tmp_path / name for name in ("died", "missing", "damaged")]
    runs[0].mkdir()
    write_status(runs[0], "running", host=socket.gethostname(), pid=gone.pid, pid_start=1)
    runs[2].mkdir()
    (runs[2] / "status.json").write_text('{"state": "runn')
    jobs = [SubmittedJob(i, [f"x={i}"], str(run), job_id=f"j{i}") for i, run in enumerate(runs)]
    Sweep(str(sweep_dir), "local", "/r", "config", [], jobs=jobs).save()
    code = "import sys\nfrom launcher.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "status", str(sweep_dir), "--watch",
                             "0.1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr  # ended, not every run completed
    assert "1 damaged, 1 died, 1 missing" in result.stdout


def test_the_queue_is_asked_only_for_the_sweeps_own_jobs(monkeypatch):
    from launcher.followups import slurm_queries as scheduler

    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        lines = ("41_0|RUNNING|0:05\n41_1|PENDING|0:00\n99|RUNNING|1:00\n"
                 if argv[0] == "squeue" else "")
        return subprocess.CompletedProcess(argv, 0, lines, "")

    monkeypatch.setattr(scheduler.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(scheduler.subprocess, "run", run)
    states = scheduler.query(["41_0", "41_1", "42"])
    squeue, = [c for c in calls if c[0] == "squeue"]
    assert squeue[squeue.index("-j") + 1] == "41,42"  # arrays by their id: one argument
    assert len(calls) == 2  # one squeue, one sacct, whatever the number of jobs
    assert states["41_0"].live and states["41_1"].state == "PENDING" and "99" not in states


def test_jobs_the_controller_forgot_are_not_live(slurm_cluster):
    from launcher.followups import slurm_queries as scheduler

    # squeue fails ("Invalid job id specified") when it knows none of the ids asked for
    assert scheduler._squeue({"1", "2_3"}) == {}
