"""The launcher's own config groups (hydra/launcher, hydra/sweeper, cluster), found by
Hydra as `pkg://launcher.conf` behind a recipe's own conf/."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).parent
SEARCH_PATH = "hydra.searchpath=[pkg://launcher.conf]"


def is_config_group(recipe_conf_dir: Path, key: str) -> bool:
    """Whether `key` chooses a config group: the recipe's conf/ (or the launcher's) has a
    folder of that name."""
    group = key.lstrip("+~").split("@", 1)[0].replace(".", "/")
    return (Path(recipe_conf_dir) / group).is_dir() or (CONF_DIR / group).is_dir()
