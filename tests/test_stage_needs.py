"""What the pre-launch checks of a run's needs leave alone: whatever brings its own
data, optimizers or statistics is not refused (the refusals are rows of
tests/test_bad_input_table.py)."""

from __future__ import annotations

import re

import pytest
import pytorch_lightning as pl
from conftest import edit_config
from omegaconf import OmegaConf

from launcher.components.modeling.lightning_module import ESPnetLightningModule
from launcher.errors import ConfigError
from launcher.plan.stage_needs import check_statistics, check_train_data, is_lightning_module
from launcher.systems.base.system import System


class OwnLoaders(ESPnetLightningModule):
    def train_dataloader(self):
        return []


class AnApp(pl.LightningModule):  # a whole app: its own optimizers and data
    def configure_optimizers(self):
        return []


class OwnTrain(System):
    def train(self) -> None:
        pass


def classes(**chosen: type) -> dict[str, type]:
    return {"system": System, "lightning_module": ESPnetLightningModule, "model": object,
            **chosen}


@pytest.mark.parametrize("config, chosen", [
    ({}, {"model": AnApp}),
    ({"data": {"_target_": "src.data.MyDataModule"}}, {}),
    ({"fit": {"datamodule": "x"}}, {}),
    ({"fit": {"train_dataloaders": "x"}}, {}),
    ({}, {"lightning_module": OwnLoaders}),
    ({}, {"system": OwnTrain}),
    ({"stages": ["evaluate"]}, {}),
    ({"dataset": {"_target_": "src.data.MyOrganizer"}}, {}),  # makes its own splits
], ids=["lightning-app", "datamodule", "fit-datamodule", "fit-loaders", "own-loaders",
        "own-train", "no-training", "own-organizer"])
def test_what_brings_its_own_train_data_is_not_refused(config, chosen):
    check_train_data({"stages": ["train"], **config}, classes(**chosen))


def test_the_shared_stages_without_train_data_are_refused():
    with pytest.raises(ConfigError, match="stage 'collect_stats'"):
        check_train_data({"stages": ["collect_stats"], "dataset": {"valid": {}}}, classes())
    with pytest.raises(ConfigError, match="drop collect_stats and train from stages"):
        check_train_data({"stages": ["collect_stats", "train"]}, classes())
    with pytest.raises(ConfigError, match="drop collect_stats from stages"):  # train is its own
        check_train_data({"stages": ["collect_stats", "train"]}, classes(system=OwnTrain))


def test_lightning_modules_of_either_distribution_are_told_without_importing():
    assert is_lightning_module(AnApp) and is_lightning_module(OwnLoaders)
    assert not is_lightning_module(object) and not is_lightning_module(System)


def job(tmp_path, stages, **more):
    run = tmp_path / "run"
    return OmegaConf.create({"stages": stages, "run_dir": str(run), "exp_dir": str(run),
                             "model": {"stats_file": "${run_dir}/stats/train/feats_stats.npz"},
                             "hydra": {"job": {"name": "${hydra:job.name}"}}, **more})


def test_statistics_collected_before_or_in_this_run_are_not_refused(tmp_path):
    check_statistics(job(tmp_path, ["collect_stats", "train"]), tmp_path)
    check_statistics(job(tmp_path, ["evaluate"]), tmp_path)
    check_statistics(job(tmp_path, ["all"]), tmp_path)
    with pytest.raises(ConfigError, match=r"model\.stats_file is"):
        check_statistics(job(tmp_path, ["train", "collect_stats"]), tmp_path)
    stats = tmp_path / "run" / "stats" / "train"
    stats.mkdir(parents=True)
    (stats / "feats_stats.npz").write_bytes(b"")  # an earlier run of this folder made it
    check_statistics(job(tmp_path, ["train"]), tmp_path)
    shared = job(tmp_path, ["train"], stats_dir="shared")  # relative: from the recipe
    shared.model.stats_file = "${stats_dir}/train/feats_stats.npz"
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "shared"))):
        check_statistics(shared, tmp_path)


def test_a_module_with_its_own_optimizers_and_loaders_plans_without_optim_or_dataset(
        launch_cli, toy_recipe):
    (toy_recipe / "src" / "own.py").write_text(
        "import torch\n"
        "from launcher.components.modeling.lightning_module import ESPnetLightningModule\n"
        "from src.model import ToyData\n\n\n"
        "class Own(ESPnetLightningModule):\n"
        "    def configure_optimizers(self):\n"
        "        return torch.optim.SGD(self.parameters(), lr=0.1)\n\n"
        "    def train_dataloader(self):\n"
        "        return torch.utils.data.DataLoader(ToyData(), batch_size=16)\n")
    edit_config(toy_recipe, lambda c: [c.pop("optim"), c.pop("dataset"), c.update(
        lightning_module={"_target_": "src.own.Own"}, best_model_criterion=None)])
    code, _, err = launch_cli(toy_recipe, "--dry-run")
    assert code == 0, err
    assert not (toy_recipe / "exp").exists()
    code, _, err = launch_cli(toy_recipe, "--dry-run", "lightning_module._target_=null")
    assert code == 2 and "key 'optim': no optimizer configured" in err
