"""A recipe written as ESPnet3's "Customize the training loop" page sketches it runs
with only its import lines changed (`espnet3.` → `launcher.`).

The three files below are the page's sketches, with one marker line each (so the
test sees that the recipe's own classes ran) and a `src/system.py` that imports
its siblings as ESPnet3 recipes do: `from src.lightning_module import ...`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import edit_config

LIGHTNING_MODULE = '''
from pathlib import Path

from launcher.components.modeling.lightning_module import ESPnetLightningModule


class MyLightningModule(ESPnetLightningModule):
    def training_step(self, batch, batch_idx):
        loss, stats, weight = self.model(**batch)
        self.log("train/loss", loss)
        Path(self.config.exp_dir, "my_lightning_module").write_text(MARK)  # marker
        return loss
'''

TRAINER = '''
from pathlib import Path

from launcher.components.trainers.trainer import ESPnet3LightningTrainer


class MyTrainer(ESPnet3LightningTrainer):
    def __init__(self, model=None, exp_dir=None, config=None, best_model_criterion=None):
        super().__init__(
            model=model,
            exp_dir=exp_dir,
            config=config,
            best_model_criterion=best_model_criterion,
        )
        Path(exp_dir, "my_trainer").write_text("")  # marker
'''

SYSTEM = '''
from launcher.systems.asr.system import ASRSystem
from launcher.systems.base.training import _instantiate_model

from src.lightning_module import MyLightningModule
from src.trainer import MyTrainer


class MySystem(ASRSystem):
    def train(self):
        config = self.training_config
        model = _instantiate_model(config)
        lit_model = MyLightningModule(model, config)
        trainer = MyTrainer(
            model=lit_model,
            exp_dir=config.exp_dir,
            config=config.trainer,
            best_model_criterion=config.best_model_criterion,
        )
        trainer.fit()
'''


def sketch_recipe(recipe: Path, mark: str, package: bool = True) -> Path:
    src = recipe / "src"
    (src / "lightning_module.py").write_text(f"MARK = {mark!r}\n" + LIGHTNING_MODULE)
    (src / "trainer.py").write_text(TRAINER)
    (src / "system.py").write_text(SYSTEM)
    if not package:
        (src / "__init__.py").unlink()
    edit_config(recipe, lambda c: c.update(system={"_target_": "src.system.MySystem"}))
    return recipe


def only_run_dir(exp: Path) -> Path:
    (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
    return run_dir


def logged_train_losses(run_dir: Path) -> list[float]:
    with (run_dir / "metrics.csv").open() as f:
        return [float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")]


@pytest.mark.parametrize("package", [True, False], ids=["src-package", "src-folder"])
def test_the_pages_sketch_trains_with_its_own_classes(launch_cli, toy_recipe, package):
    recipe = sketch_recipe(toy_recipe, "A", package)
    code, _, err = launch_cli(recipe, f"exp_root={recipe / 'exp'}")
    assert code == 0, err
    run_dir = only_run_dir(recipe / "exp")
    assert (run_dir / "my_trainer").is_file()
    assert (run_dir / "my_lightning_module").read_text() == "A"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    losses = logged_train_losses(run_dir)
    assert len(losses) == 8, "2 epochs of 4 steps, each logged by the sketch's training_step"
    assert sum(losses[4:]) < sum(losses[:4]), "the second epoch learned from the first"
    # the sketch's fit() takes no checkpoint: a second launch still resumes, not retrains
    edit_config(recipe, lambda c: c["trainer"].update(max_epochs=3))
    assert launch_cli(recipe, f"exp_root={recipe / 'exp'}")[0] == 0
    assert "resuming from" in (run_dir / "run.log").read_text()
    assert len(logged_train_losses(run_dir)) == 12


def test_two_recipes_importing_src_in_one_process_keep_their_own_classes(launch_cli, tmp_path,
                                                                         toy_recipe):
    import shutil

    first = sketch_recipe(toy_recipe, "first")
    second = tmp_path / "second" / "recipe"
    shutil.copytree(toy_recipe, second)
    (second / "src" / "lightning_module.py").write_text("MARK = 'second'\n" + LIGHTNING_MODULE)
    for recipe, exp in ((first, "exp1"), (second, "exp1"), (first, "exp2")):
        assert launch_cli(recipe, f"exp_root={recipe / exp}")[0] == 0
    for recipe, exp, mark in ((first, "exp1", "first"), (second, "exp1", "second"),
                              (first, "exp2", "first")):
        assert (only_run_dir(recipe / exp) / "my_lightning_module").read_text() == mark


def test_every_spelling_of_a_src_import_reaches_the_recipes_own_package(launch_cli,
                                                                         toy_recipe):
    recipe = sketch_recipe(toy_recipe, "A")
    (recipe / "src" / "system.py").write_text(
        "import src.model\nimport src.model as model_module\nimport src\n"
        "from src import trainer\n" + SYSTEM +
        "\nassert src.model.Regressor is model_module.Regressor\n"
        "assert trainer.MyTrainer is MyTrainer\n")
    code, _, err = launch_cli(recipe, f"exp_root={recipe / 'exp'}")
    assert code == 0, err


def test_the_pages_sketch_trains_on_slurm(slurm_cluster, launch_cli, toy_recipe):
    recipe = sketch_recipe(toy_recipe, "on slurm", package=False)
    code, out, err = launch_cli(recipe, "hydra/launcher=slurm", "--wait",
                                f"exp_root={recipe / 'exp'}")
    assert code == 0, out + err
    run_dir = only_run_dir(recipe / "exp")
    assert (run_dir / "my_lightning_module").read_text() == "on slurm"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    assert len(logged_train_losses(run_dir)) == 8
