"""ESPnet3's config spellings work as in ESPnet3, or are refused before launch: optimizers
and schedulers, named updates by `OptimizationStep`, `(utt_ids, dict)` batches and
`lightning.pytorch` targets."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from conftest import edit_config, rejected
from omegaconf import OmegaConf

from launcher.components.modeling.optimization_spec import build_optimizers
from launcher.errors import ConfigError

SGD = {"_target_": "torch.optim.SGD", "lr": 0.1}
STEP_LR = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2}
PLATEAU = {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau"}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(2, 3)
        self.decoder = torch.nn.Linear(3, 1)


def built(config: dict) -> list:
    return build_optimizers(Net(), OmegaConf.create(config))


def refused(config: dict, key: str, *words: str) -> str:
    with pytest.raises(ConfigError) as caught:
        built(config)
    assert caught.value.key == key, caught.value
    for word in words:
        assert word in str(caught.value)
    return str(caught.value)


# ---- one optimizer ----------------------------------------------------------------
def test_espnet3s_optimizer_and_its_scheduler_step_every_step_by_default():
    (spec,) = built({"optimizer": SGD, "scheduler": STEP_LR})
    assert isinstance(spec.optimizer, torch.optim.SGD) and len(spec.param_names) == 4
    assert spec.interval == "step" and spec.scheduler.step_size == 2


@pytest.mark.parametrize("settings,interval,monitor", [
    ({"scheduler_interval": "epoch"}, "epoch", None),
    ({"scheduler_monitor": "valid/loss"}, "epoch", "valid/loss"),
    ({"val_scheduler_criterion": "valid/acc"}, "epoch", "valid/acc"),
    ({"scheduler_interval": "step", "scheduler_monitor": None}, "step", None),
])
def test_espnet3s_top_level_scheduler_settings(settings, interval, monitor):
    (spec,) = built({"optimizer": SGD, "scheduler": PLATEAU, **settings})
    assert (spec.interval, spec.monitor) == (interval, monitor)


def test_a_monitored_scheduler_steps_every_epoch_unless_told():
    (spec,) = built({"optim": SGD, "scheduler": {**PLATEAU, "monitor": "valid/loss"}})
    assert spec.interval == "epoch"


def test_one_thing_said_twice_is_refused():
    refused({"optim": SGD, "optimizer": SGD}, "optimizer", "'optim' and 'optimizer' both")
    refused({"optim": SGD, "scheduler": {**STEP_LR, "interval": "step"},
             "scheduler_interval": "epoch"}, "scheduler_interval", "say the same thing")
    refused({"optim": SGD, "scheduler": PLATEAU, "scheduler_monitor": "valid/loss",
             "val_scheduler_criterion": "valid/acc"}, "val_scheduler_criterion")
    refused({"optims": [{"params": "encoder", "optim": SGD}],
             "optimizers": {"a": {"params": "encoder", "optimizer": SGD}}}, "optimizers")


def test_scheduler_settings_without_a_scheduler_are_refused():
    refused({"optimizer": SGD, "scheduler_interval": "epoch"}, "scheduler_interval",
            "no scheduler")


def test_no_optimizer_names_both_spellings():
    assert "'optimizer:' works too" in refused({}, "optim", "no optimizer configured")


# ---- named optimizers, ESPnet3's form ---------------------------------------------
def named(**extra) -> dict:
    return {"optimizers": {
        "enc": {"optimizer": SGD, "params": "model.encoder", "accum_grad_steps": 2,
                "step_every_n_iters": 3, "gradient_clip_val": 0.5},
        "dec": {"optimizer": {**SGD, "lr": 0.2}, "params": "decoder",
                "gradient_clip_val": 0.1, "gradient_clip_algorithm": "value"}},
        "schedulers": {"enc": {"scheduler": STEP_LR, "interval": "step"},
                       "dec": {"scheduler": PLATEAU, "monitor": "valid/loss"}}, **extra}


def test_espnet3s_named_optimizers_and_schedulers():
    enc, dec = built(named())
    assert enc.name == "enc" and enc.param_names == ["encoder.weight", "encoder.bias"]
    assert (enc.accumulate, enc.every_n_steps, enc.clip_grad_norm) == (2, 3, 0.5)
    assert enc.interval == "step" and enc.scheduler.step_size == 2
    assert dec.param_names == ["decoder.weight", "decoder.bias"]
    assert dec.optimizer.defaults["lr"] == 0.2
    assert (dec.clip_grad_value, dec.clip_grad_norm) == (0.1, None)
    assert (dec.interval, dec.monitor) == ("epoch", "valid/loss")


def test_espnet3s_named_form_refuses_what_it_cannot_do():
    config = named()
    config["schedulers"]["gen"] = {"scheduler": STEP_LR}
    refused(config, "schedulers.gen", "no optimizer of that name")
    config = named()
    config["optimizers"]["enc"]["accum_grad_step"] = 2
    refused(config, "optimizers.enc.accum_grad_step", "did you mean 'accum_grad_steps'")
    refused(named(scheduler_interval="step"), "scheduler_interval", "single optimizer")
    config = named()
    config["optimizers"]["dec"]["params"] = "encoder"
    refused(config, "optimizers.dec.params", "selected by optimizers.enc and optimizers.dec")
    config = named()
    config["schedulers"]["enc"]["interval"] = "batch"
    refused(config, "schedulers.enc.interval", "interval 'batch'")


# ---- a run in ESPnet3's spelling ---------------------------------------------------
COLLATE = '''
import torch


def with_ids(items):
    """ESPnet's CommonCollateFn shape: (utt_ids, {name: batched tensor})."""
    ids = [f"utt{i}" for i in range(len(items))]
    return ids, {k: torch.stack([item[k] for item in items]) for k in items[0]}
