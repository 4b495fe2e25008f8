"""Ctrl-C, SIGTERM and SIGKILL of real `launch` processes: a checkpoint, a state that
says what happened, one line, the right exit status, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

SLOW = ["+model.step_sleep_s=0.25", "trainer.max_epochs=40"]


def start(recipe: Path, exp: Path, *overrides: str, group: bool = False) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "launcher.cli", str(recipe),
                             f"exp_root={exp}", *overrides], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=group)


def wait_for_steps(exp: Path, runs: int = 1, step: int = 2, timeout_s: float = 180) -> list[Path]:
    """Run folders once `runs` of them have trained `step` steps."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        going = [p.parent for p in exp.glob("*/progress.json")
                 if json.loads(p.read_text() or "{}").get("step", 0) >= step]
        if len(going) >= runs:
            return sorted(going)
        time.sleep(0.2)
    raise AssertionError(f"no {runs} run(s) reached step {step} in {timeout_s} s")


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def test_ctrl_c_checkpoints_stops_and_the_same_command_continues(toy_recipe, tmp_path):
    exp = tmp_path / "exp"
    command = ["+model.step_sleep_s=0.25", "trainer.max_epochs=6"]
    process = start(toy_recipe, exp, *command)
    (run_dir,) = wait_for_steps(exp)
    process.send_signal(signal.SIGINT)
    code, _, err = finish(process)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("launch: the run stopped after saving")
    state = status(run_dir)
    assert state["state"] == "stopped" and 2 <= state["step"] < 24
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "by Ctrl-C" in (run_dir / "run.log").read_text()
    assert finish(start(toy_recipe, exp, *command))[0] == 0
    assert status(run_dir)["state"] == "completed"
    assert "resuming from" in (run_dir / "run.log").read_text()
    epochs = {row.split(",")[0] for row in (run_dir / "metrics.csv").read_text().splitlines()[1:]}
    assert epochs == {str(e) for e in range(6)}


def test_a_second_ctrl_c_stops_at_once(toy_recipe, tmp_path):
    exp = tmp_path / "exp"
    process = start(toy_recipe, exp, "+model.step_sleep_s=3", "trainer.max_epochs=40")
    (run_dir,) = wait_for_steps(exp, step=1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)  # mid-step: the first one waits for the step to end
    process.send_signal(signal.SIGINT)
    code, _, err = finish(process)
    assert code == 130 and "Traceback" not in err, err
    assert "stopped at once, without a checkpoint" in err.strip().splitlines()[-1]
    assert status(run_dir)["state"] == "stopped"
    assert "second Ctrl-C" in status(run_dir)["error"]


def test_a_killed_run_shows_as_died_with_its_last_step(toy_recipe, tmp_path):
    exp = tmp_path / "exp"
    process = start(toy_recipe, exp, *SLOW)
    (run_dir,) = wait_for_steps(exp, step=3)
    process.kill()
    process.communicate()
    assert status(run_dir)["state"] == "running"  # nobody could say otherwise
    shown = subprocess.run([sys.executable, "-m", "launcher.cli", "status", str(run_dir)],
                           capture_output=True, text=True, env={**os.environ,
                                                                 "PYTHONPATH": str(ROOT)})
    assert shown.returncode == 0, shown.stderr
    row = shown.stdout.splitlines()[-1]
    assert "died" in row and "running" not in row
    assert f"died at step {json.loads((run_dir / 'progress.json').read_text())['step']}" in row


def sweep_processes(exp: Path) -> list[int]:
    """Live processes of the sweep's jobs (their command line names the sweep folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(exp) in text and "submitit" in text:
            found.append(int(cmdline.parent.name))
    return found


@pytest.mark.parametrize("how", ["sigterm-to-launch", "ctrl-c-in-the-terminal"])
def test_stopping_a_local_sweep_stops_its_jobs(toy_recipe, tmp_path, how):
    """SIGTERM reaches only `launch`; Ctrl-C in a terminal reaches the whole process
    group. Either way every job checkpoints and stops, none is left running."""
    exp = tmp_path / "exp"
    process = start(toy_recipe, exp, *SLOW, "-m", "model.hidden=8,9", group=True)
    runs = wait_for_steps(exp, runs=2)
    if how == "sigterm-to-launch":
        process.send_signal(signal.SIGTERM)
        expected = 143
    else:
        os.killpg(process.pid, signal.SIGINT)
        expected = 130
    code, out, err = finish(process)
    assert code == expected, (out, err)
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1].startswith("launch: stopped;")
    for run_dir in runs:
        assert status(run_dir)["state"] == "stopped"
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert out.count("STOPPED") >= 2
    assert sweep_processes(exp) == []
