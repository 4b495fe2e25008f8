"""The trainer block becomes Lightning objects: strategies, loggers, criteria."""

from datetime import timedelta

import pytest

from launcher.components.callbacks.criteria import parse_criteria
from launcher.components.trainers.options import build_loggers, build_strategy
from launcher.components.trainers.trainer import ESPnet3LightningTrainer
from launcher.errors import ConfigError


def test_ddp_strategy_with_options():
    from pytorch_lightning.strategies import DDPStrategy

    strategy = build_strategy({"name": "ddp", "find_unused_parameters": True, "timeout_s": 90})
    assert isinstance(strategy, DDPStrategy)
    assert strategy._ddp_kwargs["find_unused_parameters"] is True
    assert strategy._timeout == timedelta(seconds=90)


def test_fsdp_strategy_is_built_with_its_options_on_cpu():
    from pytorch_lightning.strategies import FSDPStrategy

    strategy = build_strategy({"name": "fsdp", "sharding_strategy": "SHARD_GRAD_OP",
                               "cpu_offload": True})
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.sharding_strategy.name == "SHARD_GRAD_OP"
    assert strategy.cpu_offload.offload_params is True


def test_sharded_strategies_save_folders_and_check_their_options():
    from launcher.components.trainers.options import check_strategy_spec
    from launcher.components.trainers.sharded import FSDP2Strategy, ShardedFSDPStrategy

    fsdp = build_strategy({"name": "fsdp", "state_dict_type": "sharded"})
    assert isinstance(fsdp, ShardedFSDPStrategy) and fsdp.writes_folders
    assert not build_strategy("fsdp").writes_folders  # Lightning's default: one full file
    fsdp2 = build_strategy({"name": "fsdp2", "shard": ["Linear"], "timeout_s": 60})
    assert isinstance(fsdp2, FSDP2Strategy) and fsdp2.writes_folders
    assert fsdp2.shard_classes == ("Linear",) and fsdp2._timeout == timedelta(seconds=60)
    assert not build_strategy({"name": "fsdp2", "save_distributed_checkpoint": False}) \
        .writes_folders
    check_strategy_spec({"name": "fsdp2"}, accelerator="cpu")  # FSDP2 runs on CPUs
    with pytest.raises(ConfigError, match="'sahrd' is not an option of FSDP2Strategy") as e:
        check_strategy_spec({"name": "fsdp2", "sahrd": ["Linear"]})
    assert e.value.key == "trainer.strategy.sahrd" and "did you mean 'shard'" in str(e.value)
    with pytest.raises(ConfigError, match="FSDP2 does not train in precision '16-mixed'"):
        ESPnet3LightningTrainer.check_options({"strategy": "fsdp2", "precision": "16-mixed"})
    ESPnet3LightningTrainer.check_options({"strategy": {"name": "fsdp2"},
                                           "precision": "bf16-mixed"})
    with pytest.raises(ConfigError, match="state_dict_type 'shards' is not full or sharded"):
        check_strategy_spec({"name": "fsdp", "state_dict_type": "shards"})
    # options of torch's wrappers pass: DDP's and FSDP's keyword arguments
    check_strategy_spec({"name": "ddp", "find_unused_parameters": True, "static_graph": True})
    check_strategy_spec({"name": "fsdp", "limit_all_gathers": True, "use_orig_params": True})


def test_strategy_by_target_and_plain_names():
    strategy = build_strategy({"_target_": "pytorch_lightning.strategies.DDPStrategy",
                               "process_group_backend": "gloo"})
    assert strategy.process_group_backend == "gloo"
    assert build_strategy("auto") == "auto" and build_strategy("ddp_spawn") == "ddp_spawn"
    with pytest.raises(ConfigError, match="not ddp, fsdp or fsdp2"):
        build_strategy({"name": "deepspeed"})


def test_loggers(tmp_path):
    from pytorch_lightning.loggers import TensorBoardLogger

    from launcher.components.trainers.csv_logger import ResumableCSVLogger

    csv, tensorboard = build_loggers(["csv", "tensorboard"], tmp_path)
    assert isinstance(csv, ResumableCSVLogger) and csv.log_dir.rstrip("/") == str(tmp_path)
    assert isinstance(tensorboard, TensorBoardLogger)
    assert build_loggers(False, tmp_path) is False
    with pytest.raises(ConfigError, match="unknown logger 'comet'"):
        build_loggers("comet", tmp_path)


def test_best_model_criteria_make_one_checkpoint_callback_each_plus_last(tmp_path):
    trainer = ESPnet3LightningTrainer(
        exp_dir=tmp_path, config={"accelerator": "cpu", "max_epochs": 1, "logger": False},
        best_model_criterion=[["valid/loss", 3, "min"], ["valid/acc", 1, "max"]])
    monitors = [(c.monitor, c.save_top_k, c.mode) for c in trainer.checkpoint_callbacks]
    assert monitors == [(None, 0, "min"), ("valid/loss", 3, "min"), ("valid/acc", 1, "max")]
    assert trainer.checkpoint_callbacks[0].save_last is True


def test_bad_criteria_and_options():
    with pytest.raises(ConfigError, match=r"mode 'lowest' is not min or max"):
        parse_criteria([["valid/loss", 3, "lowest"]])
    with pytest.raises(ConfigError, match="did you mean 'precision'"):
        ESPnet3LightningTrainer.check_options({"precisoin": 16})


def test_fsdp2_shards_the_models_children_or_the_named_classes():
    import torch

    from launcher.components.trainers.sharded import FSDP2Strategy

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh()))
    assert FSDP2Strategy().units(model) == [model[0], model[2]]  # children with parameters
    assert FSDP2Strategy(shard=["Linear"]).units(model) == [model[0], model[2][0]]
