"""`launch status` of a 10,000-job sweep: one squeue call (for this sweep's arrays) and one
sacct call, a summary instead of 10,000 rows, and the rows it leaves out read only as far
as choosing needs; the sweep index stays quick with hundreds of sweeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.executors import registry
from launcher.executors.registry import SubmittedJob, Sweep
from launcher.followups import status
from launcher.followups.status_summary import SHOWN_UP_TO, chosen
from launcher.status_file import write_status

JOBS = 10_000
ARRAYS = [str(5000 + a) for a in range(JOBS // 1000)]
STATES = ("COMPLETED", "FAILED", "RUNNING", "PENDING", "TIMEOUT")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "COMPLETED", "TIMEOUT")  # a finished sweep
# each shim counts its calls and answers one line per job, as for a real 10,000-task sweep
SHIM = """#!/bin/sh
echo "$(basename "$0") $*" >> "{calls}"
cat "{answer}"
"""


def job_id(i: int) -> str:
    return f"{ARRAYS[i // 1000]}_{i % 1000}"


def big_sweep(folder: Path, with_runs: int, states: tuple[str, ...] = STATES) -> Path:
    """A 10,000-job SLURM sweep; the first `with_runs` jobs have run folders with a status,
    a metrics.csv and a config naming the tracked metric (job i in SLURM's `states[i % 5]`:
    `shims`)."""
    sweep_dir = folder / "sweeps" / "big"
    sweep_dir.mkdir(parents=True)
    jobs = [SubmittedJob(i, [f"optim.lr={i}"], str(folder / f"run{i}"), job_id=job_id(i),
                         stderr=str(sweep_dir / f"{i}.err")) for i in range(JOBS)]
    Sweep(str(sweep_dir), "slurm", "/r", "config", [], jobs=jobs).save()
    for i in range(with_runs):
        run_dir = folder / f"run{i}"
        run_dir.mkdir()
        own = {"COMPLETED": "completed", "FAILED": "failed"}.get(states[i % 5], "running")
        write_status(run_dir, own, error="ValueError: boom")
        (run_dir / "config.yaml").write_text(
            "model:\n  hidden: 8\nbest_model_criterion:\n- - valid/acc\n  - 1\n  - max\n")
        (run_dir / "metrics.csv").write_text(
            "epoch,step,valid/acc\n" + "".join(f"{e},{e},0.{i:04d}\n" for e in range(3)))
    return sweep_dir


def shims(folder: Path, states: tuple[str, ...] = STATES) -> dict[str, str]:
    """squeue and sacct first on PATH: each logs its call and prints 10,000 lines."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    squeue = [f"{job_id(i)}|{states[i % 5]}|1:02" for i in range(JOBS)
              if states[i % 5] in ("RUNNING", "PENDING")]
    sacct = [f"{job_id(i)}|{states[i % 5]}|00:01:02" for i in range(JOBS)]
    for name, lines in (("squeue", squeue), ("sacct", sacct)):
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
        (bin_dir / name).write_text(SHIM.format(calls=folder / "calls",
                                                answer=folder / f"{name}.txt"))
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_ten_thousand_jobs_one_squeue_one_sacct_and_a_summary(tmp_path):
    sweep_dir = big_sweep(tmp_path, with_runs=200)
    code = ("import sys\nfrom launcher.cli import main\nrc = main(['status', sys.argv[1]])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\nsys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(sweep_dir)], capture_output=True,
                            text=True, env=shims(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert sorted(c.split()[0] for c in calls) == ["sacct", "squeue"]
    (squeue,) = [c.split() for c in calls if c.startswith("squeue")]
    assert squeue[squeue.index("-j") + 1] == ",".join(ARRAYS)  # this sweep's arrays only
    (sacct,) = [c.split() for c in calls if c.startswith("sacct")]
    assert sacct[sacct.index("-j") + 1] == ",".join(ARRAYS)
    title, header, *table, left, torch = result.stdout.strip().splitlines()
    assert torch == "NO TORCH"
    assert title.endswith("2000 completed, 2000 failed, 2000 queued, 2000 running, "
                          "2000 timed out")
    assert len(table) <= 25 < SHOWN_UP_TO  # the best 5, 10 that need a look, 10 running
    assert left.startswith(f"{JOBS - len(table)} more job(s) not shown (")
    assert left.endswith("--all prints every row")
    rows = {line.split()[0]: line for line in table}
    best = [job_id(i) for i in sorted(range(200), reverse=True)[:5]]  # valid/acc, max
    assert set(best) <= set(rows)
    assert "0.0199" in rows[job_id(199)] and "valid/acc" in header
    failed = [r for r in rows.values() if " failed " in r]
    assert failed and all("ValueError: boom" in r for r in failed)  # shown rows in full


def test_a_summary_counts_and_chooses_as_the_full_table_would(tmp_path, monkeypatch):
    """The rows a summary leaves out are read briefly: their states and the rows chosen
    are those of the table read in full, damaged runs included."""
    sweep_dir = big_sweep(tmp_path, with_runs=120)
    (tmp_path / "run7" / "status.json").write_text('{"state": "runn')  # damaged
    (tmp_path / "run8" / "metrics.csv").write_text("epoch,step,valid/acc\n0,nan,0.99\n")
    (tmp_path / "run9" / "config.yaml").write_text("best_model_criterion: [oops\n")
    monkeypatch.setenv("PATH", shims(tmp_path)["PATH"])
    sweep = Sweep.load(sweep_dir)
    jobs = sweep.jobs[:600]  # rows in full for ten thousand take too long for a test
    full = status.rows(sweep, jobs)
    brief = status.rows(sweep, jobs, brief=True)
    assert [r.state for r in brief] == [r.state for r in full]
    shown = [r for r in brief if not r.brief]
    assert [r.job_id for r in shown] == [full[i].job_id for i in chosen(full)]
    assert shown == [full[i] for i in chosen(full)]  # the rows shown are read in full


def test_the_sweep_index_finds_a_sweep_or_run_without_reading_every_sweep(
        tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    for k in range(300):
        sweep_dir = tmp_path / "sweeps" / f"s{k:03d}"
        sweep_dir.mkdir(parents=True)
        jobs = [SubmittedJob(i, [f"x={i}"], str(tmp_path / f"run{k}-{i}"), job_id=f"{k}{i}")
                for i in range(5)]
        Sweep(str(sweep_dir), "local", "/r", "config", [], jobs=jobs).save()
        registry.remember(sweep_dir)
    reads = []
    original = Sweep.read.__func__
    monkeypatch.setattr(Sweep, "read", classmethod(
        lambda cls, folder: reads.append(Path(folder).name) or original(cls, folder)))
    sweep, _ = registry.find("s100")
    assert Path(sweep.sweep_dir).name == "s100" and reads == ["s100"]
    reads.clear()
    sweep, (job,) = registry.find(str(tmp_path / "run17-3"))
    assert Path(sweep.sweep_dir).name == "s017" and job.run_dir.endswith("run17-3")
    assert reads == ["s017"]  # the others' jobs.json do not name it: not parsed
    reads.clear()
    with pytest.raises(Exception, match="neither a sweep folder"):
        registry.find(str(tmp_path / "run-none"))
    assert reads == []
    registry.remember(tmp_path / "sweeps" / "s005")  # relaunched: latest again
    assert registry.known_sweeps()[-1].name == "s005" and len(registry.known_sweeps()) == 300
    assert json.loads((tmp_path / "sweeps" / "s005" / "jobs.json").read_text())["jobs"]


def test_a_finished_sweep_is_read_again_from_the_cache(tmp_path, monkeypatch, capsys):
    """Every job ended: the second `launch status` stats each run's files, opens none but
    those of the rows it shows, and prints the same."""
    from launcher.cli import main
    from launcher.followups import status_cache

    sweep_dir = big_sweep(tmp_path, with_runs=JOBS, states=ENDED)
    monkeypatch.setenv("PATH", shims(tmp_path, ENDED)["PATH"])
    monkeypatch.setattr(status_cache, "RACY_S", 0.0)  # written a moment ago, unchanged since
    assert main(["status", str(sweep_dir)]) == 0
    first = capsys.readouterr().out
    looked = []
    original = status_cache.look_at
    monkeypatch.setattr(status_cache, "look_at", lambda sweep, job: (
        looked.append(job.job_id), original(sweep, job))[1])
    assert main(["status", str(sweep_dir)]) == 0
    assert capsys.readouterr().out == first
    shown = first.strip().splitlines()[2:-1]
    assert sorted(looked) == sorted(line.split()[0] for line in shown)
