"""Sweeps past the cluster's limits, on the real local cluster: MaxArraySize (lowered
here for a test, `scontrol reconfigure`), the user's MaxSubmitJobs, a refusal midway."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import sacct_states

from launcher.executors.arrays import Chunk, ClusterLimits, chunks, read_limits, refusal

ROOT = Path(__file__).resolve().parents[1]
HYDRA_APP = ROOT / "examples" / "hydra_app"
HOLD = "+cluster.sbatch.hold=true"


def lrs(n: int) -> str:
    return ",".join(f"{(i + 1) * 1e-4:.4f}" for i in range(n))


# ---- the arrays a sweep becomes ---------------------------------------------------------
def test_every_array_index_stays_below_max_array_size():
    assert chunks(25, ClusterLimits(max_array_size=11)) == [Chunk(0, 11), Chunk(11, 11),
                                                             Chunk(22, 3)]
    assert chunks(1100, ClusterLimits(max_array_size=1001)) == [Chunk(0, 1001),
                                                                Chunk(1001, 99)]
    assert chunks(1001, ClusterLimits(max_array_size=1001)) == [Chunk(0, 1001)]
    assert chunks(7, ClusterLimits()) == [Chunk(0, 7)]  # limits unknown: one array


def test_a_sweep_over_the_submit_limit_is_refused_saying_how_many_fit():
    limits = ClusterLimits(submit_limit=20, limit_source="MaxSubmitJobs=20 of X", queued=3)
    said = refusal(25, limits)
    assert "25 job(s) to queue but only 17 more fit" in said
    assert "MaxSubmitJobs=20 of X, 3 job(s) queued now" in said
    assert refusal(17, limits) is None
    crowded = ClusterLimits(max_array_size=1001, max_job_count=10000, cluster_jobs=9000)
    assert refusal(999, crowded) is None
    assert refusal(1000, crowded).startswith(
        "the sweep has 1000 job(s) to queue but the cluster holds fewer than 10000 jobs in "
        "all (MaxJobCount), and holds 9000 now: 999 more fit; launch at most 999 at once")


def test_a_task_cancelled_while_queued_is_cancelled_though_slurm_keeps_no_record(
        monkeypatch):
    """SLURM has no line for a pending array task cancelled on its own: the array's pending
    line leaves its index out, or (accounting lagging) squeue lists its siblings only."""
    from launcher.followups import slurm_queries as q

    accounting = {"5_[0,2-3]": q.SchedulerState("PENDING"), "6_0": q.SchedulerState("FAILED")}
    live = {"7_0": q.SchedulerState("PENDING", live=True)}
    monkeypatch.setattr(q, "_sacct", lambda bases: dict(accounting))
    monkeypatch.setattr(q, "_squeue", lambda wanted: dict(live))
    monkeypatch.setattr(q.shutil, "which", lambda name: f"/usr/bin/{name}")
    states = q.query(["5_0", "5_1", "5_3", "6_0", "6_1", "7_0", "7_1", "8_0"])
    assert {k: v.state for k, v in states.items() if "[" not in k} == {
        "5_0": "PENDING", "5_1": "CANCELLED", "5_3": "PENDING", "6_0": "FAILED",
        "7_0": "PENDING", "7_1": "CANCELLED"}  # 6_1 and 8_0: nothing is known


@pytest.mark.parametrize("option", ["array", "dependency"])
def test_a_cluster_profile_may_not_set_what_the_executor_sets(option):
    from launcher.errors import ConfigError
    from launcher.resources import ClusterProfile

    with pytest.raises(ConfigError) as refused:
        ClusterProfile.from_config({"sbatch": {option: "0-3"}})
    assert refused.value.key == f"cluster.sbatch.{option}"
    assert "set by the SLURM executor" in str(refused.value)
    assert "hydra.launcher.max_parallel" in refused.value.hint


# ---- the real cluster ---------------------------------------------------------------------
def _show_config() -> str:
    return subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                          check=True).stdout


@contextlib.contextmanager
def cluster_settings(**settings: str) -> Iterator[None]:
    """slurm.conf with these settings for the block (`scontrol reconfigure`), then as it
    was, with the controller restarted: SLURM 22.05 keeps judging arrays by a
    MaxArraySize lowered by `reconfigure` after another `reconfigure` restored it (its
    `show config` says the restored one)."""
    conf = Path(os.environ["SLURM_CONF"])
    original = conf.read_text()
    text = original
    for key, value in settings.items():
        text, found = re.subn(rf"(?m)^{key}=.*$", f"{key}={value}", text)
        if not found:
            text += f"\n{key}={value}\n"
    try:
        conf.write_text(text)
        subprocess.run(["scontrol", "reconfigure"], check=True)
        shown = _show_config()
        for key, value in settings.items():
            assert re.search(rf"(?m)^{key}\s*=\s*.*{value}", shown), f"{key} not taken"
        yield
    finally:
        conf.write_text(original)
        restart_controller(conf)


def restart_controller(conf: Path) -> None:
    """Stop slurmctld (it saves its state), start it again, and wait until it and both
    nodes answer; running and queued jobs are kept."""
    subprocess.run(["scontrol", "shutdown", "slurmctld"], check=True, capture_output=True)
    wait_until(lambda: subprocess.run(["pgrep", "-x", "slurmctld"],
                                      capture_output=True).returncode != 0, "slurmctld stops")
    subprocess.run(["slurmctld", "-f", str(conf)], check=True)
    wait_until(lambda: "UP" in subprocess.run(["scontrol", "ping"], capture_output=True,
                                              text=True).stdout, "slurmctld answers")
    wait_until(lambda: set(subprocess.run(["sinfo", "-h", "-N", "-o", "%t"],
                                          capture_output=True, text=True).stdout.split())
               <= {"idle", "mix", "alloc"}, "the nodes answer")


def wait_until(done: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def small_arrays(slurm_cluster) -> Iterator[int]:
    """MaxArraySize=11 for the tests of this module that ask for it (they come last)."""
    with cluster_settings(MaxArraySize="11"):
        yield 11


@contextlib.contextmanager
def max_submit_jobs(limit: int) -> Iterator[None]:
    """This user's association may have `limit` jobs queued, enforced."""
    def set_to(value: int) -> None:
        subprocess.run(["sacctmgr", "-i", "modify", "user", _user(), "set",
                        f"maxsubmitjobs={value}"], check=True, capture_output=True)

    with cluster_settings(AccountingStorageEnforce="limits"):
        set_to(limit)
        try:
            yield
        finally:
            set_to(-1)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def jobs_of(exp: Path) -> list[dict]:
    """The jobs of the first sweep under `exp` (a retry makes a sweep of its own)."""
    path = sorted((exp / "sweeps").glob("*/jobs.json"))[0]
    return json.loads(path.read_text())["jobs"]


