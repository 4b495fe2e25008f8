"""Checks of a composed config that need no recipe code: they run on every job.

Interpolations that point nowhere, and the launcher's own settings
(`resources`, `requeue`, `cluster`, `best_model_criterion`) are judged here,
before a job is planned, so that a mistake in them is one line naming the
key instead of a traceback from deep inside a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError

# Resolvers that only have a value inside a running job.
JOB_TIME_RESOLVERS = ("${hydra:", "${launcher.")


def check_settings(config: Any, recipe_dir: Path | None = None) -> None:
    from launcher.components.callbacks.criteria import parse_criteria
    from launcher.resources import ClusterProfile, Resources
    from launcher.signals import RequeuePolicy

    check_interpolations(config, recipe_dir)
    Resources.from_config(_plain(config, "resources"))
    ClusterProfile.from_config(_plain(config, "cluster"))
    RequeuePolicy.from_config(_plain(config, "requeue"))
    parse_criteria(_plain(config, "best_model_criterion"))


def _plain(config: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    node = config.get(key)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


# Failures of ESPnet3's `${load_yaml:...}` (launcher.job.espnet3_resolvers) whose own
# message says it all.
SELF_EXPLAINED = ("FileNotFoundError", "NotInFile")
# Keys the launcher sets in every job's config, which interpolations may use.
JOB_KEYS = ("run_dir", "exp_dir", "recipe_dir")


def job_time_as_text(node: Any) -> Any:
    """A plain config whose job-time interpolations (`${hydra:...}`) are escaped, so that
    resolving the rest shows them as written instead of failing."""
    from launcher.job.config import replaced_in_strings

    for prefix in JOB_TIME_RESOLVERS:
        node = replaced_in_strings(node, prefix, "\\" + prefix)
    return node


def check_interpolations(config: Any, recipe_dir: Path | None = None) -> None:
    """Every `${...}` resolves, except those only a running job can resolve. The keys
    the job sets stand for themselves (`recipe_dir` is itself when given, so that
    `${load_line:${recipe_dir}/tokens.txt}` reads the file the job will read). One that
    leads to a job-time value (`${paths.output_dir}/ckpts` with `output_dir:
    ${hydra:runtime.output_dir}`) resolves to it as written."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    probe = OmegaConf.create(job_time_as_text(OmegaConf.to_container(config, resolve=False)))
    for key in JOB_KEYS:  # the job sets them, whatever the config said
        probe[key] = f"<{key}>"
    if recipe_dir is not None:
        probe["recipe_dir"] = str(recipe_dir)
    for key, parent, name, text in _interpolations(probe):
        if any(text.lstrip().startswith(p) for p in JOB_TIME_RESOLVERS):
            continue
        try:
            parent[name]
        except OmegaConfBaseException as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            for name in SELF_EXPLAINED:
                reason = reason.removeprefix(f"{name} raised while resolving interpolation: ")
            raise ConfigError(f"the interpolation {text!r} cannot be resolved: {reason}",
                              key=key, hint=_hint(reason)) from None


def _hint(reason: str) -> str:
    if reason.startswith("no file "):  # launcher.job.espnet3_resolvers.found
        return ("check the file's path: a relative one is looked up in the recipe's conf/ "
                "folder, then in the recipe folder")
    if reason.startswith("no key "):
        return "check the dotted key after the comma: ${load_yaml:file.yaml,a.b}"
    if "not found" in reason or "missing" in reason.lower():
        return "point it at a key that exists, e.g. ${model.hidden}, or set that key"
    if "Unsupported interpolation type" in reason:
        return "check the resolver's name, e.g. ${oc.env:HOME}"
    return "check the ${...} expression"


def _interpolations(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any, str]]:
    """(key path, parent node, key, text) of every interpolation, at any depth."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig):
        items = [(k, f"{path}.{k}" if path else str(k)) for k in node]
    elif isinstance(node, ListConfig):
        items = [(i, f"{path}[{i}]") for i in range(len(node))]
    else:
        return
    for name, here in items:
        child = node._get_node(name)
        if OmegaConf.is_interpolation(node, name):
            yield here, node, name, str(child._value())
        elif isinstance(child, DictConfig | ListConfig):
            yield from _interpolations(child, here)
