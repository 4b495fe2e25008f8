"""What the launcher uses of Hydra beyond its public API (hydra-core 1.3).

- `grid_jobs`: the job override lists Hydra's basic sweeper makes of a sweep,
  exactly as the launcher plugin will receive them (`BasicSweeper.split_arguments`);
- `apply_value_overrides`: value overrides applied to a composed config, as
  Hydra applies them after composing (`ConfigLoaderImpl._apply_overrides_to_config`);
- `main_hydra`: a Hydra app object for a config folder, as `@hydra.main` makes
  one (`Hydra.create_main_hydra2`, `create_config_search_path`);
- `basic_sweeper_class`: the grid sweeper class, subclassed by the `planned`
  sweeper (looked up when asked: Hydra may load its plugin modules anew).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def basic_sweeper_class() -> type:
    import importlib

    return importlib.import_module("hydra._internal.core_plugins.basic_sweeper").BasicSweeper


def grid_jobs(parsed: Sequence[Any]) -> list[list[str]]:
    """One override list per job of a grid sweep, in the sweeper's order and spelling."""
    (batch,) = basic_sweeper_class().split_arguments(list(parsed), None)
    return [list(job) for job in batch]


def apply_value_overrides(parsed: Sequence[Any], config: Any) -> None:
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(list(parsed), config)


def main_hydra(conf_dir: Path, task_name: str) -> Any:
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path

    return Hydra.create_main_hydra2(task_name=task_name,
                                    config_search_path=create_config_search_path(str(conf_dir)))
