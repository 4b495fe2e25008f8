"""The `hydra.launcher.*` options on `launch`'s command line, judged before anything is
planned (`launcher.executors.options` says which exist and where the others went).

`requeue` belongs to plain Hydra apps: a recipe's jobs always resume, and its own
`requeue:` block says how often they are requeued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from launcher.errors import ConfigError, clipped
from launcher.executors.options import PREFIX, RECIPE_HAS_IT, checked_options, launcher_conf_dir


def launcher_options(overrides: Sequence[str], backend: str) -> dict[str, Any]:
    """The executor's options: its config file's defaults with the overrides applied."""
    from omegaconf import OmegaConf

    defaults = OmegaConf.to_container(OmegaConf.load(launcher_conf_dir() / f"{backend}.yaml"))
    options = {k: v for k, v in defaults.items() if k != "_target_"}
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith(PREFIX):
            options.update(_checked(override, key.removeprefix(PREFIX), backend))
    return options


def _checked(override: str, name: str, backend: str) -> dict[str, Any]:
    where = f"command-line override '{clipped(override)}'"
    if name in RECIPE_HAS_IT or name == "plan_file":
        hint = f"set {RECIPE_HAS_IT[name]}" if name in RECIPE_HAS_IT else "leave it to launch"
        raise ConfigError(f"'{name}' is set by launch for a recipe's jobs",
                          key=f"{PREFIX}{name}", file=where, hint=hint)
    return checked_options(backend, {name: _value(override)}, where)


def _value(override: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        (parsed,) = OverridesParser.create().parse_overrides([override])
    except HydraException as exc:
        raise ConfigError(str(exc).strip().splitlines()[0], file="command line",
                          hint="quote values with spaces or commas: key='a b'") from None
    return parsed.value()
