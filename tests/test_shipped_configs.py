"""Every shipped config and every recipe config composes and passes the checks (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from launcher.conf import CONF_DIR
from launcher.executors.options import launcher_conf_dir

RECIPE_CONFIGS = sorted(ROOT.glob("egs3/*/*/conf/*.yaml")) + sorted(
    ROOT.glob("bench/recipe/conf/*.yaml"))
TOY = ROOT / "tests" / "recipes" / "toy"


def option_names(group: str) -> list[str]:
    folder = launcher_conf_dir() if group == "hydra/launcher" else CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml"))


@pytest.mark.parametrize("config", RECIPE_CONFIGS,
                         ids=[str(p.relative_to(ROOT)) for p in RECIPE_CONFIGS])
def test_every_recipe_config_passes_the_checks(config: Path, launch_cli, tmp_path):
    code, out, err = launch_cli(config.parents[1], "--config-name", config.stem,
                                f"exp_root={tmp_path}", "--dry-run")
    assert code == 0, err
    assert "=== job 0" in out and not any(tmp_path.iterdir())


@pytest.mark.parametrize("executor", option_names("hydra/launcher"))
def test_every_executor_config(executor, launch_cli, tmp_path):
    code, out, err = launch_cli(TOY, f"hydra/launcher={executor}", f"exp_root={tmp_path}",
                                "--dry-run", "-m", "optim.lr=0.1,0.2")
    assert code == 0, err
    assert f"dry run: 2 job(s) on the {executor} executor" in out


@pytest.mark.parametrize("cluster", option_names("cluster"))
def test_every_cluster_profile(cluster, launch_cli, tmp_path):
    code, out, err = launch_cli(TOY, "hydra/launcher=slurm", f"cluster={cluster}",
                                f"exp_root={tmp_path}", "--dry-run")
    assert code == 0, err
    assert "#SBATCH" in out


@pytest.mark.parametrize("preset", [p for p in option_names("trainer") if p != "fsdp"])
def test_every_trainer_preset_on_cpus(preset, launch_cli, tmp_path):
    code, out, err = launch_cli(TOY, f"trainer={preset}", "resources.processes_per_node=2",
                                f"exp_root={tmp_path}", "--dry-run")
    assert code == 0, err
    assert "accelerator: cpu" in out and "devices: 2" in out


def test_the_fsdp_preset_asks_for_gpus(launch_cli, tmp_path):
    code, _, err = launch_cli(TOY, "trainer=fsdp", f"exp_root={tmp_path}")
    assert code == 2 and "FSDP shards over GPUs, and this run has none" in err
    code, out, err = launch_cli(TOY, "trainer=fsdp", "hydra/launcher=slurm",
                                "resources.gpus_per_node=2", f"exp_root={tmp_path}", "--dry-run")
    assert code == 0, err
    assert "name: fsdp" in out and "precision: bf16-mixed" in out and "devices: 2" in out