'''

NAMED_MODEL = '''
from launcher.components.modeling.optimization_spec import OptimizationStep

from .model import Regressor


class TwoLosses(Regressor):
    """Asks for one update of each half, as an ESPnet3 GAN model does."""

    def forward(self, x, y):
        loss, stats, weight = super().forward(x, y)
        if not self.training:
            return loss, stats, weight
        again = super().forward(x, y)[0]  # a graph of its own, as a GAN's second loss
        return [OptimizationStep(loss, "encoder"), OptimizationStep(again, "decoder")], \\
            stats, weight
'''


def espnet3_spelling(config: dict) -> None:
    config["optimizer"] = config.pop("optim")
    config["scheduler"] = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1,
                           "gamma": 0.5}
    config["scheduler_interval"] = "epoch"
    config["dataloader"]["collate_fn"] = "src.collate.with_ids"
    config["trainer"]["logger"] = {"_target_": "lightning.pytorch.loggers.CSVLogger",
                                   "save_dir": "${exp_dir}", "name": "", "version": ""}
    config["trainer"]["callbacks"] = [
        {"_target_": "lightning.pytorch.callbacks.LearningRateMonitor"}]


def metrics(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_recipe_in_espnet3s_spelling_trains(launch_cli, toy_recipe):
    (toy_recipe / "src" / "collate.py").write_text(COLLATE)
    edit_config(toy_recipe, espnet3_spelling)
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}")
    assert code == 0, err
    (run_dir,) = [p for p in (toy_recipe / "exp").iterdir() if p.name != "sweeps"]
    rows = metrics(run_dir)
    # the LR monitor shows the epoch scheduler halving the rate after the first epoch
    rates = [float(r["lr/optim"]) for r in rows if r.get("lr/optim")]
    assert rates[0] == pytest.approx(0.05) and rates[-1] == pytest.approx(0.025)
    assert any(r.get("valid/loss") for r in rows)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"


def test_a_model_names_its_updates_with_optimization_steps(launch_cli, toy_recipe):
    (toy_recipe / "src" / "two_losses.py").write_text(NAMED_MODEL)

    def change(config: dict) -> None:
        config["model"]["_target_"] = "src.two_losses.TwoLosses"
        sgd = config.pop("optim")
        config["optimizers"] = {
            "encoder": {"optimizer": sgd, "params": "model.encoder"},
            "decoder": {"optimizer": sgd, "params": "decoder", "step_every_n_iters": 2}}

    edit_config(toy_recipe, change)
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}")
    assert code == 0, err
    (run_dir,) = [p for p in (toy_recipe / "exp").iterdir() if p.name != "sweeps"]
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    steps = state["launcher_named_steps"]
    # 2 epochs of 4 batches: the encoder updates on each, the decoder on every second
    assert (steps["encoder"]["updates"], steps["decoder"]["updates"]) == (8, 4)


@pytest.mark.parametrize("override,key", [
    ("+optims=[{params: encoder, optim: {_target_: torch.optim.SGD}}]", "optim"),
    ("+scheduler_interval=epoch", "scheduler_interval"),
    ("+optimizer={_target_: torch.optim.SGD, lr: 0.1}", "optimizer"),
])
def test_espnet3_spellings_that_clash_are_refused_before_anything_is_written(
        launch_cli, toy_recipe, override, key):
    assert f"key '{key}'" in rejected(launch_cli, toy_recipe, override)


def test_a_missing_optimizer_is_refused_before_anything_is_written(launch_cli, toy_recipe):
    line = rejected(launch_cli, toy_recipe, "~optim")
    assert "no optimizer configured" in line and "key 'optim'" in line


def test_self_name_is_the_name_of_the_primary_config(launch_cli, toy_recipe):
    """ESPnet3's `${self_name:}` names an experiment after its config file."""
    (toy_recipe / "conf" / "config.yaml").rename(toy_recipe / "conf" / "training.yaml")

    def change(config: dict) -> None:
        config.update(exp_tag="${self_name:}", inference_dir="${exp_dir}/${self_name:}",
                      exp_dir="${recipe_dir}/exp/${exp_tag}")
        config["trainer"]["max_epochs"] = 1

    path = toy_recipe / "conf" / "training.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))
    code, _, err = launch_cli(toy_recipe, "--config-name", "training",
                              f"exp_root={toy_recipe / 'exp'}")
    assert code == 0, err
    (run_dir,) = [p for p in (toy_recipe / "exp").iterdir() if p.name != "sweeps"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["exp_tag"] == "training"
    # the run lives in the config's exp_dir, all of it
    assert run_dir == toy_recipe / "exp" / "training"
    assert saved["exp_dir"] == str(run_dir) and saved["inference_dir"] == f"{run_dir}/training"
    for name in ("config.yaml", "run.log", "status.json", "progress.json", "metrics.csv",
                 "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name


def test_with_overrides_or_a_sweep_each_run_gets_a_subfolder_of_exp_dir(launch_cli,
                                                                         toy_recipe):
    exp_dir = toy_recipe / "experiments" / "mine"
    edit_config(toy_recipe, lambda c: c.update(exp_dir="${recipe_dir}/experiments/mine"))
    code, out, err = launch_cli(toy_recipe, "--dry-run", "-m", "optim.lr=0.1,0.2")
    assert code == 0, err
    run_dirs = re.findall(r"^  run_dir: (.*)$", out, flags=re.M)
    assert [Path(d).parent for d in run_dirs] == [exp_dir, exp_dir], out
    assert [Path(d).name.split("-")[0] for d in run_dirs] == ["optim.lr=0.1", "optim.lr=0.2"]
    code, out, err = launch_cli(toy_recipe, "--dry-run")  # no overrides: exp_dir itself
    assert re.findall(r"^  run_dir: (.*)$", out, flags=re.M) == [str(exp_dir)], err


# ---- num_device / num_nodes ----------------------------------------------------------
def test_espnet3s_device_counts_feed_the_resources():
    from launcher.resources import with_device_counts

    folded = with_device_counts({"trainer": {}}, 2, 4)
    assert folded["resources"] == {"nodes": 2, "processes_per_node": 4}
    on_gpus = with_device_counts({"trainer": {"accelerator": "gpu"}}, None, 4)
    assert on_gpus["resources"] == {"gpus_per_node": 4}
    stated = with_device_counts({"resources": {"gpus_per_node": 2}}, 1, 2)
    assert stated["resources"] == {"gpus_per_node": 2, "nodes": 1}
    with pytest.raises(ConfigError, match=r"num_device=2 contradicts resources\.gpus_per_node=4"):
        with_device_counts({"resources": {"gpus_per_node": 4}}, None, 2)
    with pytest.raises(ConfigError, match="num_nodes must be an integer >= 1"):
        with_device_counts({}, "two", None)


def test_num_device_and_num_nodes_reach_the_batch_script(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: (
        c.update(num_device=2, num_nodes=2),
        c["trainer"].update(devices="${num_device}", num_nodes="${num_nodes}")))
    code, out, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}",
                                "hydra/launcher=slurm", "cluster=local", "--dry-run")
    assert code == 0, err
    assert "#SBATCH --nodes=2" in out and "#SBATCH --ntasks-per-node=2" in out
    line = rejected(launch_cli, toy_recipe, "resources.processes_per_node=1")
    assert "key 'num_device'" in line and "contradicts resources.processes_per_node=1" in line
