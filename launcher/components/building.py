"""Build a configured object; a constructor that raises is the user's error, named.

Hydra reports a failing `_target_` call as a multi-line InstantiationException
quoting the internal module name of the recipe's `src/` package. Here it
becomes one line: the config key, the class as the user spelled it, and the
exception's last line. The original exception stays attached (`__cause__`),
so the run's log keeps the full traceback for debugging.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from launcher.errors import ConfigError

RECIPE_PACKAGE = re.compile(r"_recipe_\w*?_[0-9a-f]{8}(?=\.)")


def user_spelling(text: str) -> str:
    """`_recipe_<slug>_<hash>.model.X` back to `src.model.X`."""
    return RECIPE_PACKAGE.sub("src", text)


def build(node: Any, key: str, **arguments: Any) -> Any:
    """`hydra.utils.instantiate(node, **arguments)`, blaming `key` when it fails."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **arguments)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        target = node.get("_target_", "?") if isinstance(node, Mapping) else "?"
        line = last_line(cause)
        raise ConfigError(f"{user_spelling(str(target))}(...) raised {line}", key=key,
                          hint="the full traceback is in the run's log") from cause


def last_line(exc: BaseException) -> str:
    text = user_spelling(str(exc).strip())
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
