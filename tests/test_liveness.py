"""A run whose process is gone is shown as died, not running with a growing time."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.followups import slurm_queries as scheduler
from launcher.liveness import is_alive, process_start_ticks

HOST = socket.gethostname()


@pytest.fixture(autouse=True)
def no_scheduler(monkeypatch):
    monkeypatch.setattr(scheduler, "query", lambda ids: {})


def exited_pid() -> int:
    child = subprocess.Popen(["sleep", "0"])
    child.wait()
    return child.pid


def running_status(pid: int, pid_start: int | None, host: str = HOST, **more) -> dict:
    return {"state": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                         time.localtime(time.time() - 3600)),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": host, "pid": pid,
            "pid_start": pid_start, "slurm_job_id": None, **more}


def in_process_run(folder: Path, status: dict, step: int | None = 40) -> Path:
    """A run started in-process (no sweep): its folder with status.json and progress."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "status.json").write_text(json.dumps(status))
    if step is not None:
        (folder / "progress.json").write_text(
            json.dumps({"epoch": 2, "max_epochs": 5, "step": step}))
    return folder


def state_line(launch_cli, run_dir: Path) -> str:
    code, out, err = launch_cli("status", run_dir)
    assert code == 0, err
    assert "Traceback" not in out + err
    return out.splitlines()[2]


def test_process_start_ticks_names_this_process():
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    assert process_start_ticks(os.getpid()) == int(fields[19])
    assert process_start_ticks(exited_pid()) is None
    assert process_start_ticks(0) is None


def test_is_alive_tells_when_it_can():
    me = process_start_ticks(os.getpid())
    assert is_alive(running_status(os.getpid(), me)) is True
    assert is_alive(running_status(os.getpid(), None)) is True  # start time unknown then
    assert is_alive(running_status(os.getpid(), me + 1)) is False  # the pid was reused
    assert is_alive(running_status(exited_pid(), 12345)) is False
    assert is_alive(running_status(os.getpid(), me, host="another-host")) is None
    assert is_alive({"state": "running"}) is None  # written before pids were recorded
    assert is_alive(running_status("12", me)) is None
    assert is_alive(running_status(2**40, None)) is False


def test_a_killed_process_not_yet_collected_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    status = running_status(child.pid, process_start_ticks(child.pid))
    assert is_alive(status) is True
    child.kill()
    deadline = time.monotonic() + 10
    while is_alive(status) and time.monotonic() < deadline:  # a zombie until waited for
        time.sleep(0.05)
    assert is_alive(status) is False
    child.wait()


def test_a_run_whose_process_exited_shows_died_at_its_last_step(launch_cli, tmp_path):
    run = in_process_run(tmp_path / "run", running_status(exited_pid(), 12345))
    old = time.time() - 600
    for name in ("status.json", "progress.json"):
        os.utime(run / name, (old, old))
    line = state_line(launch_cli, run)
    assert "  died  " in line and "died at step 40" in line
    assert "2/5 s40" in line
    assert "0:50:00" in line  # from its start to its last sign of life, not growing


def test_a_live_pid_with_another_start_time_is_a_dead_run(launch_cli, tmp_path):
    me = process_start_ticks(os.getpid())
    run = in_process_run(tmp_path / "run", running_status(os.getpid(), me - 1))
    assert "  died  " in state_line(launch_cli, run)


def test_a_live_run_and_a_run_on_another_host_show_running(launch_cli, tmp_path):
    me = process_start_ticks(os.getpid())
    here = in_process_run(tmp_path / "here", running_status(os.getpid(), me))
    line = state_line(launch_cli, here)
    assert "  running  " in line and "died" not in line
    there = in_process_run(tmp_path / "there", running_status(12345, 1, host="node-17"))
    assert "  running  " in state_line(launch_cli, there)


def test_a_requeued_local_run_whose_process_is_gone_died(launch_cli, tmp_path):
    run = in_process_run(tmp_path / "run", {**running_status(exited_pid(), 1),
                                            "state": "requeued"}, step=None)
    line = state_line(launch_cli, run)
    assert "  died  " in line and "died before its first step" in line


def test_a_real_run_killed_with_sigkill_is_shown_died(launch_cli, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = in_process_run(tmp_path / "run", running_status(
            child.pid, process_start_ticks(child.pid)), step=7)
        assert "  running  " in state_line(launch_cli, run)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        line = state_line(launch_cli, run)
        assert "  died  " in line and "died at step 7" in line
    finally:
        child.kill()
        child.wait()


def test_an_allocation_that_ended_means_the_run_on_another_host_died(launch_cli, tmp_path,
                                                                     monkeypatch):
    """A run started in-process inside a SLURM job on another node: SLURM can tell."""
    asked = []

    def query(ids):
        asked.append(list(ids))
        return {"555": scheduler.SchedulerState("CANCELLED"),
                "556": scheduler.SchedulerState("RUNNING")}
    monkeypatch.setattr(scheduler, "query", query)
    gone = in_process_run(tmp_path / "gone", running_status(1, 1, host="node-3",
                                                            slurm_job_id="555"))
    assert "  died  " in state_line(launch_cli, gone)
    alive = in_process_run(tmp_path / "alive", running_status(1, 1, host="node-3",
                                                              slurm_job_id="556"))
    assert "  running  " in state_line(launch_cli, alive)
    assert asked == [["555"], ["556"]]
