"""The local executor at scale: many jobs with `max_parallel` finish without leaking
processes or file handles, starting and saving cost what one job does (not what every
job so far does), and Ctrl-C stops a big sweep cleanly.

Each local job is two fresh Python processes (submitit's controller and the task, about
a second of a core together), so the real sweep here has 16 jobs, not hundreds: the
growth it checks for (open files, processes, zombies) would show by then; the cost of
starting and saving is checked on a thousand jobs without processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from test_interrupts import SLOW, finish, start, sweep_processes, wait_for_steps

from launcher.executors import local, waiting
from launcher.executors.registry import SubmittedJob, Sweep

APP = '''
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    return 0.0

main()
'''


class FakeJob:
    """A job that ends after it was looked at `runs_for` times; counts every look."""

    looks = 0

    def __init__(self, number: int, runs_for: int = 3) -> None:
        self.job_id, self.left = str(100000 + number), runs_for
        self.paths = SimpleNamespace(stdout=f"/none/{number}.out", stderr=f"/none/{number}.err")

    def done(self) -> bool:
        FakeJob.looks += 1
        self.left -= 1
        return self.left < 0


class FakeExecutor:
    parameters: dict = {}

    def __init__(self) -> None:
        self.started = 0

    def submit(self, *args: object) -> FakeJob:
        self.started += 1
        return FakeJob(self.started)


class Unstopped:
    stopping = False

    def spawning(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def act(self, jobs: list) -> None:
        pass


def test_starting_a_thousand_jobs_looks_at_the_running_ones_and_saves_now_and_then(
        tmp_path, monkeypatch, capsys):
    saves = []
    monkeypatch.setattr(Sweep, "save", lambda self: saves.append(len(self.jobs)))
    monkeypatch.setattr(local, "SLOT_POLL_S", 0)
    launcher = local.LocalSweepLauncher.__new__(local.LocalSweepLauncher)
    launcher.max_parallel = 4
    records = [SubmittedJob(i, [f"x={i}"], str(tmp_path / str(i))) for i in range(1000)]
    sweep = Sweep(str(tmp_path), "local", "", "config", [], jobs=records)
    FakeJob.looks = 0
    jobs = launcher._submit(FakeExecutor(), [()] * 1000, records, sweep, Unstopped())
    assert len(jobs) == 1000 and all(r.job_id for r in records)
    assert FakeJob.looks < 10 * 1000  # each job while it runs, not every job each time
    assert len(saves) < 20  # at most one a second, not one per job
    assert "submitted job 101000" in capsys.readouterr().out


def test_saving_waits_a_second_between_saves_and_keeps_the_last(monkeypatch):
    saves = []
    saving = waiting.Saving(SimpleNamespace(save=lambda: saves.append(1)))
    for _ in range(500):
        saving.soon()
    assert len(saves) == 1 and saving.due
    saving.if_due()
    assert len(saves) == 2 and not saving.due
    saving.if_due()
    assert len(saves) == 2


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[str]:
    """The process states of `pid`'s children (Z: ended, not yet collected)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # it ended while we looked
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == str(pid):
                states.append(fields[0])
    return states


def test_a_sweep_of_many_cheap_jobs_leaks_no_process_and_no_file(tmp_path):
    jobs, parallel = 16, 4
    (tmp_path / "app.py").write_text(APP)
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "app.py"), "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         "hydra/launcher=local", f"hydra.launcher.max_parallel={parallel}", f"+x=range({jobs})"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "LAUNCHER_STATE_DIR": str(tmp_path)})
    samples: list[tuple[int, list[str]]] = []

    def sample() -> None:
        while process.poll() is None:
            with contextlib.suppress(OSError):  # it ended meanwhile
                samples.append((open_files(process.pid), children(process.pid)))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = process.communicate(timeout=600)
    sampler.join()
    assert process.returncode == 0, err
    records = json.loads((tmp_path / "sweep" / "jobs.json").read_text())["jobs"]
    assert [r["state"] for r in records] == ["COMPLETED"] * jobs
    assert sweep_processes(tmp_path) == []
    files = [n for n, _ in samples]
    assert max(files) <= min(files) + 2 * parallel  # a pipe or log per running job at most
    assert max(files[len(files) // 2:]) <= max(files[:len(files) // 2]) + 1  # no growth
    assert max(len(kids) for _, kids in samples) <= parallel
    assert max(kids.count("Z") for _, kids in samples) <= parallel


def test_ctrl_c_stops_a_big_local_sweep_and_starts_none_of_the_rest(toy_recipe, tmp_path):
    """Two of forty jobs run when `launch` gets Ctrl-C: they checkpoint and stop, the
    other 38 are recorded as not started, and no process is left."""
    exp = tmp_path / "exp"
    process = start(toy_recipe, exp, *SLOW, "-m", "model.hidden=range(8,48)",
                    "hydra.launcher.max_parallel=2")
    runs = wait_for_steps(exp, runs=2, step=1)
    process.send_signal(signal.SIGINT)
    code, out, err = finish(process)
    assert code == 130, (out, err)
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1].startswith("launch: stopped;")
    (registry,) = exp.glob("sweeps/*/jobs.json")
    records = json.loads(registry.read_text())["jobs"]
    assert len(records) == 40
    started = [r for r in records if r["note"] != "not started: launch was stopped"]
    assert len(started) == 2 and {r["state"] for r in started} == {"STOPPED"}
    assert {r["state"] for r in records if r not in started} == {"CANCELLED"}
    for run_dir in runs:
        assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"
    assert sweep_processes(exp) == []


SLEEPY_APP = '''
import pathlib, time
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    pathlib.Path(cfg.marks, str(cfg.x)).touch()
    time.sleep(120)
    return 0.0

main()
'''


def test_ctrl_c_stops_the_running_tasks_of_a_plain_app_at_once(tmp_path):
    """A plain Hydra task has nothing to save: the first Ctrl-C to `launch` ends it (not
    only when it is done), the others are not started, and no traceback is printed."""
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "app.py").write_text(SLEEPY_APP)
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "app.py"), "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         "hydra/launcher=local", "hydra.launcher.max_parallel=2", f"+marks={marks}",
         "+x=range(6)"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "LAUNCHER_STATE_DIR": str(tmp_path)})
    deadline = time.monotonic() + 120
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - stopped < 30  # the tasks would sleep 120 s
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "launch: stopped;"), err
    records = json.loads((tmp_path / "sweep" / "jobs.json").read_text())["jobs"]
    assert sorted(m.name for m in marks.iterdir()) == ["0", "1"]
    assert [r["note"] for r in records[2:]] == ["not started: launch was stopped"] * 4
    assert sweep_processes(tmp_path) == []
