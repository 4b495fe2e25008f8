"""A recipe's run.py takes ESPnet3's flags (`--stages`, `--training_config`, `--dry_run`)
as well as the launcher's own arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.errors import ConfigError
from launcher.run_script import launch_arguments, run_recipe
from launcher.systems.base.system import System

ROOT = Path(__file__).resolve().parents[1]
TONES = ROOT / "egs3" / "tones" / "asr1"


@pytest.mark.parametrize("argv,expected", [
    (["--stages", "collect_stats", "train", "optim.lr=0.1", "--dry_run"],
     ["stages=[collect_stats,train]", "optim.lr=0.1", "--dry-run"]),
    (["--stages=train", "-m", "optim.lr=0.1,0.2"], ["stages=[train]", "-m", "optim.lr=0.1,0.2"]),
    (["--training_config", "conf/config.yaml", "--stages", "all"],
     ["--config-name", "config", "stages=[all]"]),
    (["--training_config", str(TONES / "conf" / "curriculum.yaml")],
     ["--config-name", "curriculum"]),
    (["trainer.max_epochs=1", "--wait"], ["trainer.max_epochs=1", "--wait"]),
])
def test_espnet3_flags_become_the_launchers(argv, expected):
    assert launch_arguments(TONES, argv) == expected


@pytest.mark.parametrize("argv,words", [
    (["--training_config", "/etc/hosts"], ["not a .yaml file in", "key '--training_config'"]),
    (["--training_config", "conf/missing.yaml"], ["not a .yaml file in"]),
    (["--training_config", "conf/config.yaml", "conf/curriculum.yaml"], ["takes one file"]),
    (["--stages"], ["needs at least one stage"]),
    (["--inference_config", "conf/inference.yaml"], ["key '--inference_config'"]),
])
def test_flags_that_cannot_work_are_refused_in_one_line(argv, words):
    with pytest.raises(ConfigError) as caught:
        launch_arguments(TONES, argv)
    for word in words:
        assert word in str(caught.value)


def test_all_means_every_stage_of_the_system():
    assert System.check_stages(["all"]) == System.known_stages()


def test_run_py_with_espnet3_flags_runs_the_recipe(toy_recipe, capsys):
    exp = toy_recipe / "exp"
    assert run_recipe(toy_recipe, ["--stages", "train", "--training_config",
                                   "conf/config.yaml", f"exp_root={exp}"]) == 0
    (run_dir,) = [p for p in exp.iterdir() if p.name != "sweeps"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["stages_done"] == ["train"]
    assert run_recipe(toy_recipe, ["--inference_config", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("run.py: error:") and "Traceback" not in err


def test_the_shipped_run_py_is_the_script_users_run(tmp_path):
    """`python run.py --dry_run --stages collect_stats` inside a copy of the recipe."""
    recipe = tmp_path / "tones"
    shutil.copytree(TONES, recipe, ignore=shutil.ignore_patterns("exp"))
    shown = subprocess.run([sys.executable, "run.py", "--dry_run", "--stages", "collect_stats",
                            "--training_config", "conf/config.yaml"], cwd=recipe,
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "  stages:\n  - collect_stats\n" in shown.stdout
    assert not (recipe / "exp").exists(), "a dry run writes nothing"
