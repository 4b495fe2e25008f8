"""An existing Lightning app (lightning-hydra-template's shape, examples/lightning_app)
runs under `launch` with no adapter: here, as a sweep on the local executor, in
`launch status`, and resumed after an interruption from its last checkpoint."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, rejected

from launcher.status_file import read_status

EXAMPLE = ROOT / "examples" / "lightning_app"
SMALL = ["--config-name", "train", "data.num_samples=[256,64,64]"]  # 8 batches an epoch
INTERRUPT = '''
import os
import signal
from pathlib import Path

import pytorch_lightning as pl


class Interrupt(pl.Callback):
    """SIGTERM once, after global step `at_step`, as a scheduler's warning would."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        marker = Path(trainer.default_root_dir) / "interrupted"
        if trainer.global_step == self.at_step and not marker.exists():
            marker.write_text("")
            os.kill(os.getpid(), signal.SIGTERM)
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A copy of the example app that a test may change."""
    target = tmp_path / "app"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("exp", "__pycache__"))
    return target


def run_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps")


def checkpoint(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def test_the_example_app_trains_and_tests_with_its_own_callbacks_and_loggers(
        launch_cli, app, one_torch_thread):
    exp = app / "exp"
    code, _, err = launch_cli(app, *SMALL, f"exp_root={exp}", "trainer.max_epochs=2",
                              "logger=csv")
    assert code == 0, err[-3000:]
    (run_dir,) = run_dirs(exp)
    assert read_status(run_dir)["state"] == "completed"
    # The launcher's last.ckpt, at the end of both epochs of 8 batches; the app's own
    # ModelCheckpoint kept its best epoch beside it (and left last.ckpt to the launcher).
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in names and any(n.startswith("epoch_") for n in names), names
    assert checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 16
    # test: true tested the app's best checkpoint.
    report = json.loads((run_dir / "evaluate.json").read_text())
    assert report["weights"].endswith(".ckpt") and "epoch_" in report["weights"]
    assert 0.0 <= report["metrics"]["test/acc"] <= 1.0
    # The launcher's metrics.csv (launch status reads it) and the app's own CSV logger.
    assert "val/acc" in (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert list((run_dir / "csv").rglob("metrics.csv"))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["best_model_criterion"] == [["val/acc", 1, "max"]]  # what status tracks
    assert "default_root_dir" not in saved["trainer"]
    assert saved["trainer"]["devices"] == 1 and saved["trainer"]["accelerator"] == "cpu"
    log = (run_dir / "run.log").read_text()
    assert "Lightning app: model src.models.blobs_module.BlobsLitModule" in log
    assert "callbacks.model_checkpoint.save_last: the launcher keeps" in log


def test_a_sweep_of_the_app_runs_on_the_local_executor_and_shows_in_status(
        launch_cli, app, one_torch_thread):
    from launcher.launch import launch

    exp = app / "exp"
    launch(app, ["data.num_samples=[128,32,32]", f"exp_root={exp}", "trainer.max_epochs=1",
                 "test=false", "model.optimizer.lr=0.01,0.05"],
           config_name="train", multirun=True, wait=True)
    dirs = run_dirs(exp)
    assert len(dirs) == 2
    rates = set()
    for run_dir in dirs:
        assert read_status(run_dir)["state"] == "completed", (run_dir / "run.log").read_text()
        rates.add(yaml.safe_load((run_dir / "config.yaml").read_text())
                  ["model"]["optimizer"]["lr"])
    assert rates == {0.01, 0.05}
    (sweep,) = (exp / "sweeps").iterdir()
    code, out, err = launch_cli("status", sweep)
    assert code == 0, err
    assert "2 completed" in out and "val/acc" in out  # the app's metric, tracked
    assert "model.optimizer.lr=0.01" in out and "model.optimizer.lr=0.05" in out


def test_an_interrupted_app_resumes_at_its_last_checkpoint_and_says_how(
        launch_cli, app, one_torch_thread):
    (app / "src" / "interrupt.py").write_text(INTERRUPT)
    exp = app / "exp"
    args = [*SMALL, f"exp_root={exp}", "trainer.max_epochs=2", "test=false",
            "+callbacks.interrupt={_target_: src.interrupt.Interrupt, at_step: 5}"]
    code, _, err = launch_cli(app, *args)
    assert code == 143, err[-3000:]
    (run_dir,) = run_dirs(exp)
    stopped = checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert (stopped["epoch"], stopped["global_step"]) == (0, 5)  # inside the first epoch
    assert "not guaranteed" not in (run_dir / "run.log").read_text()

    code, _, err = launch_cli(app, *args)
    assert code == 0, err[-3000:]
    assert read_status(run_dir)["state"] == "completed"
    log = (run_dir / "run.log").read_text()
    assert f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in log
    (line,) = [li for li in log.splitlines() if "exact mid-epoch resume is not guaranteed" in li]
    assert "resuming at the last checkpoint" in line and "last.ckpt" in line
    # Lightning's own resume: the rest of the first epoch, then the second.
    assert checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 16


def test_an_app_folder_without_config_yaml_says_which_config_name_to_pass(launch_cli, app):
    line = rejected(launch_cli, app)
    assert "no config 'config.yaml'" in line and "pass --config-name train" in line
    (app / "configs").rename(app / "elsewhere")
    assert "has no conf/ or configs/ folder" in rejected(launch_cli, app, *SMALL)


@pytest.mark.skipif(importlib.util.find_spec("lightning") is not None,
                    reason="the unified lightning package is installed here")
def test_app_code_importing_lightning_pytorch_is_refused_in_one_line(launch_cli, app):
    module = app / "src" / "models" / "blobs_module.py"
    module.write_text(module.read_text().replace("import pytorch_lightning as pl",
                                                 "import lightning.pytorch as pl"))
    line = rejected(launch_cli, app, *SMALL, "--dry-run")
    assert "key 'model._target_'" in line
    assert "imports 'lightning'" in line and "import pytorch_lightning as L" in line


def test_the_newer_templates_spellings_are_accepted(launch_cli, app):
    # lightning.pytorch.* targets (read as pytorch_lightning.*), and the template's
    # default `seed: null` (not seeded).
    code, out, err = launch_cli(
        app, *SMALL, f"exp_root={app / 'exp'}", "--dry-run", "seed=null",
        "trainer._target_=lightning.pytorch.trainer.Trainer",
        "callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping")
    assert code == 0, err
    assert "  seed: null" in out
    assert "launcher.systems.lightning_app.LightningAppSystem" in out
    assert "launcher.components.trainers.trainer.ESPnet3LightningTrainer" in out


@pytest.mark.parametrize("override,says", [
    ("trainer.devices=2", "trainer.devices=2 contradicts the resources"),
    # The template's `devices: 1` against more processes: remove it, say it in resources.
    ("resources.processes_per_node=2", "(on the command line: ~trainer.devices)"),
    ("trainer.accelerator=gpu", "set resources.gpus_per_node"),
    ("trainer.default_root_dir=/tmp/elsewhere", "the run directory is chosen by the launcher"),
    ("+extra_key=1", "no part of the run reads 'extra_key'"),
])
def test_what_the_launcher_decides_is_refused_in_one_line(launch_cli, app, override, says):
    assert says in rejected(launch_cli, app, *SMALL, override)
