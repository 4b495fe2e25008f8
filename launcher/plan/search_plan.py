"""Plan a search: the `search` block (in the recipe's config or on the command line)
and the command line's ranges become a `SearchSpec`, checked before anything is
queued, and the launch becomes `slots` jobs that pull trials from the study.

    search:
      n_trials: 16
      slots: 4
      params: {optim.lr: "tag(log, interval(1e-4, 1e-1))", model.hidden: "choice(32, 64)"}

or on the command line: `search.n_trials=16 'optim.lr=tag(log,interval(1e-4,1e-1))'`.
Every trial is checked as a run would be, at the ends of each range.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError
from launcher.identity import NOT_IDENTITY, defines_run, origin, override_key
from launcher.plan.recipe import Recipe, compose, is_config_group
from launcher.search.spec import SLOTS_DIR, SearchSpec

KEYS = ("n_trials", "slots", "metric", "direction", "sampler", "pruner", "params", "study",
        "dir", "grace_s", "slot")
DIRECTIONS = ("minimize", "maximize")
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class SearchLaunch:
    spec: SearchSpec
    space: dict[str, Any]  # each parameter's Optuna distribution
    slot_overrides: list[str]  # the launch's overrides, one job per slot

    def slots_in(self, planned: Sequence[Any], sweep_dir: Path) -> list[Any]:
        """The slot jobs, each with its folder in the sweep folder."""
        return [replace(job, run_dir=sweep_dir / SLOTS_DIR / str(k))
                for k, job in enumerate(planned)]

    def described(self) -> str:
        spec = self.spec
        params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
        goal = ", ".join(f"{d} {m}" for m, d in zip(spec.metrics, spec.directions, strict=True))
        return (f"search: study '{spec.study}' in {spec.dir}: {spec.n_trials} trials, "
                f"{spec.slots} at a time, {goal}; sampler {spec.sampler['name']}, pruner "
                f"{spec.pruner['name']}; over {params}")


def search_of(recipe: Recipe, overrides: Sequence[str]) -> SearchLaunch | None:
    """The search this launch asks for; None for a plain launch or grid sweep."""
    from launcher.search.space import is_range

    if not _may_search(recipe, overrides):
        return None
    ranges = [o for o in overrides if not o.startswith("hydra") and is_range(o)]
    rest = [o for o in overrides if o not in ranges]
    task = [o for o in rest if not o.startswith("hydra")]
    config = compose(recipe, task)
    block = _plain(config.get("search"))
    if block is None or block.get("n_trials") is None:
        if block is not None:
            raise _located(ConfigError("a search needs its number of trials",
                                       key="search.n_trials", hint="search.n_trials=16"),
                           recipe, overrides)
        return None
    try:
        spec, space = _spec(recipe, config, block, ranges, task)
    except ConfigError as exc:
        raise _located(exc, recipe, overrides) from None
    slots = ",".join(str(k) for k in range(spec.slots))
    return SearchLaunch(spec, space, [*rest, f"++search.slot={slots}"])


def check_trials(recipe: Recipe, launch: SearchLaunch, planned: Sequence[Any]) -> None:
    """Each parameter is a key of the config, not a group or a launcher setting, and a
    trial at either end of every range passes the checks every run passes."""
    from launcher.identity import override_value
    from launcher.plan.planning import plan, resources_of
    from launcher.search.space import bounds

    space = launch.space
    for key in space:
        root = re.split(r"[./]", key, maxsplit=1)[0]
        if root in (*NOT_IDENTITY, "search") or is_config_group(recipe, key):
            raise ConfigError("a search varies values of the run, not a config group or a "
                              "launcher setting", key=f"search.params.{key}",
                              hint="search over the values inside it (e.g. model.hidden)")
    if resources_of(planned[0]).world_size != 1:
        raise ConfigError("a search runs each trial in one process", key="resources",
                          hint="give each trial one device, and more slots instead")
    added = _added_keys(launch.spec)
    for end in (0, 1):
        values = [f"{'++' if k in added else ''}{k}={override_value(bounds(d)[end])}"
                  for k, d in space.items()]
        plan(recipe, [*launch.spec.overrides, *values], False)


def _spec(recipe: Recipe, config: Any, block: Mapping, ranges: Sequence[str],
          task: Sequence[str]) -> tuple[SearchSpec, dict[str, Any]]:
    from launcher.layout import exp_root
    from launcher.plan.safety import check_path
    from launcher.search import samplers
    from launcher.search.space import parse_params

    unknown = sorted(set(block) - set(KEYS) - {"slot"})
    if unknown:
        raise ConfigError(f"unknown search setting '{unknown[0]}'", key=f"search.{unknown[0]}",
                          hint=f"the settings: {', '.join(k for k in KEYS if k != 'slot')}")
    params = {**_flat(block.get("params") or {}, "search.params"),
              **{o.split("=", 1)[0].lstrip("~"): o.split("=", 1)[1] for o in ranges}}
    if not params:
        raise ConfigError("a search needs parameters to search", key="search.params",
                          hint="add ranges: 'optim.lr=tag(log,interval(1e-4,1e-1))'")
    space = parse_params(params)
    n_trials = _count(block, "n_trials", None)
    metrics, directions = _goal(config, block)
    overrides = [o for o in task if override_key(o).split(".")[0] != "search"]
    study = block.get("study") or _study_name(recipe, overrides, params, metrics, directions)
    if not isinstance(study, str) or not STUDY_NAME.fullmatch(study):
        raise ConfigError(f"{study!r} is not a study name", key="search.study",
                          hint="letters, digits, '.', '_' and '-', up to 100")
    folder = Path(str(block.get("dir") or exp_root(recipe.dir, config.get("exp_root"))
                      / "searches" / study))
    folder = folder if folder.is_absolute() else recipe.dir.resolve() / folder
    check_path(folder, "search.dir")
    grace = block.get("grace_s", 120)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace <= 0:
        raise ConfigError(f"grace_s must be a number of seconds above 0, not {grace!r}",
                          key="search.grace_s")
    spec = SearchSpec(
        study=study, dir=str(folder), n_trials=n_trials,
        slots=_count(block, "slots", min(n_trials, 4)), metrics=metrics,
        directions=directions, params=params, overrides=overrides,
        sampler=samplers.as_block(block.get("sampler"), "search.sampler", "tpe"),
        pruner=samplers.as_block(block.get("pruner"), "search.pruner", "none"),
        grace_s=float(grace), recipe=str(recipe.dir), config_name=recipe.config_name)
    samplers.check(spec, space)
    return spec, space


def _added_keys(spec: SearchSpec) -> set[str]:
    """Parameters written `+key` (a key the config does not have): checked as added."""
    return {k.lstrip("+") for k in spec.params if k.startswith("+")}


def _count(block: Mapping, key: str, default: int | None) -> int:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a whole number of at least 1, not {value!r}",
                          key=f"search.{key}")
    return value


def _goal(config: Any, block: Mapping) -> tuple[list[str], list[str]]:
    """The metrics and directions: the config's first best_model_criterion by default."""
    from launcher.components.callbacks.criteria import parse_criteria

    criteria = _plain(config.get("best_model_criterion"))
    tracked = parse_criteria(criteria)[0] if criteria else ("valid/loss", 3, "min")
    metric = block.get("metric") or tracked[0]
    metrics = [metric] if isinstance(metric, str) else metric
    direction = block.get("direction") or \
        ("maximize" if metrics == [tracked[0]] and tracked[2] == "max" else "minimize")
    directions = [direction] * len(metrics) if isinstance(direction, str) else direction
    if not isinstance(metrics, list) or not all(isinstance(m, str) and m for m in metrics):
        raise ConfigError(f"metric must be a metric's name or a list of them, not {metric!r}",
                          key="search.metric")
    if not isinstance(directions, list) or len(directions) != len(metrics) or \
            any(d not in DIRECTIONS for d in directions):
        raise ConfigError(f"direction must be minimize or maximize, one per metric, not "
                          f"{direction!r}", key="search.direction")
    return metrics, directions


