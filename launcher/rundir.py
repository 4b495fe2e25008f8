"""Deterministic run directories: the same overrides always name the same folder.

A requeued, relaunched or resumed run must find its own checkpoints, so the
folder is derived from the overrides that define the run (sorted, so their
order does not matter) and never from a clock. Overrides that only choose
where or how to run (stages, executor, cluster, resources, exp_root) are
left out, so a run can be resumed on another machine or with more GPUs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_EXP_ROOT = "exp"
DEFAULT_RUN_NAME = "default"
NOT_IDENTITY = ("stages", "exp_root", "resume", "hydra", "cluster", "resources")
MAX_SLUG = 80


def override_key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~").split("@", 1)[0]


def defines_run(override: str) -> bool:
    root = re.split(r"[./]", override_key(override), maxsplit=1)[0]
    return root not in NOT_IDENTITY


def run_name(overrides: Sequence[str]) -> str:
    """A readable, filesystem-safe, collision-free folder name for these overrides."""
    kept = sorted(o.lstrip("+") for o in overrides if defines_run(o))
    if not kept:
        return DEFAULT_RUN_NAME
    text = ",".join(kept)
    slug = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).lstrip(".")[:MAX_SLUG]
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def config_fingerprint(config: Any) -> str:
    """A hash of what defines a run's result (not where or how it runs).

    A finished run is only left alone when its config is unchanged: editing
    the recipe (say, more epochs) continues it instead.
    """
    import json

    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(config, resolve=False)
    kept = {k: v for k, v in plain.items()
            if k not in NOT_IDENTITY and k not in ("run_dir", "recipe_dir")}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def exp_root(recipe_dir: Path, configured: Any) -> Path:
    root = Path(str(configured)) if configured else Path(DEFAULT_EXP_ROOT)
    return root if root.is_absolute() else Path(recipe_dir).resolve() / root


def run_dir(recipe_dir: Path, configured_root: Any, overrides: Sequence[str]) -> Path:
    return exp_root(recipe_dir, configured_root) / run_name(overrides)


def recipe_dir_of(config_sources: Sequence[Mapping]) -> Path:
    """The recipe folder: the parent of the primary config folder Hydra loaded."""
    for source in config_sources:
        if source.get("provider") == "main" and source.get("schema") == "file":
            return Path(source["path"]).parent
    raise RuntimeError("the primary config was not loaded from a folder")


def _run_dir_resolver(*, _root_: Any) -> str:
    hydra = _root_.hydra
    recipe = recipe_dir_of(hydra.runtime.config_sources)
    return str(run_dir(recipe, _root_.get("exp_root"), list(hydra.overrides.task)))


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    from launcher.ranks import log_name

    if not OmegaConf.has_resolver("launcher.run_dir"):
        OmegaConf.register_new_resolver("launcher.run_dir", _run_dir_resolver)
        OmegaConf.register_new_resolver("launcher.log_name", log_name)


def quote(value: str) -> str:
    """A Hydra override value that is taken literally."""
    if any(c in value for c in ("'", "\\", "${")):
        from launcher.errors import ConfigError

        raise ConfigError(f"the path {value!r} contains a quote, a backslash or '${{'",
                          key="exp_root", hint="choose a plainer exp_root")
    return f"'{value}'"


def hydra_overrides(sweep_dir: Path) -> list[str]:
    """Where Hydra puts runs, sweeps and logs: decided here, not by Hydra's defaults."""
    from launcher.recipe import SHARED_CONFIGS

    return [
        "hydra.run.dir=${launcher.run_dir:}",
        f"hydra.sweep.dir={quote(str(sweep_dir))}",
        "hydra.sweep.subdir=${launcher.run_dir:}",
        "hydra.job.name=run",
        "hydra.job_logging.handlers.file.filename="
        "${hydra.runtime.output_dir}/${launcher.log_name:}",
        SHARED_CONFIGS,
    ]


def new_sweep_dir(recipe_dir: Path, configured_root: Any) -> Path:
    """A fresh folder for one launch's bookkeeping (jobs.json, scheduler logs)."""
    import time

    base = exp_root(recipe_dir, configured_root) / "sweeps"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = base / stamp, 1
    while candidate.exists():
        candidate, n = base / f"{stamp}-{n}", n + 1
    return candidate
