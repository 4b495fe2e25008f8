"""Arguments a call would refuse, and values of the wrong type, are one line at launch.

Every `_target_` block, the Trainer options, the dataloader options and `seed`
are judged before anything is written: an unknown argument, a missing one, or
a value that does not fit the annotation names its key and where it came from.
"""

# Libraries' signatures spell unions with typing.Optional and typing.Union; so do these.
# ruff: noqa: UP007, UP045
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional, Union

import pytest
import torch
from conftest import edit_config, rejected

from launcher.errors import ConfigError
from launcher.job.config import job_config
from launcher.plan import check_cache
from launcher.plan.calls import check_arguments
from launcher.plan.type_judge import Verdict, problem, verdict

CONFIG = "conf/config.yaml"


def with_adam(recipe: Path) -> None:
    edit_config(recipe, lambda c: c.update(optim={"_target_": "torch.optim.Adam", "lr": 0.01}))


def with_scheduler(recipe: Path) -> None:
    edit_config(recipe, lambda c: c.update(
        scheduler={"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2}))


def with_dataset_needing_size(recipe: Path) -> None:
    (recipe / "src" / "sized.py").write_text(
        "from torch.utils.data import Dataset\n\n"
        "class Sized(Dataset):\n"
        "    def __init__(self, size: int, dim: int = 4) -> None:\n"
        "        self.size, self.dim = size, dim\n")
    edit_config(recipe, lambda c: c["dataset"].update(train={"_target_": "src.sized.Sized"}))


CASES = [  # (overrides, a change to the recipe, what the line must say)
    (["trainer.max_epochs=abc"], None,
     ["command-line override 'trainer.max_epochs=abc'", "key 'trainer.max_epochs'",
      "'abc' is not an int (pytorch_lightning.Trainer's max_epochs takes Optional[int])",
      "HINT: e.g. trainer.max_epochs=10"]),
    (["trainer.max_epochs=1.5"], None, ["key 'trainer.max_epochs'", "1.5 is not an int"]),
    (["+trainer.precision=17"], None,
     ["key 'trainer.precision'", "17 is not one of 64, 32, 16, ", "'bf16-mixed'"]),
    (["+trainer.enable_checkpointing=maybe"], None,
     ["key 'trainer.enable_checkpointing'", "'maybe' is not true or false"]),
    (["model.hidden=abc"], None,
     ["key 'model.hidden'", "'abc' is not an int (src.model.Regressor's hidden takes int)",
      "HINT: e.g. model.hidden=8"]),
    (["+model.hidden=[1,2]"], None, ["key 'model.hidden'", "[1, 2] is not an int"]),
    (["seed=abc"], None, ["key 'seed'", "'abc' is not an int", "HINT: e.g. seed=0"]),
    (["+optim.betass=[0.9,0.99]"], with_adam,
     ["key 'optim.betass'", "'torch.optim.Adam' has no argument 'betass'",
      "did you mean 'betas'"]),
    (["optim.lr=abc"], None,
     ["key 'optim.lr'", "'abc' is not a number (torch.optim.SGD's lr takes float"]),
    (["+scheduler.step_sise=3"], with_scheduler,
     ["key 'scheduler.step_sise'", "has no argument 'step_sise'", "did you mean 'step_size'"]),
    (["+dataloader.shufle=true"], None,
     ["key 'dataloader.shufle'", "'torch.utils.data.DataLoader' has no argument 'shufle'",
      "did you mean 'shuffle'"]),
    (["dataloader.batch_size=abc"], None,
     ["key 'dataloader.batch_size'", "'abc' is not an int"]),
    (["+dataset.train.sise=3"], None,
     ["key 'dataset.train.sise'", "'src.model.ToyData' has no argument 'sise'",
      "did you mean 'size'"]),
    (["dataset.train.size=abc"], None,
     ["key 'dataset.train.size'", "'abc' is not an int (src.model.ToyData's size takes int)"]),
    ([], with_dataset_needing_size,
     [CONFIG, "key 'dataset.train.size'",
      "'src.sized.Sized' needs argument 'size', which has no default"]),
    (["+trainer.progress_interval_s=-1"], None,
     ["key 'trainer.progress_interval_s'", "-1 is not a number >= 0",
      "HINT: e.g. trainer.progress_interval_s=30"]),
    (["-m", "optim.lr=0.1,abc"], None,
     ["command-line override 'optim.lr=abc'", "key 'optim.lr'", "'abc' is not a number"]),
]


@pytest.mark.parametrize("overrides,change,expected", CASES,
                         ids=[" ".join(c[0]) or c[1].__name__ for c in CASES])
def test_a_bad_argument_is_one_line_before_anything_is_written(launch_cli, toy_recipe,
                                                               overrides, change, expected):
    if change is not None:
        change(toy_recipe)
    line = rejected(launch_cli, toy_recipe, *overrides)
    for text in expected:
        assert text in line, line
    assert "_recipe_" not in line, "the user's own spelling, src., is shown"


def test_a_bad_value_is_refused_although_a_good_one_of_its_sweep_passed_the_cache(
        launch_cli, toy_recipe, import_checks):
    exp = toy_recipe / "exp"
    code, _, err = launch_cli(toy_recipe, f"exp_root={exp}", "optim.lr=0.1", "--dry-run")
    assert code == 0, err
    assert len(import_checks) == 1
    line = rejected(launch_cli, toy_recipe, "-m", "optim.lr=0.2,abc")
    assert "key 'optim.lr'" in line and "'abc' is not a number" in line
    assert len(import_checks) == 2, "0.2 came from the cache, 'abc' was checked"


def test_a_check_that_compares_numbers_is_not_remembered(launch_cli, toy_recipe,
                                                          import_checks):
    (toy_recipe / "src" / "modal.py").write_text(
        "from typing import Literal\n\nfrom .model import Regressor\n\n"
        "class Modal(Regressor):\n"
        "    def __init__(self, mode: Literal[1, 2] = 1, hidden: int = 8) -> None:\n"
        "        super().__init__(hidden=hidden)\n")
    edit_config(toy_recipe, lambda c: c.update(model={"_target_": "src.modal.Modal"}))
    line = rejected(launch_cli, toy_recipe, "-m", "+model.mode=1,3")
    assert "key 'model.mode'" in line and "3 is not one of 1, 2" in line
    assert len(import_checks) == 2


def test_a_value_sweep_shares_one_check_key(toy_recipe):
    from launcher.plan.recipe import compose, find_recipe

    recipe = find_recipe(toy_recipe)

    def key(*overrides: str) -> str:
        config = compose(recipe, list(overrides))
        return check_cache.key_of(job_config(config, recipe.dir, Path("/r")),
                                  recipe.dir)

    assert key("optim.lr=0.1") == key("optim.lr=0.3") == key("optim.lr=1e-4")
    assert key("optim.lr=0.1") != key("optim.lr=1"), "an int is not always a float"
    assert key("optim.lr=0.1") != key("optim.lr=abc") != key("optim.lr=xyz")


# ---- the type judge ---------------------------------------------------------------
class Activation:
    """A class no config value can be."""


@pytest.mark.parametrize("annotation,value,fits", [
    (Optional[int], 3, True),
    (Optional[int], None, True),
    (Optional[int], "abc", False),
    (Optional[int], 1.5, False),
    (int, True, False),
    (float, 3, True),
    (float, "0.1", False),
    (bool, "maybe", False),
    (str, 3, False),
    (Union[int, str], "auto", True),
    (Union[int, str], [1], False),
    (int | None, None, True),
    (Union[float, torch.Tensor], 0.1, True),
    (Union[float, torch.Tensor], "abc", False),
    (Union[str, Activation], "relu", True),
    (Union[str, Activation], 3, False),
    (Literal[16, 32], 16, True),
    (Literal[16, 32], 17, False),
    (Literal[16, 32], 16.0, False),
    (Literal["min", "max"], "max", True),
    (Literal["min", "max"], "mean", False),
    (list[int], [1, 2], True),
    (list[int], [1, "a"], False),
    (list[int], 1, False),
    (tuple[float, float], [0.9, 0.99], True),
    (tuple[float, float], [0.9], False),
    (tuple[int, ...], [1, 2, 3], True),
    (dict[str, int], {"a": 1}, True),
    (dict[str, int], {"a": "b"}, False),
    (Path, "data/train.txt", True),
    (Path, 3, False),
    (os.PathLike, "x", True),
    (Optional[Path], None, True),
])
def test_the_type_judge(annotation, value, fits):
    assert (verdict(annotation, value) is Verdict.FITS) is fits
    assert (problem(annotation, value) is None) is fits


@pytest.mark.parametrize("annotation,value", [
    (Activation, "relu"),  # a class of its own: not judged
    (Optional[Activation], "relu"),
    (torch.dtype, "float32"),
    (list[Activation], ["relu"]),
    ("SomeName", 3),  # an annotation that did not evaluate
    (int, {"_target_": "src.model.Width"}),  # a call of its own
])
def test_what_cannot_be_judged_passes(annotation, value):
    assert problem(annotation, value) is None


def test_a_problem_says_what_was_wanted():
    assert problem(Optional[int], "abc") == "'abc' is not an int"
    assert problem(Literal[16, "bf16"], 17) == "17 is not one of 16, 'bf16'"
    assert problem(bool, None) == "null is not true or false"


# ---- calls in a job config ----------------------------------------------------------
def linear(**arguments) -> dict:
    return {"layer": {"_target_": "torch.nn.Linear", **arguments}}


def test_a_partial_call_may_leave_required_arguments_out():
    check_arguments(linear(_partial_=True, in_features=3))
    with pytest.raises(ConfigError, match="needs argument 'out_features'") as caught:
        check_arguments(linear(in_features=3))
    assert caught.value.key == "layer.out_features"


def test_values_only_a_job_resolves_are_not_judged():
    check_arguments(linear(in_features="???", out_features="${hydra:job.num}"))


def test_interpolations_are_judged_as_resolved():
    check_arguments({"width": 4, **linear(in_features="${width}", out_features=2)})
    with pytest.raises(ConfigError, match="'four' is not an int") as caught:
        check_arguments({"width": "four", **linear(in_features="${width}", out_features=2)})
    assert caught.value.key == "layer.in_features"


def test_nested_calls_are_checked_and_not_judged_as_values():
    nested = {"_target_": "torch.nn.Sequential",
              "_args_": [{"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 2}]}
    check_arguments({"net": nested})
    nested["_args_"][0]["bias"] = "yes"
    with pytest.raises(ConfigError, match="'yes' is not true or false") as caught:
        check_arguments({"net": nested})
    assert caught.value.key == "net._args_[0].bias"


def test_arguments_the_launcher_passes_cannot_be_set():
    with pytest.raises(ConfigError, match="'params' is passed by the launcher"):
        check_arguments({"optim": {"_target_": "torch.optim.SGD", "lr": 0.1, "params": []}})


def test_scheduler_settings_are_the_launchers():
    scheduler = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2,
                 "interval": "step", "frequency": 1, "monitor": None}
    check_arguments({"scheduler": scheduler})
    with pytest.raises(ConfigError, match="'week' is not one of 'step', 'epoch'"):
        check_arguments({"scheduler": {**scheduler, "interval": "week"}})


def test_phases_of_a_curriculum_are_changes_not_calls():
    check_arguments({"curriculum": [{"name": "a", "optim": {"_target_": "torch.optim.SGD"}}]})
