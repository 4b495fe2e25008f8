"""Named optimization steps under manual optimization: each name updates only its own
parameters, on its own schedule, with its own accumulation, clipping and scheduler."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import edit_config
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from launcher.components.modeling.lightning_module import ESPnetLightningModule
from launcher.errors import ConfigError

LR = 0.1
CLIP_A = 0.05


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Three(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 1)
        self.c = nn.Linear(3, 1)


def loss_a(model: Three, x: torch.Tensor) -> torch.Tensor:
    return (model.a(x) ** 2).mean()


def loss_b(model: Three, x: torch.Tensor) -> torch.Tensor:
    return ((model.b(model.a(x)) - 1) ** 2).mean()  # flows into `a` as well


def loss_c(model: Three, x: torch.Tensor) -> torch.Tensor:
    return model.c(x).abs().mean()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def part(state: dict, name: str) -> torch.Tensor:
    return torch.cat([state[f"{name}.weight"].flatten(), state[f"{name}.bias"].flatten()])


class Recorder(ESPnetLightningModule):
    """Updates a, b and c by name each batch and records the weights after each update."""

    def __init__(self, model: nn.Module, config) -> None:
        super().__init__(model, config)
        self.records: list[dict] = []
        self.lr_b: list[float] = []

    def train_dataloader(self):
        x = torch.randn(36, 3, generator=torch.Generator().manual_seed(0))
        return DataLoader([{"x": row} for row in x], batch_size=4, shuffle=False)

    def training_step(self, batch, batch_idx):
        x = batch["x"]
        record = {"x": x, "start": snapshot(self.model)}
        self.lr_b.append(self.optimizers()[1].param_groups[0]["lr"])
        self.manual_update(loss_a(self.model, x), "a")
        record["after_a"] = snapshot(self.model)
        self.manual_update(loss_b(self.model, x), "b")
        record["after_b"] = snapshot(self.model)
        record["c_due"] = self.update_due("c")
        if record["c_due"]:
            self.manual_update(loss_c(self.model, x), "c")
        record["end"] = snapshot(self.model)
        self.records.append(record)


def sgd(lr: float = LR) -> dict:
    return {"_target_": "torch.optim.SGD", "lr": lr}


CONFIG = {"optims": [
    {"name": "a", "params": "a", "optim": sgd(), "accumulate": 2, "clip_grad_norm": CLIP_A},
    {"name": "b", "params": "b", "optim": sgd(),
     "scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1,
                   "gamma": 0.5, "interval": "step"}},
    {"name": "c", "params": "c", "optim": sgd(), "every_n_steps": 3}]}


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    module = Recorder(Three(), OmegaConf.create(CONFIG))
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1)
    trainer.fit(module)
    return module, trainer


def grads_of(model: Three, loss_fn, x: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    """The gradient of `loss_fn` for one part, at the weights `state`, computed afresh."""
    fresh = Three()
    fresh.load_state_dict(state)
    loss_fn(fresh, x).backward()
    module = getattr(fresh, name)
    return torch.cat([module.weight.grad.flatten(), module.bias.grad.flatten()])


def test_each_name_updates_only_its_own_parameters(trained):
    module, _ = trained
    assert len(module.records) == 9
    for r in module.records:
        for name in ("b", "c"):  # the update of `a` leaves b and c alone
            assert torch.equal(part(r["after_a"], name), part(r["start"], name))
        for name in ("a", "c"):  # the update of `b` leaves a and c alone, though its loss uses a
            assert torch.equal(part(r["after_b"], name), part(r["after_a"], name))
        for name in ("a", "b"):
            assert torch.equal(part(r["end"], name), part(r["after_b"], name))
        assert not torch.equal(part(r["after_b"], "b"), part(r["after_a"], "b"))


def test_every_n_steps_updates_on_every_nth_batch_only(trained):
    module, _ = trained
    due = [r["c_due"] for r in module.records]
    assert due == [False, False, True] * 3
    for r in module.records:
        changed = not torch.equal(part(r["end"], "c"), part(r["after_b"], "c"))
        assert changed == r["c_due"]


def test_accumulation_averages_two_batches_and_clipping_bounds_the_step(trained):
    module, trainer = trained
    records = module.records
    for i, r in enumerate(records):
        step = part(r["after_a"], "a") - part(r["start"], "a")
        if i % 2 == 0:  # first call of a window: nothing stepped yet
            assert torch.equal(step, torch.zeros_like(step))
            continue
        # a's weights did not move between the two calls of the window, so the expected
        # gradient is the mean of both batches' gradients at these weights. Had b's backward
        # (which flows into a) leaked into a's window, this would not match.
        mean = (grads_of(module.model, loss_a, records[i - 1]["x"], r["start"], "a")
                + grads_of(module.model, loss_a, r["x"], r["start"], "a")) / 2
        assert mean.norm() > CLIP_A * 2  # so clipping must have acted
        expected = -LR * mean * (CLIP_A / mean.norm())
        torch.testing.assert_close(step, expected, rtol=1e-5, atol=1e-7)
        assert step.norm() == pytest.approx(LR * CLIP_A, rel=1e-5)
    assert trainer.callback_metrics["train/a_grad_norm"] > CLIP_A


def test_a_step_scheduler_steps_with_its_own_optimizer(trained):
    module, trainer = trained
    assert module.lr_b == [LR * 0.5 ** i for i in range(9)]
    for r, lr in zip(module.records, module.lr_b, strict=True):
        step = part(r["after_b"], "b") - part(r["after_a"], "b")
        grad = grads_of(module.model, loss_b, r["x"], r["after_a"], "b")
        torch.testing.assert_close(step, -lr * grad, rtol=1e-5, atol=1e-7)
    for name in ("a", "b", "c"):
        assert f"train/{name}_loss" in trainer.callback_metrics
    # Lightning's global step counts optimizer steps: 4 of a, 9 of b, 3 of c
    assert trainer.global_step == 4 + 9 + 3


def test_unknown_or_bad_optims_settings_are_refused_before_anything_runs(launch_cli,
                                                                         toy_recipe):
    def two(extra: dict):
        def change(config):
            config.pop("optim")
            config["optims"] = [{"name": "enc", "params": "encoder", "optim": sgd(), **extra},
                                {"name": "dec", "params": "decoder", "optim": sgd()}]
        return change

    edit_config(toy_recipe, two({"acumulate": 2}))
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}")
    assert code == 2 and "unknown optims setting 'acumulate'" in err
    assert "key 'optims[0].acumulate'" in err and "did you mean 'accumulate'?" in err
    edit_config(toy_recipe, lambda c: c["optims"][0].pop("acumulate"))
    edit_config(toy_recipe, lambda c: c["optims"][0].update(clip_grad_norm=-1))
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}")
    assert code == 2 and "key 'optims[0].clip_grad_norm'" in err
    assert not (toy_recipe / "exp").exists()


def test_manual_update_without_optims_says_what_to_configure():
    module = ESPnetLightningModule(Three(), OmegaConf.create({"optim": sgd()}))
    with pytest.raises(ConfigError, match="configure 'optims' instead"):
        module.manual_update(torch.tensor(1.0), "a")


def test_resume_mid_accumulation_window_ends_bitwise_equal(launch_cli, toy_recipe):
    """Interrupted while a window is open (1 and then 2 of 3 backward calls), the run
    continues that window after resuming and ends with the same weights."""
    import json

    def named(config):
        config.pop("optim")
        config["lightning_module"] = {"_target_": "src.probe.InterruptingProbe"}
        config["optims"] = [
            {"name": "enc", "params": "encoder", "optim": sgd(), "accumulate": 3,
             "clip_grad_norm": 0.5},
            {"name": "dec", "params": "decoder", "optim": sgd(), "every_n_steps": 2}]

    edit_config(toy_recipe, named)
    common = ["+model.dropout=0.3", "trainer.max_epochs=3"]
    clean, interrupted = toy_recipe / "clean", toy_recipe / "interrupted"
    assert launch_cli(toy_recipe, f"exp_root={clean}", *common)[0] == 0
    args = [f"exp_root={interrupted}", *common, "+interrupt_at=[3,6]"]
    assert [launch_cli(toy_recipe, *args)[0] for _ in range(3)] == [143, 143, 0]

    def weights(exp):
        (run_dir,) = [p for p in exp.iterdir() if p.is_dir() and p.name != "sweeps"]
        return json.loads((run_dir / "probe.rank0.json").read_text())

    assert weights(interrupted)["weights_sha"] == weights(clean)["weights_sha"]
    assert weights(clean)["steps"] == 4 + 6  # enc: 12 batches / 3, dec: every 2nd batch


@pytest.mark.parametrize("option,replacement", [("gradient_clip_val", "clip_grad_norm"),
                                                ("accumulate_grad_batches", "accumulate")])
def test_lightnings_own_clipping_and_accumulation_are_pointed_to_their_replacements(
        option, replacement):
    from launcher.components.modeling.optimization_spec import check_manual_trainer_options

    config = {**CONFIG, "trainer": {option: 2}}
    with pytest.raises(ConfigError, match=f"'{replacement}: 2'") as error:
        check_manual_trainer_options(config)
    assert error.value.key == f"trainer.{option}"
    check_manual_trainer_options({**CONFIG, "trainer": {"gradient_clip_val": 0,
                                                        "accumulate_grad_batches": 1}})
    check_manual_trainer_options({"optim": sgd(), "trainer": {option: 2}})


def test_trainer_clipping_with_optims_fails_with_the_replacement_named(launch_cli, toy_recipe):
    edit_config(toy_recipe, lambda c: (c.pop("optim"), c.update(optims=[
        {"name": "enc", "params": "encoder", "optim": sgd()},
        {"name": "dec", "params": "decoder", "optim": sgd()}])))
    code, _, err = launch_cli(toy_recipe, f"exp_root={toy_recipe / 'exp'}",
                              "+trainer.gradient_clip_val=1.0")
    assert code == 2 and "key 'trainer.gradient_clip_val'" in err
    assert "'clip_grad_norm: 1.0'" in err and "Traceback" not in err
    assert not (toy_recipe / "exp").exists(), "refused before anything is written"
