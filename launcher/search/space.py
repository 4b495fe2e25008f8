"""A search space in Hydra's sweep spellings, as Optuna distributions.

The spellings are hydra-optuna-sweeper's, so a search moves over unchanged:
`choice(a, b)` or `a,b` is categorical, `range(1, 9, 2)` is categorical over
its values, `interval(lo, hi)` is uniform, `tag(log, interval(lo, hi))` is
log-uniform, and the `int` tag makes an interval integer-valued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launcher.errors import ConfigError

SPELLINGS = "choice(a,b), range(1,9,2), interval(lo,hi) or tag(log,interval(lo,hi))"
CATEGORY_TYPES = (type(None), bool, int, float, str)


def parse_params(params: Mapping[str, str], where: str = "search.params") -> dict[str, Any]:
    """Each key's range as an Optuna distribution; a key that is not a range is refused.
    A key written `+key` (one the config lacks, added) is the key without its `+`."""
    return {key.lstrip("+"): distribution(key.lstrip("+"), text, f"{where}.{key.lstrip('+')}")
            for key, text in params.items()}


def is_range(override: str) -> bool:
    """Whether a command-line override spells a sweep (then, in a search, a range)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except HydraException:
        return False


def distribution(key: str, text: str, config_key: str) -> Any:
    """One parameter's distribution, from its sweep spelling."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_override(f"{key}={text}")
    except HydraException as exc:
        raise ConfigError(f"'{text}' is not a sweep spelling: "
                          f"{str(exc).strip().splitlines()[0]}", key=config_key,
                          hint=f"write {SPELLINGS}") from None
    if not override.is_sweep_override():
        raise ConfigError(f"'{text}' is one value, not a range to search", key=config_key,
                          hint=f"write {SPELLINGS}, or set {key}={text} as a plain override")
    if override.is_interval_sweep():
        return _interval(override.value(), config_key)
    values = list(override.sweep_iterator())
    odd = [v for v in values if not isinstance(v, CATEGORY_TYPES)]
    if odd:
        raise ConfigError(f"choice {odd[0]!r} is not a number, a string, a boolean or null",
                          key=config_key, hint="search over names of config values instead")
    from optuna.distributions import CategoricalDistribution

    return CategoricalDistribution(values)


def _interval(sweep: Any, config_key: str) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    log, whole = "log" in sweep.tags, "int" in sweep.tags
    low, high = sweep.start, sweep.end
    if not low < high:
        raise ConfigError(f"interval({low}, {high}) is empty", key=config_key,
                          hint="give the lower bound first")
    if log and low <= 0:
        raise ConfigError(f"a log interval must start above 0, not at {low}", key=config_key,
                          hint="tag(log, interval(0.0001, 0.1))")
    if whole:
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def bounds(distribution: Any) -> tuple[Any, Any]:
    """The two ends of a range: what planning composes and checks."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[0], distribution.choices[-1]
    return distribution.low, distribution.high


def grid_of(space: Mapping[str, Any]) -> dict[str, list]:
    """The grid sampler's table: every parameter must be a choice or a range."""
    from optuna.distributions import CategoricalDistribution

    for key, dist in space.items():
        if not isinstance(dist, CategoricalDistribution):
            raise ConfigError("the grid sampler needs a list of values, not an interval",
                              key=f"search.params.{key}",
                              hint="write choice(...) or range(...), or use sampler: tpe")
    return {key: list(dist.choices) for key, dist in space.items()}


def params_text(params: Mapping[str, Any]) -> str:
    """A trial's parameters as command-line overrides."""
    from launcher.identity import override_value

    return " ".join(f"{k}={override_value(v)}" for k, v in params.items())
