"""A run's identity: its folder name and its config fingerprint, from canonical values.

A requeued, relaunched or resumed run must find its own folder, so the name
is derived from what defines the run, never from a clock: the overrides
that define it (sorted by key), each with the value the COMPOSED config
holds, written canonically. So `optim.lr=1e-3` and a sweep's
`optim.lr=0.001` name one run; so do `false` and `False`, `1` and `1.0`.
Keys that only choose where or how to run (stages, executor, cluster,
resources, requeue, exp_root) are left out, so a run can be resumed on
another machine or with more GPUs.

The fingerprint hashes the defining part of the composed config: a finished
run is left alone only while it is unchanged (editing the recipe, say more
epochs, continues it instead).

Planning computes both once per job (`launcher.plan.planning`); executors
hand them to the job (`RUN_KEY` in its config, its folder as Hydra's output
directory). Nothing here imports torch or Hydra.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_RUN_NAME = "default"
RUN_KEY = "run_identity"  # the job's config holds its identity under this key
# Keys of where and how a run runs, not of what it computes.
NOT_IDENTITY = ("stages", "exp_root", "resume", "snapshot", "search", "hydra", "cluster",
                "resources", "requeue", "num_nodes", "num_device",
                RUN_KEY, "run_dir", "exp_dir", "recipe_dir")
MAX_SLUG = 80


@dataclass(frozen=True)
class RunIdentity:
    name: str  # the run folder's name
    fingerprint: str  # of the config's defining part


def override_key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~").split("@", 1)[0]


def override_value(value: Any) -> str:
    """A value as a command-line override spells it."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and not re.fullmatch(r"[\w./-]+", value):
        return repr(value)
    if value is None:
        return "null"
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def defines_run(override: str) -> bool:
    root = re.split(r"[./]", override_key(override), maxsplit=1)[0]
    return root not in NOT_IDENTITY


def identity_of(config: Any, overrides: Sequence[str],
                is_group: Callable[[str], bool] = lambda key: False) -> RunIdentity:
    """The identity of the run that `overrides` make of the composed `config`.
    `is_group(key)` says whether a key chooses a config group (its option's name
    is its value then)."""
    return RunIdentity(run_name(config, overrides, is_group), fingerprint(config))


def run_name(config: Any, overrides: Sequence[str],
             is_group: Callable[[str], bool] = lambda key: False) -> str:
    """A readable, filesystem-safe, collision-free folder name."""
    return name_of([defining_value(config, o, is_group) for o in overrides if defines_run(o)])


def name_of(pairs: Sequence[tuple[str, Any]]) -> str:
    """The folder name of a run defined by (key, value) pairs, in the overrides' order."""
    kept = sorted(pairs, key=lambda pair: pair[0])
    if not kept:
        return DEFAULT_RUN_NAME
    text = ",".join(key if value is DELETED else f"{key}={canonical(value)}"
                    for key, value in kept)
    slug = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).lstrip(".")[:MAX_SLUG]
    return f"{slug}-{_digest([[k, str(v) if v is DELETED else v] for k, v in kept], 8)}"


DELETED = "~"  # the value of a `~key` override


def defining_value(config: Any, override: str,
                   is_group: Callable[[str], bool]) -> tuple[str, Any]:
    """(key, value) of an override that defines the run: the composed config's value,
    the option's name for a group, or the text where the config cannot say."""
    key = override_key(override)
    if override.startswith("~") or "=" not in override:
        return f"~{key}", DELETED
    text = override.split("=", 1)[1]
    if is_group(key) or "/" in key:
        return key, text
    found, value = _value_at(config, key)
    return key, value if found else text


def _value_at(config: Any, key: str) -> tuple[bool, Any]:
    """The composed value at a dotted key, as plain data; (False, None) where it is not
    there or cannot be resolved here."""
    node = config
    try:
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, Sequence) and part.isdigit() \
                else node[part]
        from omegaconf import OmegaConf

        if OmegaConf.is_config(node):
            node = OmegaConf.to_container(node, resolve=True)
    except Exception:  # a key only a job resolves (${hydra:...}): its text is the value
        return False, None
    return True, node


