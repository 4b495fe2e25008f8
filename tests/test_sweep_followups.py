"""A sweep queued on the real local SLURM cluster, followed from the shell afterwards."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from conftest import sacct_states

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
PNG = b"\x89PNG\r\n\x1a\n"


def status(launch_cli, sweep_dir: Path) -> tuple[str, dict[str, str]]:
    """The title line and the table rows by job id."""
    code, out, err = launch_cli("status", sweep_dir)
    assert code == 0, err
    lines = out.splitlines()
    return lines[0], {line.split()[0]: line for line in lines[2:]}


def test_four_run_sweep_status_retry_and_report(launch_cli, toy_recipe, slurm_cluster):
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(
        toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}", "+model.step_sleep_s=0.5",
        "+model.fail_if_hidden=32", "-m", "model.hidden=4,8,16,32")
    assert code == 0, out + err
    (registry,) = (exp / "sweeps").glob("*/jobs.json")
    sweep_dir = registry.parent
    jobs = json.loads(registry.read_text())["jobs"]
    assert len(jobs) == 4 and f"launch status {sweep_dir}" in out
    # launch returned while the jobs were still queued or running
    states = sacct_states([j["job_id"] for j in jobs], settle_s=0)
    assert any(s in ("PENDING", "RUNNING") for s in states.values()) or len(states) < 4

    code, out, _ = launch_cli("status", sweep_dir, "--watch", "1")
    assert code == 1  # it waited for every job; one failed
    title, lines = status(launch_cli, sweep_dir)
    assert title.endswith("(slurm): 3 completed, 1 failed")
    bad = next(j for j in jobs if "model.hidden=32" in j["overrides"])
    assert "  failed  " in lines[bad["job_id"]]
    assert f"{bad['run_dir']}/run.log" in lines[bad["job_id"]]

    good_log = Path(next(j for j in jobs if j is not bad)["run_dir"]) / "run.log"
    text = good_log.read_text()
    assert "\r" not in text and "batch/s" in text
    assert "launcher.components.callbacks.progress" in text
    before = good_log.stat().st_mtime_ns

    code, out, _ = launch_cli("retry", sweep_dir)
    assert code == 0 and "resubmitted 1 run(s)" in out
    assert out.count("submitted job") == 1 and "model.hidden=32" in out
    assert good_log.stat().st_mtime_ns == before  # finished runs untouched
    retried = json.loads(registry.read_text())["jobs"]
    new_id = next(j["job_id"] for j in retried if "model.hidden=32" in j["overrides"])
    assert new_id != bad["job_id"]
    assert [j["job_id"] for j in retried if j is not bad][:3] == [
        j["job_id"] for j in jobs if j is not bad][:3]
    deadline = time.monotonic() + 90
    while sacct_states([new_id], settle_s=0).get(new_id) in (None, "PENDING", "RUNNING"):
        assert time.monotonic() < deadline
        time.sleep(1)

    code, out, _ = launch_cli("report", sweep_dir)
    assert code == 0
    with open(sweep_dir / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert sorted(r["model.hidden"] for r in rows) == ["16", "32", "4", "8"]
    assert sum(r["state"] == "completed" for r in rows) == 3
    assert all(r["best valid/loss"] for r in rows if r["state"] == "completed")
    for name in ("curves.png", "best_vs_model.hidden.png"):
        data = (sweep_dir / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
