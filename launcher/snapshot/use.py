"""The job's side of a snapshot: import the copied code, read paths from the recipe.

A job whose config Hydra composed from `<sweep>/code/recipe/conf` runs from a
snapshot. Its recipe folder is still the original one (data, exp/ and every
relative path of the config are there); only the recipe's `src` and the local
packages are imported from the copy.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from launcher.snapshot.files import LIB, RECIPE
from launcher.snapshot.take import SNAPSHOT_FILE

_COPIES: dict[str, Path] = {}  # original recipe folder -> its copy, in this process


@functools.lru_cache(maxsize=64)
def snapshot_of(conf_dir: Path) -> tuple[Path, Path] | None:
    """(the snapshot, the recipe folder it was taken from) when `conf_dir` is a
    snapshot's config folder; None for any other. Read once per process."""
    conf_dir = Path(conf_dir)
    root = conf_dir.parent.parent
    if conf_dir.parent.name != RECIPE or not (root / SNAPSHOT_FILE).is_file():
        return None
    return root, Path(json.loads((root / SNAPSHOT_FILE).read_text())["recipe_dir"])


def source_recipe_dir(conf_dir: Path) -> Path:
    """The recipe folder a config folder stands for: its parent, or for a snapshot's,
    the folder the snapshot was taken from."""
    found = snapshot_of(Path(conf_dir))
    return Path(conf_dir).parent if found is None else found[1]


def activate(conf_dir: Path) -> Path | None:
    """In a job: import the recipe's code and the local packages from the snapshot
    `conf_dir` belongs to (nothing to do for a job that runs without one)."""
    found = snapshot_of(Path(conf_dir))
    if found is None:
        return None
    root, recipe_dir = found
    lib = str(root / LIB)
    if (root / LIB).is_dir() and lib not in sys.path:
        sys.path.insert(0, lib)
    _COPIES[str(recipe_dir.resolve())] = root / RECIPE
    return root


def code_dir(recipe_dir: Path) -> Path:
    """Where this process imports a recipe's `src` from: its snapshot's copy once one is
    active, else the recipe folder itself."""
    return _COPIES.get(str(Path(recipe_dir).resolve()), Path(recipe_dir))
