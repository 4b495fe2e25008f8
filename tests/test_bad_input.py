"""Every bad input is one clear line naming the key and the file; nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import edit_config, rejected

CONFIG = "conf/config.yaml"


def write_src(recipe: Path, name: str, text: str) -> None:
    (recipe / "src" / name).write_text(text)


def test_target_module_missing_says_where_src_was_searched(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: c["model"].update(_target_="src.modell.Regressor"))
    line = rejected(launch_cli, toy_recipe)
    assert "key 'model._target_'" in line and CONFIG in line
    assert "src.modell" in line and str(toy_recipe / "src") in line


def test_target_attribute_missing_suggests_the_near_name(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: c["model"].update(_target_="src.model.Regresor"))
    line = rejected(launch_cli, toy_recipe)
    assert "'src.model' has no attribute 'Regresor'" in line
    assert "did you mean 'Regressor'" in line


def test_nested_target_that_does_not_import(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: c["optim"].update(_target_="torch.optim.Adamm"))
    line = rejected(launch_cli, toy_recipe)
    assert "key 'optim._target_'" in line and "'torch.optim' has no attribute 'Adamm'" in line


def test_override_on_command_line_is_named_as_the_source(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "lightning_module._target_=src.nothing.Module")
    assert "command-line override 'lightning_module._target_=src.nothing.Module'" in line


def test_class_of_the_wrong_base_is_refused(launch_cli, toy_recipe):
    write_src(toy_recipe, "lightning_module.py", "class NotAModule:\n"
              "    def __init__(self, model, config):\n        pass\n")
    edit_config(toy_recipe, lambda c: c.update(
        lightning_module={"_target_": "src.lightning_module.NotAModule"}))
    line = rejected(launch_cli, toy_recipe)
    assert "key 'lightning_module._target_'" in line
    assert "not a subclass of pytorch_lightning" in line and CONFIG in line


def test_trainer_constructor_without_the_contract_arguments(launch_cli, toy_recipe):
    write_src(toy_recipe, "trainer.py",
              "from launcher.components.trainers.trainer import ESPnet3LightningTrainer\n"
              "class Narrow(ESPnet3LightningTrainer):\n"
              "    def __init__(self, model):\n        pass\n")
    edit_config(toy_recipe, lambda c: c["trainer"].update(_target_="src.trainer.Narrow"))
    line = rejected(launch_cli, toy_recipe)
    assert "key 'trainer._target_'" in line and "cannot be constructed" in line
    assert "model, exp_dir, config, best_model_criterion" in line


def test_system_of_the_wrong_base(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: c.update(system={"_target_": "collections.OrderedDict"}))
    line = rejected(launch_cli, toy_recipe)
    assert "key 'system._target_'" in line
    assert "not a subclass of launcher.systems.base.system.System" in line


@pytest.mark.parametrize("key", ["model", "trainer"])
def test_missing_required_key(launch_cli, toy_recipe, key):
    edit_config(toy_recipe, lambda c: c.pop(key))
    line = rejected(launch_cli, toy_recipe)
    assert f"missing required key '{key}'" in line and CONFIG in line


def test_model_argument_that_the_class_does_not_take(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "+model.hiden=3")
    assert "key 'model.hiden'" in line and "did you mean 'hidden'" in line


def test_trainer_option_lightning_does_not_know(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "+trainer.max_epoch=3")
    assert "key 'trainer.max_epoch'" in line and "did you mean 'max_epochs'" in line


def test_unknown_stage_lists_the_known_ones(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "stages=[train,decode]")
    assert "unknown stage 'decode'" in line
    assert "collect_stats, train, evaluate" in line


def test_misspelled_override_key(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "optim.lrr=0.1")
    assert "optim.lrr" in line and CONFIG in line


def _two_optims(encoder: str, decoder: str):
    def change(config):
        config.pop("optim")
        config["optims"] = [
            {"params": encoder, "optim": {"_target_": "torch.optim.SGD", "lr": 0.1}},
            {"params": decoder, "optim": {"_target_": "torch.optim.Adam", "lr": 0.01}},
        ]
    return change


def test_optimizer_groups_that_overlap(launch_cli, toy_recipe):
    edit_config(toy_recipe, _two_optims("encoder", "encoder.weight"))
    line = rejected(launch_cli, toy_recipe)
    assert "'encoder.weight' is selected by optims[0] and optims[1]" in line
    assert "key 'optims[1].params'" in line


def test_optimizer_groups_that_miss_parameters(launch_cli, toy_recipe):
    edit_config(toy_recipe, _two_optims("encoder.weight", "decoder"))
    line = rejected(launch_cli, toy_recipe)
    assert "belong to no optimizer: encoder.bias" in line and "key 'optims'" in line


def test_recipe_folder_that_does_not_exist(launch_cli, tmp_path):
    code, _, err = launch_cli(tmp_path / "nowhere")
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_recipe_folder_without_conf(launch_cli, tmp_path):
    (tmp_path / "bare").mkdir()
    code, _, err = launch_cli(tmp_path / "bare")
    assert code == 2 and "has no conf/ or configs/ folder" in err


def test_unknown_config_name_lists_the_available_ones(launch_cli, toy_recipe):
    code, _, err = launch_cli(toy_recipe, "--config-name", "trian")
    assert code == 2 and "no config 'trian.yaml'" in err and "config" in err


@pytest.mark.parametrize("key,override,blamed", [
    ("optims[0].clip_grad_norm", "optims.0.clip_grad_norm=-1", True),
    ("optims[1].optim._target_", "optims.1.optim._target_=x.Y", True),
    ("optims[0].clip_grad_norm", "optims.1.clip_grad_norm=-1", False),
    ("optims[0].clip_grad_norm", "++optims=[]", True),
    ("trainer.max_epochs", "trainer.max_epochs_x=3", False),
])
def test_a_list_entry_set_on_the_command_line_is_blamed_on_the_override(key, override,
                                                                        blamed):
    from launcher.identity import origin

    where = origin(key, [override], Path("conf/config.yaml"))
    assert (where.startswith("command-line override") if blamed
            else where == "conf/config.yaml"), where
