"""ESPnet3's defaults: the best checkpoints by valid/loss, their average under ESPnet's
file name (loadable into the bare model), and the learning rates in the metrics."""

from __future__ import annotations

import csv
import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from conftest import TOY, edit_config


def toy_model_class() -> type:
    spec = importlib.util.spec_from_file_location("toy_model", TOY / "src" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Regressor


def _drop_criterion(config: dict) -> None:
    del config["best_model_criterion"]


def _train(launch_cli, recipe: Path, *overrides: str) -> Path:
    code, _, err = launch_cli(recipe, f"exp_root={recipe / 'exp'}", *overrides)
    assert code == 0, err[-3000:]
    (run_dir,) = [p for p in (recipe / "exp").iterdir() if p.name != "sweeps"]
    return run_dir


@pytest.mark.usefixtures("one_torch_thread")
def test_without_a_criterion_the_3_best_by_valid_loss_are_kept_and_averaged(
        launch_cli, toy_recipe):
    edit_config(toy_recipe, _drop_criterion)
    run_dir = _train(launch_cli, toy_recipe, "trainer.max_epochs=4")
    best = sorted((run_dir / "checkpoints").glob("valid_loss.*.ckpt"))
    assert len(best) == 3
    # ESPnet's name, the stale averages of fewer checkpoints gone
    assert sorted(p.name for p in run_dir.glob("*.pth")) == ["valid.loss.ave_3best.pth"]
    averaged = torch.load(run_dir / "valid.loss.ave_3best.pth", map_location="cpu")
    states = [torch.load(p, map_location="cpu", weights_only=False)["state_dict"]
              for p in best]
    model = toy_model_class()()
    assert set(averaged) == set(model.state_dict())  # the bare model's keys
    model.load_state_dict(averaged)
    expected = sum(s["model.encoder.weight"] for s in states) / 3
    assert torch.allclose(averaged["encoder.weight"], expected)
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    learning_rates = [(r["epoch"], float(r["lr-SGD"])) for r in rows if r.get("lr-SGD")]
    assert {lr for _, lr in learning_rates} == {0.05}
    assert {epoch for epoch, _ in learning_rates} == {"0", "1", "2", "3"}  # every row's


@pytest.mark.usefixtures("one_torch_thread")
def test_without_validation_the_default_criterion_keeps_nothing_and_says_nothing(
        launch_cli, toy_recipe):
    edit_config(toy_recipe, _drop_criterion)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_dir = _train(launch_cli, toy_recipe, "~dataset.valid", "trainer.max_epochs=1")
    assert not [w for w in caught if "monitored key" in str(w.message)]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not list(run_dir.glob("*.pth"))


@pytest.mark.usefixtures("one_torch_thread")
def test_an_empty_criterion_list_keeps_no_best_checkpoints(launch_cli, toy_recipe):
    run_dir = _train(launch_cli, toy_recipe, "best_model_criterion=[]",
                     "trainer.max_epochs=1")
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not list(run_dir.glob("*.pth"))


def test_averaging_can_be_turned_off(launch_cli, toy_recipe):
    run_dir = _train(launch_cli, toy_recipe, "+trainer.average_checkpoints=false",
                     "trainer.max_epochs=1")
    assert len(list((run_dir / "checkpoints").glob("valid_loss.*.ckpt"))) == 1
    assert not list(run_dir.glob("*.pth"))