def array_of(job_id: str) -> str:
    return job_id.split("_", 1)[0]


def squeue(*fields: str) -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-u", _user(), "-o", "|".join(fields)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("|", 1) for line in out.splitlines())


@pytest.mark.slurm
def test_a_sweep_past_the_users_submit_limit_is_refused_before_anything_is_written(
        slurm_cluster, launch_cli, toy_recipe):
    """MaxSubmitJobs counts the user's queued jobs too: with room for 4 more, 6 are
    refused in one line naming the limit; 3 are queued; then 2 more are refused, 1 fits."""
    exp = toy_recipe / "exp"
    base = [toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}", HOLD]
    before = _queued_now()  # jobs of this user left queued by others count too
    with max_submit_jobs(before + 4):
        limits = read_limits()
        assert limits.submit_limit == before + 4 and limits.queued == before
        assert limits.limit_source == f"MaxSubmitJobs={before + 4} of your association " \
                                      f"with account {_default_account()}"
        code, out, err = launch_cli(*base, "-m", f"optim.lr={lrs(6)}")
        assert code != 0 and not exp.exists(), out + err
        assert err.strip().splitlines()[-1].endswith(
            "the sweep has 6 job(s) to queue but only 4 more fit within your limits "
            f"({limits.limit_source}, {before} job(s) queued now): launch at most 4 at once "
            "(a smaller grid), or wait for queued jobs to end; nothing was written"), err
        assert "Traceback" not in err
        code, dry, _ = launch_cli(*base, "--dry-run", "-m", f"optim.lr={lrs(6)}")
        assert code == 0 and "=== a launch here would be refused: the sweep has 6" in dry
        code, out, err = launch_cli(*base, "-m", f"optim.lr={lrs(3)}")
        try:
            assert code == 0, out + err
            code, out, err = launch_cli(*base, "-m", "seed=1,2")
            assert code != 0 and "only 1 more fit" in err, out + err
            assert f"{before + 3} job(s) queued now" in err
            assert len(list((exp / "sweeps").iterdir())) == 1
        finally:
            launch_cli("cancel", next((exp / "sweeps").iterdir()))


