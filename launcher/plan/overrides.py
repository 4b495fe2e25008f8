"""The command line's overrides: which keys the launcher adds, which executor, which jobs.

`exp_root=/x` or `cluster=mine` work on any recipe (the keys are added when
a recipe's config does not have them); `hydra/launcher=` chooses the
executor; a sweep's overrides expand to one list per job, in Hydra's order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from launcher.errors import ConfigError
from launcher.identity import override_key

# Keys every recipe has, whether or not its config file spells them out: the
# launcher's own settings and the optional class selections.
LAUNCHER_KEYS = ("exp_root", "seed", "stages", "resume", "snapshot", "search", "lightning_module",
                 "system", "resources", "requeue")
GROUPS = ("cluster", "trainer")  # chosen as `key=option`: the launcher adds the `+`
BACKENDS = ("local", "slurm")


def with_launcher_keys(overrides: Sequence[str]) -> list[str]:
    """`exp_root=/x` or `cluster=mine` work on any recipe: added when missing."""
    out = []
    for o in overrides:
        root = override_key(o).split(".", 1)[0]
        if o.startswith(("+", "~")):
            out.append(o)
        elif root in LAUNCHER_KEYS:
            out.append(f"++{o}")
        elif override_key(o) in GROUPS and "=" in o:  # `cluster=lab`, not `cluster.x=1`
            out.append(f"+{o}")
        else:
            out.append(o)
    return out


def backend_of(overrides: Sequence[str]) -> str:
    """The executor chosen with hydra/launcher=..., local by default."""
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")]
    backend = chosen[-1] if chosen else "local"
    if backend not in BACKENDS:
        raise ConfigError(f"unknown executor '{backend}'", key="hydra/launcher",
                          hint=f"choose one of: {', '.join(BACKENDS)}")
    return backend


def expand_sweep(overrides: Sequence[str]) -> list[list[str]]:
    """The overrides of each job of a grid sweep (`a=1,2 b=x,y` -> 4 jobs), in Hydra's order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(str(exc).strip().splitlines()[0],
                          hint="quote values with spaces or commas: key='a b'") from None
    parsed = [o for o in parsed if not o.is_hydra_override()]
    if not any(_is_search_range(o) for o in parsed):
        from launcher.compat.hydra import grid_jobs

        return grid_jobs(parsed)  # as the sweeper will hand them to the executor
    axes = [_sweep_values(o) if o.is_sweep_override() else [o.input_line] for o in parsed]
    return [list(job) for job in itertools.product(*axes)]


def _is_search_range(override: Any) -> bool:
    from hydra.core.override_parser.types import IntervalSweep

    return isinstance(override.value(), IntervalSweep)


def _sweep_values(override: Any) -> list[str]:
    """A grid axis; for a search range (Optuna's interval) its bounds, enough to check."""
    from hydra.core.override_parser.types import IntervalSweep

    key = override.get_key_element()
    if isinstance(override.value(), IntervalSweep):
        sweep = override.value()
        return [f"{key}={sweep.start}", f"{key}={sweep.end}"]
    return [f"{key}={value}" for value in override.sweep_string_iterator()]


def optimising(overrides: Sequence[str]) -> bool:
    return any(o.startswith("hydra/sweeper=") and "optuna" in o for o in overrides)
