"""`search.sampler` and `search.pruner`: a name, or a block with `name` and the
class's own keyword arguments (`{name: hyperband, min_resource: 1}`)."""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Mapping
from typing import Any

from launcher.errors import ConfigError
from launcher.search.space import grid_of
from launcher.search.spec import SearchSpec

SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler",
            "cmaes": "CmaEsSampler", "nsga2": "NSGAIISampler", "qmc": "QMCSampler"}
PRUNERS = {"none": "NopPruner", "median": "MedianPruner", "percentile": "PercentilePruner",
           "successive_halving": "SuccessiveHalvingPruner", "hyperband": "HyperbandPruner",
           "threshold": "ThresholdPruner"}
NEEDS = {"cmaes": "cmaes"}  # samplers with a package of their own


def as_block(value: Any, key: str, default: str) -> dict[str, Any]:
    """`tpe` or `{name: tpe, seed: 0}` as a block with a name."""
    if value is None:
        return {"name": default}
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and isinstance(value.get("name", default), str):
        return {"name": default, **dict(value)}
    raise ConfigError(f"expected a name or a block with 'name', not {value!r}", key=key,
                      hint=f"{key}: {default}, or {key}: {{name: {default}}}")


def check(spec: SearchSpec, space: Mapping[str, Any]) -> None:
    """Build the sampler and pruner once, so a wrong name or argument is refused now."""
    import importlib.util

    sampler, pruner = spec.sampler["name"], spec.pruner["name"]
    for key, name, table in (("search.sampler", sampler, SAMPLERS),
                             ("search.pruner", pruner, PRUNERS)):
        if name not in table:
            raise ConfigError(f"unknown {key.split('.')[1]} '{name}'", key=key,
                              hint=f"choose one of: {', '.join(table)}")
    if sampler in NEEDS and importlib.util.find_spec(NEEDS[sampler]) is None:
        raise ConfigError(f"the {sampler} sampler needs the '{NEEDS[sampler]}' package",
                          key="search.sampler", hint=f"pip install {NEEDS[sampler]}")
    if spec.multi_objective and pruner != "none":
        raise ConfigError("Optuna cannot prune a search with several metrics",
                          key="search.pruner", hint="pruner: none, or search one metric")
    if sampler == "grid":
        points = math.prod(len(values) for values in grid_of(space).values())
        if spec.n_trials > points:
            raise ConfigError(f"the grid has {points} points, fewer than n_trials "
                              f"({spec.n_trials})", key="search.n_trials",
                              hint=f"search.n_trials={points}")
    sampler_of(spec, "", space)
    pruner_of(spec)


def sampler_of(spec: SearchSpec, salt: str, space: Mapping[str, Any] | None = None) -> Any:
    import optuna

    from launcher.search.space import parse_params

    options = {k: v for k, v in spec.sampler.items() if k != "name"}
    name = spec.sampler["name"]
    if options.get("seed") is not None and salt:  # one stream per slot, still repeatable
        digest = hashlib.sha256(f"{options['seed']}:{salt}".encode()).hexdigest()
        options["seed"] = int(digest[:8], 16)
    if name == "grid":
        options["search_space"] = grid_of(space if space is not None
                                          else parse_params(spec.params))
        return _built(_grid_class(), options, "search.sampler")
    return _built(getattr(optuna.samplers, SAMPLERS[name]), options, "search.sampler")


def _grid_class() -> type:
    """Optuna's grid sampler, without its `study.stop()` once the grid is done: that works
    only inside `study.optimize`, and slots stop on their own at `n_trials`."""
    from optuna.samplers import GridSampler

    class Grid(GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    Grid.__name__ = "GridSampler"
    return Grid


def pruner_of(spec: SearchSpec) -> Any:
    import optuna

    options = {k: v for k, v in spec.pruner.items() if k != "name"}
    return _built(getattr(optuna.pruners, PRUNERS[spec.pruner["name"]]), options,
                  "search.pruner")


def _built(cls: type, options: dict[str, Any], key: str) -> Any:
    accepted = inspect.signature(cls).parameters
    unknown = [k for k in options if k not in accepted]
    if unknown:
        known = [k for k in accepted if k not in ("self", "search_space")]
        raise ConfigError(f"{cls.__name__} takes no argument '{unknown[0]}'",
                          key=f"{key}.{unknown[0]}", hint=f"its arguments: {', '.join(known)}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}", key=key) from None
