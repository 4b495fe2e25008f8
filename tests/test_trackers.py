"""Experiment trackers continue one tracker run across relaunches and crashes: the ids
in trackers.json are reused, and the step axis has neither gaps nor duplicates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import edit_config, rejected

from launcher.components.trainers.options import build_loggers, check_logger_spec
from launcher.components.trainers.trackers import drop_steps, run_names
from launcher.errors import ConfigError

# 64 samples in batches of 16: epoch 1 logs at steps 0-3 and checkpoints at step 4.
RESUME_STEP = 4
FAKE = 99.0  # what a crashed attempt logged after its last checkpoint


# ---- checked while planning ---------------------------------------------------------
def test_tracker_names_and_blocks_are_accepted():
    check_logger_spec("mlflow")
    check_logger_spec(["csv", "tensorboard", "mlflow", "wandb"])
    check_logger_spec({"_target_": "pytorch_lightning.loggers.WandbLogger", "project": "p"})
    check_logger_spec([{"_target_": "lightning.pytorch.loggers.MLFlowLogger"}])


@pytest.fixture
def without(monkeypatch):
    """Make packages look uninstalled to `find_spec` (and only those)."""
    def hide(*names: str) -> None:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name in names else real(name, *a))
    return hide


@pytest.mark.parametrize("spec,key,fix", [
    (["csv", "mlflow"], r"trainer\.logger\[1\]", "pip install mlflow-skinny"),
    ("wandb", r"'trainer\.logger'", "pip install wandb"),
    ({"_target_": "pytorch_lightning.loggers.MLFlowLogger"}, r"'trainer\.logger'",
     "pip install mlflow-skinny"),
])
def test_a_missing_tracker_package_is_refused(without, spec, key, fix):
    without("mlflow", "wandb")
    with pytest.raises(ConfigError, match=key) as error:
        check_logger_spec(spec)
    assert error.value.hint.startswith(fix)


def test_a_missing_package_is_one_line_before_anything_runs(without, launch_cli, toy_recipe):
    without("wandb")
    line = rejected(launch_cli, toy_recipe, "+trainer.logger=wandb")
    assert "trainer.logger" in line and "pip install wandb" in line


# ---- built in the job -----------------------------------------------------------------
def test_ids_are_kept_and_filled_in_only_where_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    run_dir = tmp_path / "exp" / "run1"
    target = {"_target_": "pytorch_lightning.loggers.TensorBoardLogger", "save_dir": "tb"}
    monkeypatch.chdir(tmp_path)
    tensorboard, wandb = build_loggers([target, "wandb"], run_dir)
    saved = json.loads((run_dir / "trackers.json").read_text())
    assert saved["tensorboard"]["version"] == tensorboard.version == 0
    assert saved["wandb"]["id"] == wandb.version and len(wandb.version) == 8
    (tmp_path / "tb" / "lightning_logs" / "version_0").mkdir(parents=True)  # attempt 1's
    again = build_loggers([target, "wandb"], run_dir)
    assert again[0].version == 0 and again[1].version == wandb.version  # not version_1
    assert json.loads((run_dir / "trackers.json").read_text()) == saved
    own = build_loggers([{"_target_": "pytorch_lightning.loggers.WandbLogger",
                          "id": "mine"}], run_dir)[0]
    assert own.version == "mine"


def test_drop_steps_cuts_lines_at_and_after_the_step(tmp_path):
    metrics = tmp_path / "metrics"
    (metrics / "train").mkdir(parents=True)
    (metrics / "train" / "loss").write_text("1 0.5 0\n2 0.4 3\n3 9.0 4\n4 9.0 6\n")
    (metrics / "late").write_text("5 1.0 5\n")
    assert drop_steps(metrics, 4) == 3
    assert (metrics / "train" / "loss").read_text() == "1 0.5 0\n2 0.4 3\n"
    assert not (metrics / "late").exists()  # MLflow cannot read an empty metric file


def test_run_names():
    assert run_names(Path("/x/exp/lr=0.1-ab")) == ("exp", "lr=0.1-ab")
    assert run_names(Path("/x/exp/run/phases/warmup")) == ("exp", "run/warmup")


# ---- real training --------------------------------------------------------------------
def trained(launch_cli, recipe: Path, exp: Path, epochs: int, logger: list) -> Path:
    edit_config(recipe, lambda c: c["trainer"].update(max_epochs=epochs, logger=logger))
    code, _, err = launch_cli(recipe, f"exp_root={exp}")
    assert code == 0, err[-3000:]
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    return run_dir


def mlflow_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} in logged order; the run folder must be one."""
    (metrics,) = run_dir.glob("mlruns/*/*/metrics")
    return {str(p.relative_to(metrics)): [(int(f[2]), float(f[1])) for f in
                                          map(str.split, p.read_text().splitlines())]
            for p in sorted(metrics.rglob("*")) if p.is_file()}