def canonical(value: Any) -> str:
    """One spelling per value: `0.001` for `1e-3`, `1` for `1.0`, `false` for `False`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return str(value)


def fingerprint(config: Any) -> str:
    """A hash of what defines a run's result (not where or how it runs), over canonical
    values: `0` and `0.0` are one config."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(config, resolve=False) if OmegaConf.is_config(config) \
        else dict(config)
    return _digest(_kept(plain), 16)


class Fingerprints:
    """`fingerprint` of configs that are one plain config with other values at a few
    dotted keys (the jobs of a sweep over values). The hashed text is written once,
    with a mark where each value goes, and each config's values are written into it:
    the same text `fingerprint` hashes, as a value's text does not depend on where it
    is, and sorting goes by the keys, which stay."""

    def __init__(self, plain: Mapping, keys: Sequence[str]) -> None:
        self.plain, self.keys = plain, list(keys)
        marks = {key: f"\0{i}\0" for i, key in enumerate(self.keys)}
        text = _text(_kept(with_values(plain, marks)))
        spelled = [json.dumps(mark) for mark in marks.values()]
        found = sorted((text.find(m), i) for i, m in enumerate(spelled) if m in text)
        # Each hashed value has one mark (a key left out of the hash, none).
        self.usable = all(text.count(m) == (_root(k) not in NOT_IDENTITY)
                          for k, m in zip(self.keys, spelled, strict=True))
        self.order, self.parts, start = [i for _, i in found], [], 0
        for at, i in found:
            self.parts.append(text[start:at])
            start = at + len(spelled[i])
        self.parts.append(text[start:])

    def __call__(self, values: Sequence[Any]) -> str:
        if not self.usable:
            return fingerprint(with_values(self.plain, dict(zip(self.keys, values,
                                                                strict=True))))
        pieces = [self.parts[0]]
        for i, part in zip(self.order, self.parts[1:], strict=True):
            pieces += [_text(values[i]), part]
        return hashlib.sha1("".join(pieces).encode()).hexdigest()[:16]


def with_values(plain: Mapping, values: Mapping[str, Any]) -> dict:
    """A copy of a plain config with the values at dotted keys set (the blocks on the way
    copied, the rest shared)."""
    out = dict(plain)
    for key, value in values.items():
        node, *path, last = [out, *key.split(".")]
        for part in path:
            node[part] = dict(node[part])
            node = node[part]
        node[last] = value
    return out


def _root(key: str) -> str:
    return re.split(r"[./]", key, maxsplit=1)[0]


def _kept(plain: Mapping) -> dict:
    return {k: v for k, v in plain.items() if k not in NOT_IDENTITY}


def normalized(value: Any) -> Any:
    """Plain data with one representation per value: integral floats as ints."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): normalized(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [normalized(v) for v in value]
    return value


def _digest(value: Any, length: int) -> str:
    return hashlib.sha1(_text(value).encode()).hexdigest()[:length]


def _text(value: Any) -> str:
    return json.dumps(normalized(value), sort_keys=True, default=str)


def origin(key: str | None, overrides: Sequence[str], config_file: Path) -> str:
    """Where a key's value came from: a command-line override (of the key, a block
    above it, or else one inside its block) or the config file."""
    from launcher.errors import clipped

    if key:
        dotted = re.sub(r"\[(\d+)\]", r".\1", key)  # optims[0].lr, as Hydra spells it
        keys = [override_key(o) for o in overrides]
        for override, k in zip(overrides, keys, strict=True):
            if dotted == k or dotted.startswith((k + ".", k + "/")):
                return f"command-line override '{clipped(override.removeprefix('++'))}'"
        for override, k in zip(overrides, keys, strict=True):
            if k.startswith(dotted + "."):
                return f"{config_file} (and command-line override " \
                       f"'{clipped(override.removeprefix('++'))}')"
    return str(config_file)
