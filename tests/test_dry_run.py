"""--dry-run shows each job and the exact sbatch script; it submits and writes nothing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "sbatch_two_nodes_array.txt"
SWEEP = ["hydra/launcher=slurm", "resources.nodes=2", "resources.cpus_per_task=2",
         "resources.time_min=30", "-m", "optim.lr=0.1,0.2"]


def dry_run(launch_cli, recipe: Path, *overrides: str) -> str:
    exp = recipe / "exp"
    code, out, err = launch_cli(recipe, "--dry-run", f"exp_root={exp}", *overrides)
    assert code == 0, err
    assert not exp.exists(), "a dry run must write nothing"
    return out


def sbatch_part(out: str) -> str:
    script = out.split("=== sbatch script", 1)[1].split("\n", 1)[1]
    script = re.sub(r"/\S+/sweeps/[\w-]+/\.submitit", "<SUBMITIT>", script)
    return script.replace(sys.executable, "<PYTHON>").strip() + "\n"


def test_sbatch_script_matches_the_resource_spec(launch_cli, toy_recipe):
    out = dry_run(launch_cli, toy_recipe, *SWEEP)
    script = sbatch_part(out)
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --cpus-per-task=2", "#SBATCH --time=30", "#SBATCH --array=0-1%2"):
        assert line in script
    if not GOLDEN.exists() or GOLDEN.read_text() != script:
        pytest.fail(f"the sbatch script differs from {GOLDEN}; if the change is intended, "
                    f"re-record it with: LAUNCHER_RECORD=1 pytest {__file__}"
                    if not _record(script) else "re-recorded the golden sbatch script")


def _record(script: str) -> bool:
    import os

    if os.environ.get("LAUNCHER_RECORD") == "1":
        GOLDEN.write_text(script)
        return True
    return False


def test_each_job_shows_its_config_classes_and_run_directory(launch_cli, toy_recipe):
    out = dry_run(launch_cli, toy_recipe, *SWEEP)
    assert "dry run: 2 job(s) on the slurm executor" in out
    assert out.count("=== job ") == 2
    assert "lr: 0.1" in out and "lr: 0.2" in out
    assert "model             src.model.Regressor" in out
    assert "trainer           launcher.components.trainers.trainer.ESPnet3LightningTrainer" in out
    assert "num_nodes: 2" in out and "strategy: ddp" in out
    assert "_recipe_" not in out  # the user's own spelling, src., is shown


def test_contradicting_specs_are_rejected_before_submission(launch_cli, toy_recipe):
    code, _, err = launch_cli(toy_recipe, "--dry-run", f"exp_root={toy_recipe / 'exp'}",
                              "hydra/launcher=slurm", "resources.nodes=2",
                              "+trainer.num_nodes=1")
    assert code == 2 and "trainer.num_nodes=1 contradicts the resources" in err


HOSTILE = ["it's \"quoted\"", "two words", "$(touch /tmp/launcher-pwned)", "`id`",
           "line1\nline2", "x; rm -rf ~"]


@pytest.mark.parametrize("value", HOSTILE)
def test_override_values_cannot_inject_into_the_sbatch_script(launch_cli, toy_recipe, value):
    benign = sbatch_part(dry_run(launch_cli, toy_recipe, *SWEEP))
    quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    out = dry_run(launch_cli, toy_recipe, *SWEEP, f"+data_dir={quoted}")
    assert sbatch_part(out) == benign, "override values must never reach the batch script"
    assert not Path("/tmp/launcher-pwned").exists()


@pytest.mark.parametrize("key", ["resources.partition", "resources.account", "resources.qos"])
def test_scheduler_fields_refuse_injection(launch_cli, toy_recipe, key):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, "--dry-run", f"exp_root={exp}",
                              "hydra/launcher=slurm", f"{key}='debug\n#SBATCH --wrap=id'")
    assert code == 2 and f"key '{key}'" in err and "not a valid SLURM name" in err
    assert not exp.exists()


def test_cluster_profiles_shape_the_script_and_the_trainer(launch_cli, toy_recipe):
    (toy_recipe / "conf" / "cluster").mkdir()
    (toy_recipe / "conf" / "cluster" / "lab.yaml").write_text(
        "partition: gpu-long\naccount: speech\nsetup: ['module load cuda/12.4']\n"
        "sbatch: {mail-type: END}\n"
        "callbacks: [{_target_: pytorch_lightning.callbacks.LearningRateMonitor}]\n")
    out = dry_run(launch_cli, toy_recipe, "hydra/launcher=slurm", "cluster=lab")
    script = sbatch_part(out)
    for line in ("#SBATCH --partition=gpu-long", "#SBATCH --account=speech",
                 "#SBATCH --mail-type=END", "module load cuda/12.4"):
        assert line in script
    assert "_target_: pytorch_lightning.callbacks.LearningRateMonitor" in out
    shared = sbatch_part(dry_run(launch_cli, toy_recipe, "hydra/launcher=slurm",
                                 "cluster=local", "resources.partition=other"))
    assert "#SBATCH --partition=other" in shared  # the resources win over the profile


def test_unknown_cluster_profile(launch_cli, toy_recipe):
    code, _, err = launch_cli(toy_recipe, "--dry-run", "cluster=nowhere")
    assert code == 2 and "cluster" in err and "nowhere" in err


def test_a_dry_run_whose_checks_are_remembered_imports_no_torch(toy_recipe, tmp_path):
    """The classes are shown with the files that define them, found without importing
    them (planning checked them): a second dry run takes seconds less."""
    import os
    import subprocess

    code = ("import sys\nfrom launcher.cli import main\n"
            "rc = main([sys.argv[1], '--dry-run', f'exp_root={sys.argv[2]}'])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\nsys.exit(rc)")
    env = {**os.environ, "LAUNCHER_STATE_DIR": str(tmp_path / "state")}
    runs = [subprocess.run([sys.executable, "-c", code, str(toy_recipe), str(tmp_path / "exp")],
                           capture_output=True, text=True, env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.strip().endswith("\nTORCH")  # the first launch checks the classes
    assert runs[1].stdout.strip().endswith("NO TORCH")
    classes = [r.stdout.split("classes:\n", 1)[1].split("config:", 1)[0] for r in runs]
    assert classes[0] == classes[1]
    assert f"({toy_recipe / 'src' / 'model.py'})" in classes[1]
