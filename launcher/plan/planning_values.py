"""A sweep over values: jobs that are the first job's composed config with other values.

Composing from the files costs ~45 ms a job, nearly all of it Hydra's
defaults-list machinery, which a sweep over values does not change. So when
the jobs differ only in plain values of keys that are not config groups, the
first job is composed and each other job is its copy with its own values
applied, as Hydra applies value overrides after composing. A key counts as a
config group when the recipe's conf/ (or the launcher's) has a folder of that
name; the last job is also composed in full and compared, which catches a
group found some other way (one registered in Hydra's ConfigStore).

Even the copy (a deep copy of an OmegaConf config) costs milliseconds, so a
value spelled as a plain number or boolean is read here without Hydra's
parser, the way its grammar reads it, and the copy is made only when a job's
config is asked for. Any other spelling is applied by Hydra, as before.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from launcher.identity import override_key
from launcher.plan.recipe import Recipe, compose, is_config_group

# Numbers and booleans as Hydra's override grammar reads them (OverrideLexer.g4: INT,
# FLOAT, BOOL), without the rarer spellings (`1_000`, `inf`), which Hydra reads.
_UNSIGNED = r"(?:0|[1-9][0-9]*)"
INT = re.compile(rf"[+-]?{_UNSIGNED}")
FLOAT = re.compile(rf"[+-]?(?:(?:{_UNSIGNED}\.|{_UNSIGNED}?\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                   rf"|{_UNSIGNED}[eE][+-]?[0-9]+)")
BOOL = re.compile(r"(?i:true|false)")


class ValueSweep:
    """The jobs of a sweep over values, made from the first job's composed config."""

    def __init__(self, recipe: Recipe, jobs: list[list[str]], varying: list[int],
                 first: Any) -> None:
        self.recipe, self.jobs, self.varying, self.first = recipe, jobs, varying, first
        self.keys = [override_key(jobs[0][i]) for i in varying]  # dotted keys that vary
        simple = _simple_leaves(first, self.keys)
        # Each job's values at `keys`, read without Hydra where that is certain; else None.
        self.values = [_read_values(job, varying, self.keys) if simple else None
                       for job in jobs]
        self.values[0] = None if self.values[0] is None else \
            [_leaf(first, key) for key in self.keys]
        self._parser = None
        # A job whose values need Hydra is made now, so that its errors come before
        # any job is checked, as when every job was composed first.
        self._made = {i: self._copy(i) for i in range(1, len(jobs)) if self.values[i] is None}

    def composed(self, i: int) -> Any:
        """Job `i`'s composed config, exactly as `compose` makes it."""
        if i == 0:
            return self.first
        return self._made[i] if i in self._made else self._copy(i)

    def changes(self, i: int) -> dict[str, Any]:
        """The values job `i` has at the keys that vary, as written (plain data; the
        override's text where the config has none there)."""
        from omegaconf import OmegaConf

        if self.values[i] is not None:
            return dict(zip(self.keys, self.values[i], strict=True))
        plain = OmegaConf.to_container(self.composed(i), resolve=False)
        return {key: _at(plain, key, self.jobs[i][v].split("=", 1)[1])
                for key, v in zip(self.keys, self.varying, strict=True)}

    def _copy(self, i: int) -> Any:
        """The first job's config with job `i`'s values; `compose` names any error."""
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        from launcher.compat.hydra import apply_value_overrides

        job = self.jobs[i]
        if self._parser is None:
            self._parser = OverridesParser.create()
        # The first job already has every key its overrides add: here they are set.
        values = [f"++{job[v].lstrip('+')}" for v in self.varying]
        config = copy.deepcopy(self.first)
        try:
            apply_value_overrides(self._parser.parse_overrides(values), config)
        except (HydraException, OmegaConfBaseException):
            return compose(self.recipe, job)
        return config


def value_sweep(recipe: Recipe, jobs: Sequence[Sequence[str]]) -> ValueSweep | None:
    """The sweep as copies of its first job, when its jobs differ only in plain values;
    None when each job must be composed from the files."""
    jobs = [list(job) for job in jobs]
    varying = [i for i in range(len(jobs[0])) if len({job[i] for job in jobs}) > 1] \
        if len({len(job) for job in jobs}) == 1 else None
    if len(jobs) < 3 or varying is None \
            or not all(_plain_value(recipe, jobs[0][i]) for i in varying):
        return None
    sweep = ValueSweep(recipe, jobs, varying, compose(recipe, jobs[0]))
    if sweep._copy(len(jobs) - 1) != compose(recipe, jobs[-1]):
        return None
    return sweep


def _plain_value(recipe: Recipe, override: str) -> bool:
    """`key=value` (or `+`/`++`) on a key that is not a config group."""
    if "=" not in override or override.startswith("~"):
        return False
    key = override.split("=", 1)[0].lstrip("+")
    if key.startswith("hydra") or "@" in key or "/" in key:
        return False
    return not is_config_group(recipe, key)


def number(text: str) -> int | float | bool | None:
    """An override's value when Hydra reads it as a number or a boolean; else None."""
    if INT.fullmatch(text):
        return int(text)
    if FLOAT.fullmatch(text):
        return float(text)
    if BOOL.fullmatch(text):
        return text.lower() == "true"
    return None


def _read_values(job: Sequence[str], varying: Sequence[int],
                 keys: Sequence[str]) -> list | None:
    if any(override_key(job[i]) != key for i, key in zip(varying, keys, strict=True)):
        return None
    values = [number(job[i].split("=", 1)[1]) for i in varying]
    return None if any(v is None for v in values) else values


def _simple_leaves(config: Any, keys: Sequence[str]) -> bool:
    """Every key is a value of plain type (no schema converts what is set there), reached
    through mappings only, none inside another."""
    from omegaconf import DictConfig
    from omegaconf.nodes import AnyNode

    for key in keys:
        if any(other.startswith(key + ".") for other in keys):
            return False
        node = config
        for part in key.split("."):
            if not isinstance(node, DictConfig) or node._is_interpolation() \
                    or part not in node:
                return False
            node = node._get_node(part)
        if not isinstance(node, AnyNode) or node._is_interpolation():
            return False
    return True


def _leaf(config: Any, key: str) -> Any:
    node = config
    for part in key.split("."):
        node = node._get_node(part)
    return node._value()


def _at(plain: Any, key: str, otherwise: str) -> Any:
    for part in key.split("."):
        if not isinstance(plain, dict) or part not in plain:
            return otherwise
        plain = plain[part]
    return plain
