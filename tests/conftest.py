"""Shared fixtures: recipes copied into tmp folders, the CLI run in-process, SLURM, the
side environment with Hydra's Optuna sweeper."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).resolve().parent / "recipes" / "toy"


@pytest.fixture(autouse=True, scope="session")
def private_state_dir(tmp_path_factory):
    """The sweep index goes to a folder of the test session, not the user's."""
    os.environ["LAUNCHER_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))


@pytest.fixture
def one_torch_thread(monkeypatch):
    """One thread per training process, here and in the jobs (which inherit the variable):
    as fast on these small models, and no crawl when other work shares the two cores."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def toy_recipe(tmp_path: Path) -> Path:
    """A copy of the toy recipe whose config a test may edit."""
    target = tmp_path / "toy" / "recipe"
    shutil.copytree(TOY, target)
    return target


def edit_config(recipe: Path, change) -> None:
    """Load the recipe's config.yaml, let `change(config)` edit it, write it back."""
    path = recipe / "conf" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def rejected(launch_cli, recipe: Path, *overrides: str) -> str:
    """Run a launch that must be refused: exit 2, one line, no traceback, nothing
    written; return the line."""
    exp = recipe / "exp"
    code, out, err = launch_cli(recipe, f"exp_root={exp}", *overrides)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("launch: error:"), err
    assert not exp.exists(), "a rejected launch must write nothing"
    return lines[0]


@pytest.fixture
def import_checks(monkeypatch):
    """Count the checks that import the recipe's classes (those the cache can skip)."""
    calls = []
    from launcher.plan import checks as preflight

    original = preflight._check_imports

    def counted(job, recipe_dir, composed=None):
        calls.append(job)
        return original(job, recipe_dir, composed)

    monkeypatch.setattr(preflight, "_check_imports", counted)
    return calls


@pytest.fixture
def launch_cli(capsys):
    """Run `launch ...` in-process; return (exit code, stdout, stderr)."""
    from launcher.cli import main

    def run(*argv: str):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def hydra_optuna_python() -> Path:
    """The python of the side environment with Hydra's Optuna sweeper (optuna 2.10),
    which cannot share .venv with the launcher's optuna; made once (tests/hydra_optuna_env.py).
    """
    import hydra_optuna_env

    try:
        return hydra_optuna_env.hydra_optuna_python()
    except hydra_optuna_env.SideEnvError as exc:
        pytest.fail(f"the side environment for hydra-optuna-sweeper: {exc}")


def slurm_available() -> bool:
    status = ROOT / "slurm" / "status"
    return status.exists() and subprocess.run(
        ["bash", str(status)], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local SLURM cluster; skip without it unless LAUNCHER_REQUIRE_SLURM=1."""
    if not slurm_available():
        message = "the local SLURM cluster is not up (run: make slurm-up)"
        if os.environ.get("LAUNCHER_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    if "SLURM_CONF" not in os.environ:
        conf = subprocess.run(["bash", "-c", f"source {ROOT / 'slurm' / 'env'}; "
                               "echo $SLURM_CONF"], capture_output=True, text=True)
        os.environ["SLURM_CONF"] = conf.stdout.strip()
    return ROOT / "slurm"


def sacct_states(job_ids: list[str], settle_s: float = 30) -> dict[str, str]:
    """Final scheduler states of jobs (array tasks as <array>_<index>).

    Accounting lags the job's own end by a moment, so wait (bounded) until no
    job is still pending or running there.
    """
    import time

    deadline = time.monotonic() + settle_s
    while True:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "--format=JobID,State", "-j",
                              ",".join(job_ids)], capture_output=True, text=True, check=True)
        states = dict(line.split("|", 1) for line in out.stdout.split())
        unsettled = {"PENDING", "RUNNING", "COMPLETING", "REQUEUED"} & set(states.values())
        if (not unsettled and len(states) == len(job_ids)) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)
