"""Optimizers and schedulers built from config; parameter groups checked."""

import pytest
import torch
from omegaconf import OmegaConf

from launcher.components.modeling.optimization_spec import assign_parameters, build_optimizers
from launcher.components.modeling.optimizer_config import optimizer_entries
from launcher.errors import ConfigError


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(2, 3)
        self.encoder_proj = torch.nn.Linear(3, 3)
        self.decoder = torch.nn.Linear(3, 1)
        self.frozen = torch.nn.Linear(1, 1).requires_grad_(False)


def groups(*params) -> list:
    sgd = {"_target_": "torch.optim.SGD", "lr": 0.1}
    return optimizer_entries({"optims": [{"params": p, "optim": sgd} for p in params]})


def test_one_optimizer_with_a_step_scheduler():
    config = OmegaConf.create({
        "optim": {"_target_": "torch.optim.SGD", "lr": 0.5},
        "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2,
                      "interval": "step"}})
    (spec,) = build_optimizers(Net(), config)
    lightning = spec.lightning_config()
    assert isinstance(lightning["optimizer"], torch.optim.SGD)
    assert lightning["lr_scheduler"]["interval"] == "step"
    assert lightning["lr_scheduler"]["scheduler"].step_size == 2
    assert len(spec.param_names) == 6  # frozen parameters are left out


def test_several_optimizers_split_parameters_by_module_path():
    config = OmegaConf.create({"optims": [
        {"name": "enc", "params": ["encoder", "encoder_proj"],
         "optim": {"_target_": "torch.optim.SGD", "lr": 0.1},
         "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1}},
        {"name": "dec", "params": "decoder", "optim": {"_target_": "torch.optim.Adam"}}]})
    enc, dec = build_optimizers(Net(), config)
    assert enc.param_names == ["encoder.weight", "encoder.bias", "encoder_proj.weight",
                               "encoder_proj.bias"]
    assert dec.param_names == ["decoder.weight", "decoder.bias"]
    assert enc.interval == "epoch" and dec.scheduler is None


def test_a_prefix_is_a_module_path_not_a_substring():
    # 'encoder' must not swallow 'encoder_proj'
    with pytest.raises(ConfigError, match=r"belong to no optimizer: encoder_proj\.weight"):
        assign_parameters(Net(), groups("encoder", "decoder"))


def test_an_entry_that_selects_nothing_is_refused():
    with pytest.raises(ConfigError, match=r"optims\[2\] selects no trainable parameter"):
        assign_parameters(Net(), groups(["encoder", "encoder_proj"], "decoder", "frozen"))


def test_bad_interval_and_both_forms_are_refused():
    with pytest.raises(ConfigError, match="interval 'batch'"):
        build_optimizers(Net(), OmegaConf.create({
            "optim": {"_target_": "torch.optim.SGD", "lr": 1},
            "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1,
                          "interval": "batch"}}))
    with pytest.raises(ConfigError, match="not both"):
        build_optimizers(Net(), OmegaConf.create({"optim": {}, "optims": []}))
