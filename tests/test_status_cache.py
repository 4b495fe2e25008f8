"""`launch status` keeps the brief rows of runs that ended in the sweep folder: the table is
the same with the cache and without it, whatever changed in between, and runs are only read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.executors.registry import SubmittedJob, Sweep
from launcher.followups import slurm_queries as scheduler
from launcher.followups import status_cache
from launcher.status_file import write_status

JOBS = 60  # more than a summary shows: most rows are read only briefly
# SLURM's word and the run's own for job i, by i % 4
KINDS = (("COMPLETED", "completed"), ("FAILED", "failed"), ("RUNNING", "running"),
         ("TIMEOUT", "running"))


def sweep_of(folder: Path) -> tuple[Path, dict[str, scheduler.SchedulerState]]:
    """A SLURM sweep of 60 jobs, the last four never started; and the scheduler's answers."""
    sweep_dir = folder / "sweeps" / "s1"
    sweep_dir.mkdir(parents=True)
    jobs, states = [], {}
    for i in range(JOBS):
        run_dir = folder / f"run{i}"
        jobs.append(SubmittedJob(i, [f"optim.lr={i}"], str(run_dir), job_id=f"900_{i}"))
        slurm, own = KINDS[i % 4]
        states[f"900_{i}"] = scheduler.SchedulerState(slurm, "0:01:00", live=slurm == "RUNNING")
        if i >= JOBS - 4:
            states[f"900_{i}"] = scheduler.SchedulerState("PENDING", live=True)
            continue
        run_dir.mkdir()
        # a run on another host: only the allocation it ran in could tell if it lives
        write_status(run_dir, own, error="ValueError: boom", host="node-9", pid=7,
                     slurm_job_id=f"77{i}")
        (run_dir / "config.yaml").write_text(
            "best_model_criterion:\n- - valid/acc\n  - 1\n  - max\n")
        (run_dir / "metrics.csv").write_text(f"epoch,step,valid/acc\n0,9,0.{i:02d}\n")
    Sweep(str(sweep_dir), "slurm", "/r", "config", [], jobs=jobs).save()
    return sweep_dir, states


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """The sweep, its scheduler answers (change them to change what SLURM says), and every
    run's files old enough to be kept; each call asks the scheduler what it would ask
    without the cache."""
    sweep_dir, states = sweep_of(tmp_path)
    asked: list[list[str]] = []
    monkeypatch.setattr(scheduler, "query", lambda ids: asked.append(sorted(ids)) or
                        {k: v for k, v in states.items() if k in ids})
    monkeypatch.setattr(status_cache, "RACY_S", 0.0)
    return sweep_dir, states, asked


def table(launch_cli, sweep_dir: Path) -> str:
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    return out


def same_without_cache(launch_cli, sweep_dir: Path, asked: list[list[str]]) -> str:
    """The table read with the cache as it is, which must be the one read without it,
    after asking the scheduler the same."""
    cached = table(launch_cli, sweep_dir)
    (sweep_dir / status_cache.CACHE_FILE).unlink(missing_ok=True)
    assert table(launch_cli, sweep_dir) == cached
    assert asked[-1] == asked[-2]
    return cached


def read_in_full(monkeypatch) -> list[str]:
    """The jobs whose files the brief read opens, as they are read."""
    read: list[str] = []
    original = status_cache.brief_row
    monkeypatch.setattr(status_cache, "brief_row", lambda sweep, job, look, live: (
        read.append(job.job_id), original(sweep, job, look, live))[1])
    return read


