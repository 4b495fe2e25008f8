"""A top-level key nobody reads is refused before launch, with the known keys; keys of
ESPnet3's contract, keys a class declares and keys used by interpolations pass."""

from __future__ import annotations

import pytest
from conftest import edit_config, rejected
from omegaconf import OmegaConf

from launcher.errors import ConfigError
from launcher.plan.config_keys import check_top_level_keys


def test_an_espnet3_spelling_mistake_is_refused_with_the_known_keys(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "+optimizers_=1")
    assert "key 'optimizers_': no part of the run reads 'optimizers_'" in line
    assert "optimizer, optimizers" in line and "did you mean 'optimizers'?" in line
    assert "command-line override '+optimizers_=1'" in line


def test_a_key_of_another_tool_in_the_file_is_refused(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: c.update(wandb={"project": "x"}))
    line = rejected(launch_cli, toy_recipe)
    assert "config.yaml: key 'wandb': no part of the run reads" in line and "config_keys" in line


def test_keys_used_by_interpolations_declared_by_classes_or_from_espnet3_pass():
    class Probe:
        config_keys = ("interrupt_at",)

    config = OmegaConf.create({
        "mixture": {"modes": 8}, "model": {"modes": "${mixture.modes}"},
        "tokenizer": {"vocab_size": 30}, "exp_tag": "x", "data_dir": "d",
        "interrupt_at": [2], "fit": {}, "parallel": {"env": "local", "n_workers": 1},
        "init": None})
    check_top_level_keys(config, [Probe])


def test_a_key_used_only_in_the_trainer_block_passes(launch_cli, toy_recipe):
    """The job resolves its Trainer block; the interpolation that reads the key counts."""
    def change(config):
        config["patience"] = 3
        config["trainer"]["callbacks"] = [{
            "_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "valid/loss",
            "patience": "${patience}"}]

    edit_config(toy_recipe, change)
    code, out, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}", "--dry-run")
    assert code == 0, out + err
    assert "patience: 3" in out


@pytest.mark.parametrize("key, value, words", [
    ("init", "xavier_uniform", "initialise the weights in the model's constructor"),
    ("parallel", {"env": "slurm"}, "resources"),
    ("fit", {"max_epochs": 3}, "'max_epochs' is not a keyword argument of Trainer.fit"),
])
def test_espnet3_features_that_are_not_here_are_refused_with_what_to_do(key, value, words):
    with pytest.raises(ConfigError) as caught:
        check_top_level_keys(OmegaConf.create({key: value}), [])
    assert words in str(caught.value)
