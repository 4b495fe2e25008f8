"""ESPnet3's OmegaConf resolvers, `${load_line:path}` and `${load_yaml:path[,key]}`.

They behave as ESPnet3's (`espnet3/utils/config_utils.py`): `load_line` is the
file's lines, each stripped, as a list (a token list kept in a text file);
`load_yaml` is a YAML file, or with `key` the value at that dotted key of it
(a key that is missing or null is an error).

Where a relative path points: ESPnet3 first opened it from the current
folder, which is the recipe folder when `run.py` runs there
(`${load_yaml:conf/train.yaml,exp_tag}`); it now rewrites it relative to the
YAML file that holds it (`${load_yaml:train.yaml,exp_tag}` from
`conf/inference.yaml`). Hydra composes the config here, so the file a value
came from is not known; a relative path, written or made by an interpolation,
is looked up in the recipe's `conf/` folder, then in the recipe folder, so both
spellings find the same file, in planning and in every job alike (a job's
working folder may be anywhere). An absolute path is used as it is.

Planning registers them before composing (`launcher.plan.recipe.compose`),
every job before its config is read (`launcher.job.task.run_job`); registering
again only points relative paths at the recipe of the latest call. ESPnet3's
own module registers the same names when it is imported, and fails if they are
taken; with ESPnet installed it is imported first, and these replace its.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RESOLVERS = ("load_line", "load_yaml")
# ESPnet3's modules that register them on import (the name changed between releases).
ESPNET3_MODULES = ("espnet3.utils.config_utils", "espnet3.utils.config")
_SEARCHED: list[Path] = []  # where a relative path is looked for, in order
_REGISTERED: list[bool] = []  # not empty once registered in this process


class NotInFile(KeyError):
    """ESPnet3 raises KeyError for a missing key; this one prints as a sentence."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_espnet3_resolvers(recipe_dir: Path | str) -> None:
    """Register `load_line` and `load_yaml` and look up relative paths in `recipe_dir`'s
    conf/ folder, then in `recipe_dir`. Calling it again changes only the folder."""
    from omegaconf import OmegaConf

    recipe_dir = Path(recipe_dir).resolve()
    _SEARCHED[:] = [recipe_dir / "conf", recipe_dir]
    if _REGISTERED:
        return
    _let_espnet3_register_first()
    for name, function in zip(RESOLVERS, (load_line, load_yaml), strict=True):
        OmegaConf.register_new_resolver(name, function, replace=True)
    _REGISTERED.append(True)


def _let_espnet3_register_first() -> None:
    """Import ESPnet3's resolver module, when ESPnet is installed, so that its import
    (which registers the same names and fails if they are taken) is over."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("espnet3") is None:
        return
    for module in ESPNET3_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # this release spells it the other way
            if exc.name != module:
                raise


def found(path: Any) -> Path:
    """The file a resolver's path names; FileNotFoundError saying where it was looked for."""
    given = Path(str(path)).expanduser()
    if given.is_absolute():
        candidates = [given]
    else:
        candidates = [folder / given for folder in _SEARCHED] or [Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = " or ".join(str(c.parent) for c in candidates)
    raise FileNotFoundError(f"no file '{path}' in {where}")


def load_line(path: Any) -> list[str]:
    """The lines of a text file, each stripped of surrounding white space."""
    with open(found(path), encoding="utf-8") as lines:
        return [line.strip() for line in lines.readlines()]


def load_yaml(path: Any, key: Any = None) -> Any:
    """A YAML file's config, or the value at a dotted `key` of it."""
    from omegaconf import OmegaConf

    file = found(path)
    config = OmegaConf.load(file)
    if key is None or str(key).strip() == "":
        return config
    value = OmegaConf.select(config, str(key).strip(), default=None)
    if value is None:
        raise NotInFile(f"no key '{key}' in {file}")
    return value