def tensorboard_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard shows them (older events purged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = run_dir / "tensorboard"
    assert not [p for p in log_dir.iterdir() if p.is_dir()], "one log dir, no version_N"
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, round(e.value, 6)) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def assert_continued(history: dict, clean: dict) -> None:
    """The same values at the same steps as an uninterrupted run; each step once
    (`epoch` is logged with every call, so it repeats in any run)."""
    rounded = {k: [(s, round(v, 6)) for s, v in pts] for k, pts in history.items()}
    assert rounded == {k: [(s, round(v, 6)) for s, v in pts] for k, pts in clean.items()}
    for name, points in history.items():
        steps = [s for s, _ in points]
        assert name == "epoch" or steps == sorted(set(steps)), (name, steps)
        assert FAKE not in [v for _, v in points], name


def crash_after_checkpoint(run_dir: Path) -> None:
    """What an attempt killed after logging steps 4 and 5 (past its checkpoint) leaves."""
    from torch.utils.tensorboard import SummaryWriter

    (metrics,) = run_dir.glob("mlruns/*/*/metrics")
    for name in ("train/loss", "valid/loss", "lr-SGD"):
        with open(metrics / name, "a") as file:
            file.writelines(f"1 {FAKE} {step}\n" for step in (RESUME_STEP, RESUME_STEP + 1))
    (metrics / "only_then").write_text(f"1 {FAKE} {RESUME_STEP + 1}\n")
    writer = SummaryWriter(str(run_dir / "tensorboard"))
    for step in (RESUME_STEP, RESUME_STEP + 1):
        for tag in ("train/loss", "valid/loss", "lr-SGD"):
            writer.add_scalar(tag, FAKE, step)
    writer.close()


@pytest.mark.slow
def test_tensorboard_and_mlflow_continue_one_run(launch_cli, toy_recipe, one_torch_thread,
                                                 monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = ["csv", "tensorboard", "mlflow"]
    clean = trained(launch_cli, toy_recipe, toy_recipe / "clean", 2, logger)
    for crashed in (False, True):
        exp = toy_recipe / ("crashed" if crashed else "relaunched")
        run_dir = trained(launch_cli, toy_recipe, exp, 1, logger)
        ids = json.loads((run_dir / "trackers.json").read_text())
        assert ids["tensorboard"]["version"] == "" and ids["mlflow"]["run_id"]
        if crashed:
            crash_after_checkpoint(run_dir)
        assert trained(launch_cli, toy_recipe, exp, 2, logger) == run_dir
        assert "resuming from" in (run_dir / "run.log").read_text()
        assert json.loads((run_dir / "trackers.json").read_text()) == ids
        assert_continued(mlflow_history(run_dir), mlflow_history(clean))
        assert_continued(tensorboard_history(run_dir), tensorboard_history(clean))
        (run_folder,) = run_dir.glob("mlruns/*/*/metrics")
        assert run_folder.parent.name == ids["mlflow"]["run_id"]


@pytest.mark.slow
def test_wandb_offline_continues_one_run(launch_cli, toy_recipe, one_torch_thread,
                                         monkeypatch, tmp_path):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR", "ARTIFACT_DIR"):
        monkeypatch.setenv(f"WANDB_{name}", str(tmp_path / "wandb-home" / name.lower()))
    exp = toy_recipe / "exp"
    try:
        run_dir = trained(launch_cli, toy_recipe, exp, 1, ["csv", "wandb"])
        run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]["id"]
        wandb.finish()  # what the job's process would do as it ends
        trained(launch_cli, toy_recipe, exp, 2, ["csv", "wandb"])
    finally:
        wandb.finish()
    assert json.loads((run_dir / "trackers.json").read_text())["wandb"]["id"] == run_id
    attempts = sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and all(a.endswith(f"-{run_id}") for a in attempts)
    assert all((run_dir / "wandb" / a / f"run-{run_id}.wandb").is_file() for a in attempts)