def test_the_table_is_the_same_with_and_without_the_cache(sweep, launch_cli, monkeypatch):
    sweep_dir, states, asked = sweep
    first = table(launch_cli, sweep_dir)  # no cache: written
    assert "777" in asked[-1]  # a run on another host: the allocation it ran in
    kept = json.loads((sweep_dir / status_cache.CACHE_FILE).read_text())["rows"]
    ended = [i for i in range(JOBS - 4) if i % 4 != 2]  # said so by the run or by SLURM
    assert sorted(kept) == sorted(str(sweep_dir.parent.parent / f"run{i}") for i in ended)
    read = read_in_full(monkeypatch)
    assert table(launch_cli, sweep_dir) == first  # the cache used
    assert sorted(read) == sorted(f"900_{i}" for i in range(JOBS) if i not in ended)
    assert same_without_cache(launch_cli, sweep_dir, asked) == first

    run0 = sweep_dir.parent.parent / "run0"
    write_status(run0, "failed", error="RuntimeError: late")  # a run's status.json changes
    changed = same_without_cache(launch_cli, sweep_dir, asked)
    assert changed != first and "RuntimeError: late" in changed
    (sweep_dir.parent.parent / "run4" / "metrics.csv").write_text(
        "epoch,step,valid/acc\n0,9,0.99\n")  # rewritten in place: now the best run
    assert "0.99" in same_without_cache(launch_cli, sweep_dir, asked)

    record = Sweep.load(sweep_dir)  # `launch retry`: a new job id, queued again
    record.jobs[1].job_id, record.jobs[1].state = "901_1", "QUEUED"
    record.save()
    states["901_1"] = scheduler.SchedulerState("PENDING", live=True)
    assert "5 queued" in same_without_cache(launch_cli, sweep_dir, asked).splitlines()[0]
    states["900_5"] = scheduler.SchedulerState("PENDING", restarts=1, live=True)  # requeued
    assert "1 requeued" in same_without_cache(launch_cli, sweep_dir, asked).splitlines()[0]

    before = table(launch_cli, sweep_dir)
    (sweep_dir / status_cache.CACHE_FILE).write_text('{"version": 1, "rows": {"x": [')
    assert table(launch_cli, sweep_dir) == before  # a damaged cache is ignored, rewritten
    assert json.loads((sweep_dir / status_cache.CACHE_FILE).read_text())["rows"]
    (sweep_dir / status_cache.CACHE_FILE).write_text('{"version": 1, "rows": {"x": {}}}')
    assert table(launch_cli, sweep_dir) == before


def test_runs_are_only_read_and_a_sweep_folder_not_writable_goes_without(
        sweep, launch_cli, monkeypatch):
    sweep_dir, states, _ = sweep
    runs = sweep_dir.parent.parent

    def files() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in runs.rglob("*")
                if "sweeps" not in p.parts}

    before = files()
    first = table(launch_cli, sweep_dir)
    assert table(launch_cli, sweep_dir) == first and files() == before
    assert sorted(p.name for p in sweep_dir.iterdir()) == [status_cache.CACHE_FILE,
                                                           "jobs.json"]
    (sweep_dir / status_cache.CACHE_FILE).unlink()

    def refused(path, text, small=False):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(status_cache, "write_text", refused)
    assert table(launch_cli, sweep_dir) == first
    assert not (sweep_dir / status_cache.CACHE_FILE).exists()
    monkeypatch.undo()
    monkeypatch.setattr(status_cache, "RACY_S", 0.0)
    monkeypatch.setattr(scheduler, "query", lambda ids: states)
    (sweep_dir / status_cache.CACHE_FILE).mkdir()  # cannot be read nor replaced
    assert table(launch_cli, sweep_dir) == first


def test_runs_changed_a_moment_ago_or_in_phases_are_not_kept(tmp_path, launch_cli,
                                                             monkeypatch):
    sweep_dir, states = sweep_of(tmp_path)
    monkeypatch.setattr(scheduler, "query", lambda ids: dict(states))
    (tmp_path / "run0" / "phases" / "first").mkdir(parents=True)  # metrics in a phase
    first = table(launch_cli, sweep_dir)  # every file written a moment ago
    assert not (sweep_dir / status_cache.CACHE_FILE).exists()
    monkeypatch.setattr(status_cache, "RACY_S", 0.0)
    assert table(launch_cli, sweep_dir) == first
    kept = json.loads((sweep_dir / status_cache.CACHE_FILE).read_text())["rows"]
    assert str(tmp_path / "run4") in kept and str(tmp_path / "run0") not in kept