def _queued_now() -> int:
    out = subprocess.run(["squeue", "-h", "-r", "-u", _user(), "-o", "%i"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.split())


def _default_account() -> str:
    out = subprocess.run(["sacctmgr", "-n", "-P", "show", "user", _user(),
                          "format=DefaultAccount"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.slurm
def test_the_limits_are_read_from_the_cluster(slurm_cluster):
    limits = read_limits()
    assert limits.max_array_size == 1001 and limits.max_job_count == 20000
    assert limits.submit_limit is None  # accounting does not enforce limits here


@pytest.mark.slurm
def test_a_sweep_past_max_array_size_is_chained_arrays_followed_as_one(
        small_arrays, launch_cli, toy_recipe):
    """25 jobs with MaxArraySize=11: the dry run shows 3 arrays, the launch queues them
    (each waiting for the one before), and status, cancel and retry treat them as one
    sweep: cancelling one run leaves its array's other jobs, retry resubmits just it."""
    exp = toy_recipe / "exp"
    base = [toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}", HOLD]
    assert read_limits().max_array_size == 11
    code, dry, err = launch_cli(*base, "--dry-run", "-m", f"optim.lr={lrs(25)}")
    assert code == 0, err
    assert "=== 25 jobs as 3 arrays: this cluster's MaxArraySize is 11" in dry
    assert "#SBATCH --array=0-10%11" in dry
    assert "--- array 2: jobs 11-21, the same script but: " \
           "#SBATCH --dependency=afterany:<id of array 1>" in dry
    assert "--- array 3: jobs 22-24, the same script but: #SBATCH --array=0-2%3  " \
           "#SBATCH --dependency=afterany:<id of array 2>" in dry
    code, out, err = launch_cli(*base, "-m", f"optim.lr={lrs(25)}")
    try:
        assert code == 0, out + err
        jobs = jobs_of(exp)
        ids = [j["job_id"] for j in jobs]
        arrays = sorted({array_of(i) for i in ids}, key=int)
        assert len(arrays) == 3
        assert ids == [f"{a}_{i}" for a, n in zip(arrays, (11, 11, 3), strict=True)
                       for i in range(n)]
        assert [j["overrides"][-1] for j in jobs][:2] == ["optim.lr=0.0001", "optim.lr=0.0002"]
        waits = squeue("%F", "%E")
        assert waits[arrays[1]].startswith(f"afterany:{arrays[0]}")
        assert waits[arrays[2]].startswith(f"afterany:{arrays[1]}")

        sweep = next((exp / "sweeps").iterdir())
        # What every job shares (the launcher, Hydra's state) is pickled once.
        pickles = list((sweep / ".submitit").glob("*/*_submitted.pkl"))
        assert len(pickles) == 25 and max(p.stat().st_size for p in pickles) < 2000
        assert [p.name for p in (sweep / ".submitit").glob("shared.*.pkl")] == ["shared.0.pkl"]
        code, out, _ = launch_cli("status", sweep)
        assert code == 0 and out.splitlines()[0].endswith("(slurm): 25 queued"), out

        code, out, err = launch_cli("cancel", jobs[12]["run_dir"])  # one run: its task only
        assert code == 0 and out.strip() == (f"cancelled job {ids[12]}: optim.lr=0.0013 "
                                             "(not started: it had no run folder yet)"), out
        queued = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i"],
                                capture_output=True, text=True).stdout.split()
        assert sorted(queued) == sorted(ids[:12] + ids[13:])
        code, out, err = launch_cli("retry", sweep)
        assert code == 0 and "resubmitted 1 run(s)" in out, out + err
        retried = jobs_of(exp)[12]["job_id"]
        assert array_of(retried) not in arrays
        assert [j["job_id"] for j in jobs_of(exp)][:12] == ids[:12]
    finally:
        sweep = sorted((exp / "sweeps").iterdir())[0]
        code, out, err = launch_cli("cancel", sweep)
    assert code == 0 and out.count("cancelled job") == 25, out + err
    deadline = time.monotonic() + 30  # until accounting has the cancellations
    while True:
        code, out, _ = launch_cli("status", sweep)
        if out.splitlines()[0].endswith("(slurm): 25 cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert out.splitlines()[0].endswith("(slurm): 25 cancelled"), out


@pytest.mark.slurm
def test_max_parallel_caps_the_whole_sweep_not_each_array(small_arrays, tmp_path):
    """A plain Hydra app on the launcher's SLURM executor: 13 jobs with MaxArraySize=11 are
    2 arrays; with max_parallel=2 no more than 2 of the sweep's jobs ever ran at once, and
    the second array started after the first had ended."""
    app = tmp_path / "app"
    subprocess.run(["cp", "-r", str(HYDRA_APP), str(app)], check=True)
    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "my_app.py", "-m", "hydra/launcher=slurm",
         "hydra.launcher.max_parallel=2", "hydra.launcher.wait=true",
         f"hydra.sweep.dir={sweep}", f"lr={lrs(13)}"],
        cwd=app, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = json.loads((sweep / "jobs.json").read_text())["jobs"]
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 13
    ids = [j["job_id"] for j in jobs]
    arrays = sorted({array_of(i) for i in ids}, key=int)
    assert [sum(array_of(i) == a for i in ids) for a in arrays] == [11, 2]
    times = _start_end(ids)
    for before, after in itertools.pairwise(arrays):
        ended = max(end for i, (_, end) in times.items() if array_of(i) == before)
        started = min(start for i, (start, _) in times.items() if array_of(i) == after)
        assert started >= ended, (before, after, times)
    for moment in {start for start, _ in times.values()}:
        running = sum(start <= moment < end for start, end in times.values())
        assert running <= 2, times


def _start_end(ids: list[str]) -> dict[str, tuple[str, str]]:
    sacct_states(ids)  # settled
    out = subprocess.run(["sacct", "-n", "-P", "-X", "--format=JobID,Start,End", "-j",
                          ",".join(sorted({array_of(i) for i in ids}))],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    return {row[0]: (row[1], row[2]) for row in rows if row[0] in ids}


@pytest.mark.slurm
def test_an_array_refused_midway_leaves_nothing_queued(small_arrays, launch_cli, toy_recipe,
                                                       tmp_path, monkeypatch):
    """sbatch takes the first array and refuses the second (a limit met meanwhile): the
    first is cancelled, the sweep folder removed, and the refusal said in one line."""
    shims = tmp_path / "bin"
    shims.mkdir()
    count = tmp_path / "sbatch.calls"
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    (shims / "sbatch").write_text(
        f"#!/bin/bash\necho >> {count}\n"
        f"if [ $(wc -l < {count}) -ge 2 ]; then\n"
        "  echo 'sbatch: error: Batch job submission failed: Job violates accounting/QOS "
        "policy' >&2; exit 1\nfi\n"
        f"exec {real} \"$@\"\n")
    (shims / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    exp = toy_recipe / "exp"
    code, out, err = launch_cli(toy_recipe, "hydra/launcher=slurm", f"exp_root={exp}", HOLD,
                                "-m", f"optim.lr={lrs(25)}")
    assert code != 0
    assert err.strip().splitlines()[-1].endswith(
        "the scheduler refused the jobs, nothing was queued: sbatch: error: Batch job "
        "submission failed: Job violates accounting/QOS policy"), err
    (line,) = [x for x in out.splitlines() if x.startswith("cancelled the 1 array(s)")]
    first = line.rsplit(" ", 1)[1]
    assert subprocess.run(["squeue", "-h", "-j", first], capture_output=True,
                          text=True).stdout.strip() == ""
    out = subprocess.run(["sacct", "-n", "-P", "-X", "--format=State", "-j", first],
                         capture_output=True, text=True, check=True).stdout
    assert {state.split()[0] for state in out.splitlines()} <= {"CANCELLED"}
    assert not (exp / "sweeps").exists()