def _study_name(recipe: Recipe, overrides: Sequence[str], params: Mapping[str, str],
                metrics: list[str], directions: list[str]) -> str:
    """The same search (recipe, config, run-defining overrides, space, goal) gets the
    same study again, so launching it again continues it."""
    defining = sorted(o.removeprefix("++") for o in overrides if defines_run(o))
    what = json.dumps([str(recipe.dir.resolve()), recipe.config_name, defining,
                       sorted(params.items()), metrics, directions])
    return f"{recipe.config_name}-{hashlib.sha256(what.encode()).hexdigest()[:10]}"


def _may_search(recipe: Recipe, overrides: Sequence[str]) -> bool:
    """Without a `search` key on the command line or in a config file, no compose needed."""
    if any(override_key(o).split(".")[0] == "search" for o in overrides):
        return True
    return any(re.search(r"^search\s*:", path.read_text(errors="replace"), re.M)
               for path in recipe.conf_dir.rglob("*.yaml"))


def _flat(params: Any, where: str) -> dict[str, str]:
    if not isinstance(params, Mapping):
        raise ConfigError(f"expected a block of key: range, not {params!r}", key=where,
                          hint="params: {optim.lr: 'interval(0.001, 0.1)'}")
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in _flat(value, f"{where}.{key}").items()})
        else:
            flat[str(key)] = str(value)
    return flat


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _located(exc: ConfigError, recipe: Recipe, overrides: Sequence[str]) -> ConfigError:
    return exc.located(origin(exc.key, list(overrides), recipe.config_file))
