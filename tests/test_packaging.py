"""The package ships what it needs: a wheel, installed elsewhere, runs a recipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from conftest import ROOT, TOY


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for top in ("launcher", "hydra_plugins") for p in (ROOT / top).rglob("__init__.py")}
    assert found | {"launcher.conf", "hydra_plugins"} == listed


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (not editable) into a folder of its own."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (wheel,) = out.glob("launcher-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    return target


def run_installed(installed: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "launcher.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_an_installed_launcher_finds_its_configs_from_anywhere(installed, tmp_path):
    code = ("import launcher, launcher.conf; print(launcher.__file__); "
            "print(sorted(p.name for p in launcher.conf.CONF_DIR.iterdir()))")
    shown = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(installed)})
    assert shown.stdout.splitlines()[0].startswith(str(installed)), shown.stdout
    for group in ("cluster", "trainer"):  # hydra/launcher: the plugin's search path
        assert group in shown.stdout
    recipe = tmp_path / "recipe"
    shutil.copytree(TOY, recipe)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dry = run_installed(installed, elsewhere, str(recipe), "hydra/launcher=slurm",
                        "cluster=local", "trainer=ddp", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "#SBATCH --partition=debug" in dry.stdout and "name: ddp" in dry.stdout
    run = run_installed(installed, elsewhere, str(recipe), "trainer.max_epochs=1")
    assert run.returncode == 0, run.stderr
    assert any((p / "checkpoints" / "last.ckpt").is_file() for p in (recipe / "exp").iterdir())
