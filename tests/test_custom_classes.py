"""A recipe's own LightningModule and Trainer, selected only through config, run."""

from __future__ import annotations

import json
import sys

from conftest import edit_config

MODULE = '''
from pathlib import Path

from launcher.components.modeling.lightning_module import ESPnetLightningModule


class CountingModule(ESPnetLightningModule):
    """Counts its own training steps, proving this class (not the shared one) ran."""

    steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return super().training_step(batch, batch_idx)

    def on_train_end(self):
        Path(self.config["run_dir"], "custom_module.txt").write_text(str(self.steps))
'''

TRAINER = '''
import json
from pathlib import Path

from pytorch_lightning.callbacks import Callback

from launcher.components.trainers.trainer import ESPnet3LightningTrainer


class Marker(Callback):
    def __init__(self, exp_dir):
        self.exp_dir = Path(exp_dir)

    def on_fit_start(self, trainer, pl_module):
        info = {"module": type(pl_module).__name__, "max_epochs": trainer.max_epochs}
        (self.exp_dir / "custom_trainer.json").write_text(json.dumps(info))


class MarkingTrainer(ESPnet3LightningTrainer):
    def extra_callbacks(self):
        return [Marker(self.exp_dir)]
'''


def test_recipe_module_and_trainer_selected_by_config_both_run(launch_cli, toy_recipe):
    (toy_recipe / "src" / "lightning_module.py").write_text(MODULE)
    (toy_recipe / "src" / "trainer.py").write_text(TRAINER)

    def select(config):
        config["lightning_module"] = {"_target_": "src.lightning_module.CountingModule"}
        config["trainer"]["_target_"] = "src.trainer.MarkingTrainer"

    edit_config(toy_recipe, select)
    code, out, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}")
    assert code == 0, err
    run_dir = toy_recipe / "exp" / "default"
    assert f"run directory: {run_dir}" in out
    # 64 samples / batch 16 = 4 steps per epoch, 2 epochs
    assert (run_dir / "custom_module.txt").read_text() == "8"
    info = json.loads((run_dir / "custom_trainer.json").read_text())
    assert info == {"module": "CountingModule", "max_epochs": 2}
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "src" not in sys.modules, "recipe code must not be imported as a global 'src'"


def test_two_recipes_with_a_src_package_in_one_process(tmp_path, toy_recipe):
    import shutil

    from launcher.components.targets import locate

    other = tmp_path / "other"
    shutil.copytree(toy_recipe, other)
    (other / "src" / "model.py").write_text(
        (other / "src" / "model.py").read_text() + "\nFLAVOUR = 'other'\n")
    first = locate("src.model", key="model._target_", recipe_dir=toy_recipe)
    second = locate("src.model", key="model._target_", recipe_dir=other)
    assert first is not second
    assert not hasattr(first, "FLAVOUR") and second.FLAVOUR == "other"
    assert first.__name__ != second.__name__
    assert "src" not in sys.modules
