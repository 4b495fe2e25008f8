"""The training building blocks of ESPnet3's `espnet3.systems.base.training`, by the
same names, for recipe Systems written against ESPnet3 (`MySystem.train()` that
builds its own module and Trainer).

A config that sets `task:` (an ESPnet2 task class such as
`espnet2.tasks.asr.ASRTask`) has its model built as ESPnet3 builds it
(`espnet3/utils/task_utils.py`, `get_espnet_model`): the task's default
arguments (`get_default_config()`), updated with the `model:` block, become
the `argparse.Namespace` given to the task's `build_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError

# Packages of the `espnet` distribution; a task from them needs the extra.
ESPNET_PACKAGES = ("espnet", "espnet2", "espnet3")
ESPNET_HINT = "pip install 'launcher[espnet]'"


def instantiate_model(config: Mapping) -> Any:
    """The model that `model:` describes, built as the shared System builds it (a
    constructor that raises is reported as a config error naming `model`); with
    `task:`, built by that task's `build_model`."""
    from launcher.components.building import build

    task = config.get("task")
    if task:
        recipe_dir = config.get("recipe_dir")
        return task_model(task_class(task, Path(recipe_dir) if recipe_dir else None),
                          config["model"], task)
    return build(config["model"], "model")


_instantiate_model = instantiate_model  # ESPnet3's name, as its recipes import it


def task_class(task: Any, recipe_dir: Path | None = None) -> type:
    """The class `task:` names, which must have `build_model(args)`; ESPnet's own tasks
    without ESPnet installed are refused with the extra to install."""
    import importlib.util

    from launcher.components.targets import locate

    root = str(task).split(".")[0]
    if root in ESPNET_PACKAGES and importlib.util.find_spec(root) is None:
        raise ConfigError(f"'{task}' is a task of ESPnet, which is not installed", key="task",
                          hint=ESPNET_HINT)
    try:
        cls = locate(task, key="task", recipe_dir=recipe_dir)
    except ImportError as exc:  # the task's module imports something missing
        if root in ESPNET_PACKAGES or (exc.name or "").split(".")[0] in ESPNET_PACKAGES:
            hint = f"install ESPnet with its dependencies: {ESPNET_HINT}"
        else:
            hint = "install what it needs"
        raise ConfigError(f"cannot import '{task}': {type(exc).__name__}: {exc}", key="task",
                          hint=hint) from exc
    if not callable(getattr(cls, "build_model", None)):
        raise ConfigError(f"'{task}' has no build_model(args)", key="task",
                          hint="name an ESPnet2 task class, e.g. espnet2.tasks.asr.ASRTask")
    return cls


def task_model(cls: type, model_config: Any, task: str) -> Any:
    """`cls.build_model(Namespace(**arguments))`: the task's defaults, then `model:`."""
    import sys
    from argparse import Namespace

    from omegaconf import OmegaConf

    from launcher.components.building import last_line

    arguments: dict = {}
    if callable(getattr(cls, "get_default_config", None)):
        argv, sys.argv = sys.argv, ["dummy.py"]  # ESPnet's parser reads sys.argv
        try:
            arguments = dict(cls.get_default_config())
        finally:
            sys.argv = argv
    if OmegaConf.is_config(model_config):
        model_config = OmegaConf.to_container(model_config, resolve=True)
    arguments.update(model_config or {})
    try:
        return cls.build_model(Namespace(**arguments))
    except Exception as exc:
        raise ConfigError(f"{task}.build_model(...) raised {last_line(exc)}", key="model",
                          hint="the full traceback is in the run's log") from exc
