"""A run folder has one owner at a time; the lock dies with its process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest
from test_interrupts import finish, start, status, wait_for_steps

from launcher.job import runlock
from launcher.layout import LOCK_FILE

HOLD = """
import sys, time
from launcher.job import runlock
from launcher.layout import LOCK_FILE
runlock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def hold_in_child(run_dir) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    run_dir = tmp_path / "run"
    child = hold_in_child(run_dir)
    holder = runlock.holder_of(run_dir)
    assert holder["pid"] == child.pid and holder["host"]
    with pytest.raises(runlock.RunBusy, match=f"in use by pid {child.pid} on"):
        runlock.acquire(run_dir)
    child.kill()  # SIGKILL: no chance to clean up
    child.wait()
    assert runlock.holder_of(run_dir) is None
    assert runlock.acquire(run_dir) is True
    assert runlock.acquire(run_dir) is False  # re-entrant in one process
    runlock.release(run_dir)


def test_two_identical_launches_at_once_train_once(toy_recipe, tmp_path):
    exp = tmp_path / "exp"
    command = ("+model.step_sleep_s=0.2", "trainer.max_epochs=4")
    first, second = start(toy_recipe, exp, *command), start(toy_recipe, exp, *command)
    results = sorted([finish(first), finish(second)], key=lambda r: r[0])
    (ok, _, _), (busy, _, err) = results
    assert (ok, busy) == (0, 2), results
    line = err.strip().splitlines()[-1]
    assert line.startswith("launch: error: run folder") and "is in use by pid" in line
    (run_dir,) = [p for p in exp.iterdir() if p.name != "sweeps"]
    state = status(run_dir)
    assert state["state"] == "completed" and not state.get("error")
    with open(run_dir / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["epoch"] for r in rows if r.get("valid/loss")] == ["0", "1", "2", "3"]
    assert all(None not in row for row in rows)  # no row wider than the header


def test_a_second_launch_of_a_running_run_waits_with_wait(toy_recipe, tmp_path):
    exp = tmp_path / "exp"
    command = ("+model.step_sleep_s=0.3", "trainer.max_epochs=12")  # outlives a start-up
    first = start(toy_recipe, exp, *command)
    (run_dir,) = wait_for_steps(exp, step=1)
    code, _, err = finish(start(toy_recipe, exp, *command))
    assert code == 2 and f"run folder {run_dir} is in use" in err
    waiting = start(toy_recipe, exp, *command, "--wait")
    assert finish(first)[0] == 0
    code, out, err = finish(waiting)
    assert code == 0, err
    assert "waiting for pid" in out and "already complete" in out
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"


def test_status_and_lock_do_not_race(tmp_path):
    """`launch status` may peek at the lock while a job takes it: the job still gets it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_FILE).write_text("{}")
    peeker = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom launcher import runlock\nend = time.time() + 3\n"
        "while time.time() < end:\n    runlock.holder_of(sys.argv[1])\n"), str(run_dir)])
    time.sleep(0.2)
    for _ in range(20):
        assert runlock.acquire(run_dir) is True
        runlock.release(run_dir)
    peeker.wait()
