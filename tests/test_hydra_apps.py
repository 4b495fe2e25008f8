"""A plain `@hydra.main` app on our launchers: result-driven sweepers read each task's own
value, a task that cannot resume is not requeued on SLURM's time-limit warning (unless
it says it can), and launcher options that do not exist are refused before anything
is made."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

APP = '''
import os, time
from pathlib import Path
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    if "marker" in cfg:  # one line per attempt; wait for the test to say stop
        with open(cfg.marker, "a") as f:
            f.write(f"attempt {os.environ.get('SLURM_RESTART_COUNT', '0')}\\n")
        deadline = time.time() + 60
        while not Path(cfg.marker + ".stop").exists() and time.time() < deadline:
            time.sleep(0.2)
    return (cfg.x - 1.0) ** 2 if "x" in cfg else 0.0

main()
'''


def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def run_app(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(app(tmp_path)), "-m",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_an_option_no_launcher_has_is_refused_before_anything_is_made(tmp_path):
    done = run_app(tmp_path, "hydra/launcher=local", "+x=1", "+hydra.launcher.timeout_min=7")
    assert done.returncode == 1
    assert "'timeout_min' is not an option of the launcher's executors" in done.stderr
    assert "set resources.time_min instead" in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_launch_leaves_requeue_of_a_recipe_to_its_requeue_block(launch_cli, toy_recipe):
    code, _, err = launch_cli(toy_recipe, "hydra/launcher=slurm", "hydra.launcher.requeue=true",
                              "--dry-run")
    assert code == 2 and "requeue.max_requeues" in err and len(err.strip().splitlines()) == 1


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hydra_app"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "hydra.md"


def documented_commands() -> list[str]:
    return [line.strip() for line in DOCS.read_text().splitlines()
            if line.startswith("    python my_app.py ")]


def test_the_documented_app_is_the_example():
    text = DOCS.read_text()
    assert (EXAMPLE / "my_app.py").read_text() in text
    assert (EXAMPLE / "conf" / "config.yaml").read_text() in text
    assert len(documented_commands()) == 3


@pytest.mark.slurm
def test_the_documented_commands_run_and_return_each_tasks_value(slurm_cluster, tmp_path,
                                                                 hydra_optuna_python):
    """Each command of docs/hydra.md, in a copy of the example; then `launch status`.

    Run by the side environment's python, which has hydra-optuna-sweeper (optuna 2.x)
    for the third command, and everything else from .venv."""
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for n, command in enumerate(documented_commands()):
        sweep = tmp_path / f"sweep{n}"
        done = subprocess.run([str(hydra_optuna_python), *shlex.split(command)[1:],
                               f"hydra.sweep.dir={sweep}"], cwd=app, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, command + done.stderr
        jobs = json.loads((sweep / "jobs.json").read_text())["jobs"]
        assert {j["state"] for j in jobs} == {"COMPLETED"}, command
        for job in jobs:  # each job ran in Hydra's folder for it, with Hydra's records
            assert (Path(job["run_dir"]) / ".hydra" / "overrides.yaml").is_file()
    assert len(jobs) == 4  # the Optuna search: awaited, though wait is false
    lrs = [float(j["overrides"][0].split("=", 1)[1]) for j in jobs]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(min((lr - 0.01) ** 2 + 2e-5 for lr in lrs))
    status = subprocess.run([str(hydra_optuna_python), "-m", "launcher.cli", "status",
                             str(sweep)],
                            capture_output=True, text=True, env=env)
    assert status.returncode == 0 and status.stdout.count("completed") >= 4, status.stdout


def _signalled_attempts(tmp_path: Path, *overrides: str) -> tuple[list[str], str]:
    """Run one plain task on SLURM, send it the time-limit warning signal once it has
    started, let it finish; its attempts and its job's output."""
    marker = tmp_path / "attempts"
    proc = subprocess.Popen([sys.executable, str(app(tmp_path)), "-m",
                             f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra/launcher=slurm",
                             "hydra.launcher.wait=true", f"+marker={marker}", *overrides],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        (job,) = json.loads((tmp_path / "sweep" / "jobs.json").read_text())["jobs"]
        time.sleep(1)  # the task's handlers are in place once it writes its marker
        subprocess.run(["scancel", f"--signal={signal.SIGUSR2.name[3:]}", job["job_id"]],
                       check=True)
        time.sleep(3)
        if len(marker.read_text().splitlines()) == 1 and "requeue=true" in overrides:
            deadline = time.monotonic() + 120  # requeued: wait for the second attempt
            while len(marker.read_text().splitlines()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
        (tmp_path / "attempts.stop").touch()
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    return marker.read_text().splitlines(), Path(job["stdout"]).read_text()


@pytest.mark.slurm
def test_a_plain_task_is_not_requeued_on_the_time_limit_warning(slurm_cluster, tmp_path):
    attempts, output = _signalled_attempts(tmp_path)
    assert attempts == ["attempt 0"]
    assert "this task is not requeued, as it cannot resume" in output


@pytest.mark.slurm
def test_a_plain_task_that_resumes_is_requeued_when_it_says_so(slurm_cluster, tmp_path):
    attempts, _ = _signalled_attempts(tmp_path, "hydra.launcher.requeue=true")
    assert attempts == ["attempt 0", "attempt 1"]
