"""Turn `_target_` strings from the config into classes.

A target that starts with `src.` names the recipe's own `src/` folder, imported
as a package of its own (`recipe_package`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.components.recipe_package import import_recipe_package
from launcher.errors import ConfigError

SRC_PREFIX = "src."


# ESPnet3 configs name Lightning's classes through the unified `lightning` package;
# the Trainer here is `pytorch_lightning`'s, and only its own classes fit it (a
# `lightning.pytorch` callback is a different class, refused by this Trainer).
UNIFIED_LIGHTNING = {"lightning.pytorch.": "pytorch_lightning.",
                     "lightning.fabric.": "lightning_fabric."}


def translate_target(target: str, recipe_dir: Path | None) -> str:
    """Map `src.x.Y` to the recipe's unique package name and `lightning.pytorch.X` to
    `pytorch_lightning.X`; leave other targets alone."""
    if recipe_dir is not None and target.startswith(SRC_PREFIX):
        return f"{import_recipe_package(recipe_dir)}.{target[len(SRC_PREFIX):]}"
    for unified, standalone in UNIFIED_LIGHTNING.items():
        if target.startswith(unified):
            return standalone + target[len(unified):]
    return target


def translate_all_targets(node: Any, recipe_dir: Path | None) -> Any:
    """A copy of a plain config container with every `src.` target translated."""
    if isinstance(node, dict):
        return {k: (translate_target(v, recipe_dir)
                    if k == "_target_" and isinstance(v, str)
                    else translate_all_targets(v, recipe_dir))
                for k, v in node.items()}
    if isinstance(node, list):
        return [translate_all_targets(v, recipe_dir) for v in node]
    return node


def keys_named(node: Any, names: tuple[str, ...], path: str = ""
               ) -> Iterator[tuple[str, Any]]:
    """`(path, value)` of every key called one of `names`, at any depth, in order;
    paths read `trainer.callbacks[0]._target_`."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key in names:
                yield here, value
            else:
                yield from keys_named(value, names, here)
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for i, value in enumerate(node):
            yield from keys_named(value, names, f"{path}[{i}]")


def locate(target: str, *, key: str, recipe_dir: Path | None = None) -> Any:
    """Import the object a dotted path names, with an error that says what is missing."""
    if not isinstance(target, str) or not target or target.startswith(".") or ".." in target:
        raise ConfigError(f"'{target}' is not a dotted path such as 'src.model.MyModel'",
                          key=key)
    real = translate_target(target, recipe_dir)
    parts = real.split(".")
    module, depth = _import_longest_prefix(parts, target, key, recipe_dir)
    obj: Any = module
    for i in range(depth, len(parts)):
        if not hasattr(obj, parts[i]):
            owner = _shown(".".join(parts[:i]), target, real)
            hint = _nearby(parts[i], dir(obj))
            if hasattr(obj, "__path__") and i < len(parts) - 1:
                missing = f"no module named '{owner}.{parts[i]}'"
            else:
                missing = f"'{owner}' has no attribute '{parts[i]}'"
            raise ConfigError(f"cannot import '{target}': {missing}"
                              f"{_searched(target, recipe_dir)}", key=key, hint=hint)
        obj = getattr(obj, parts[i])
    return obj


def _import_longest_prefix(parts: list[str], target: str, key: str,
                           recipe_dir: Path | None) -> tuple[types.ModuleType, int]:
    for depth in range(len(parts), 0, -1):
        name = ".".join(parts[:depth])
        try:
            return importlib.import_module(name), depth
        except ModuleNotFoundError as exc:
            # Only a missing module on the path we are walking means "try shorter";
            # a missing import inside the user's own code is their bug to see.
            if (exc.name or "").split(".")[0] == "lightning" \
                    and importlib.util.find_spec("lightning") is None:
                raise _unified_lightning(exc.name, target, key) from None
            if exc.name is None or not name.startswith(exc.name):
                raise
    shown = parts[0] if not target.startswith(SRC_PREFIX) else "src"
    raise ConfigError(f"cannot import '{target}': no module named '{shown}'"
                      f"{_searched(target, recipe_dir)}", key=key,
                      hint="use a dotted path such as 'src.model.MyModel' or "
                           "'launcher.components.modeling.lightning_module.ESPnetLightningModule'")


def _unified_lightning(missing: str, target: str, key: str) -> ConfigError:
    """The code behind a target imports the unified `lightning` package, which is not
    installed: the launcher trains with `pytorch_lightning`, the same API."""
    return ConfigError(
        f"cannot import '{target}': its code imports '{missing}', and the package "
        "'lightning' is not installed (the launcher trains with pytorch_lightning)", key=key,
        hint="import from pytorch_lightning instead (the same classes: `import "
             "pytorch_lightning as L`, `from pytorch_lightning.callbacks import ...`); in the "
             "config, lightning.pytorch.* targets are read as pytorch_lightning.*")


def _shown(name: str, target: str, real: str) -> str:
    """Show the user's `src.` spelling, never the internal package name."""
    if real != target and name.startswith(real.split(".")[0]):
        return "src" + name[len(real.split(".")[0]):]
    return name


def _searched(target: str, recipe_dir: Path | None) -> str:
    if target.startswith(SRC_PREFIX):
        if recipe_dir is None:
            return " ('src.' targets need a recipe folder)"
        return f" (src. was searched in {Path(recipe_dir).resolve() / 'src'})"
    return ""


def _nearby(word: str, candidates: Iterable[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, [c for c in candidates if not c.startswith("_")], 3)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None


def require_subclass(cls: Any, base: type, *, key: str, target: str) -> None:
    """Refuse a class that does not derive from the base the contract needs."""
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise ConfigError(
            f"'{target}' is not a subclass of {base.__module__}.{base.__qualname__}",
            key=key, hint=f"derive your class from {base.__qualname__}")
