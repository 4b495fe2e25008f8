"""ESPnet3's `task:` key: the model is built by the task class's `build_model`, given
its default arguments updated with the `model:` block; an ESPnet task without ESPnet
installed is refused before launch, naming `task` and the extra to install.

ESPnet is not installed here: a stand-in of the same shape (classmethods
`get_default_config()` and `build_model(args)`) plays the task."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import edit_config, rejected

STAND_IN = '''
import json
from pathlib import Path

from .model import Regressor


class StandInTask:
    """Shaped like an ESPnet2 task class."""

    @classmethod
    def get_default_config(cls):
        return {"dim": 4, "hidden": 3, "record_to": None}

    @classmethod
    def build_model(cls, args):
        if args.record_to:
            Path(args.record_to).write_text(json.dumps(vars(args)))
        return Regressor(dim=args.dim, hidden=args.hidden)
'''


class BareTask:
    """A task without defaults: `build_model` gets the `model:` block only."""

    @classmethod
    def build_model(cls, args):
        import torch

        return torch.nn.Linear(args.inputs, args.outputs)


@pytest.fixture
def task_recipe(toy_recipe: Path, tmp_path: Path) -> Path:
    """The toy recipe with its model built by `src.task.StandInTask`."""
    (toy_recipe / "src" / "task.py").write_text(STAND_IN)
    record = tmp_path / "args.json"
    edit_config(toy_recipe, lambda c: c.update(
        task="src.task.StandInTask", model={"hidden": 5, "record_to": str(record)}))
    return toy_recipe


def test_the_model_is_built_by_the_task_from_the_model_block(launch_cli, task_recipe,
                                                            tmp_path):
    code, _, err = launch_cli(task_recipe, f"exp_root={task_recipe / 'exp'}",
                              "trainer.max_epochs=1")
    assert code == 0, err
    given = json.loads((tmp_path / "args.json").read_text())
    assert given == {"dim": 4, "hidden": 5, "record_to": str(tmp_path / "args.json")}


def test_a_dry_run_names_the_task(launch_cli, task_recipe):
    code, out, err = launch_cli(task_recipe, f"exp_root={task_recipe / 'exp'}", "--dry-run")
    assert code == 0, err
    assert "model             src.task.StandInTask.build_model" in out


def test_instantiate_model_without_defaults():
    from omegaconf import OmegaConf

    from launcher.systems.base.training import _instantiate_model

    config = OmegaConf.create({"task": f"{__name__}.BareTask",
                               "model": {"inputs": 3, "outputs": "${sizes.out}"},
                               "sizes": {"out": 2}})
    model = _instantiate_model(config)
    assert (model.in_features, model.out_features) == (3, 2)


@pytest.mark.skipif(importlib.util.find_spec("espnet2") is not None,
                    reason="ESPnet is installed here")
@pytest.mark.parametrize("task", ["espnet2.tasks.asr.ASRTask",
                                  "launcher.systems.asr.task.ASRTask"])
def test_an_espnet_task_without_espnet_is_refused_before_launch(launch_cli, task_recipe,
                                                               task):
    line = rejected(launch_cli, task_recipe, f"task={task}")
    assert "key 'task'" in line and "pip install 'launcher[espnet]'" in line, line


@pytest.mark.parametrize("task,expected", [
    ("src.model.ToyData", "'src.model.ToyData' has no build_model(args)"),
    ("src.task.Nope", "cannot import 'src.task.Nope'"),
])
def test_a_task_that_cannot_build_is_refused(launch_cli, task_recipe, task, expected):
    line = rejected(launch_cli, task_recipe, f"task={task}")
    assert "key 'task'" in line and expected in line, line


def test_a_build_model_that_raises_is_a_config_error_naming_model():
    from launcher.errors import ConfigError
    from launcher.systems.base.training import instantiate_model

    with pytest.raises(ConfigError, match=r"key 'model': .*BareTask\.build_model\(\.\.\.\) "
                                          r"raised AttributeError"):
        instantiate_model({"task": f"{__name__}.BareTask", "model": {"inputs": 3}})
