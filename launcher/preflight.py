"""Check a composed config before anything is written or queued.

Every class the run will build is imported and checked against its contract,
every `_target_` in the config must import, the stages must exist and, with
several optimizers, the model is built once to check that its parameters are
split cleanly. Errors name the key and the file it came from. A pass of the
checks that import is remembered for the job's shape (`launcher.check_cache`):
the jobs of a sweep over values, and later launches of an unchanged recipe,
skip importing torch and Lightning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError, clipped
from launcher.recipe import Recipe
from launcher.rundir import override_key


def job_config(config: Any, recipe_dir: Path, run_dir: Path, translate: bool = True) -> Any:
    """A copy of the composed config as a job uses it: run and recipe folders set,
    device counts from the resources, the cluster's callbacks added, and `src.`
    targets pointing at the recipe's own package (unless `translate` is off)."""
    from omegaconf import OmegaConf

    from launcher.resolve import translate_all_targets

    plain = OmegaConf.to_container(config, resolve=False)
    if translate:
        plain = translate_all_targets(plain, recipe_dir)
    plain["run_dir"] = str(run_dir)
    plain["recipe_dir"] = str(recipe_dir)
    plain.setdefault("stages", ["train"])
    job = OmegaConf.create(plain)
    if job.get("trainer") is not None:
        job["trainer"] = _trainer_for_resources(job)
    return job


def _trainer_for_resources(job: Any) -> dict:
    from omegaconf import OmegaConf

    from launcher.resources import ClusterProfile, Resources, reconcile_trainer

    resources = Resources.from_config(_plain(job.get("resources")))
    cluster = ClusterProfile.from_config(_plain(job.get("cluster")))
    trainer = reconcile_trainer(OmegaConf.to_container(job["trainer"], resolve=True), resources)
    if cluster.callbacks:
        trainer["callbacks"] = [*(trainer.get("callbacks") or []), *cluster.callbacks]
    return trainer


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def check(config: Any, recipe: Recipe, run_dir: Path, overrides: Sequence[str]) -> Any:
    """Validate; return the job config. Raises ConfigError naming key and file."""
    try:
        return _check(config, recipe, run_dir)
    except ConfigError as exc:
        raise exc.located(origin(exc.key, overrides, recipe.config_file)) from None


def origin(key: str | None, overrides: Sequence[str], config_file: Path) -> str:
    """Where a key's value came from: a command-line override (of the key, a block
    above it, or else one inside its block) or the config file."""
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


def _check(config: Any, recipe: Recipe, run_dir: Path) -> Any:
    from launcher import check_cache
    from launcher.components import check_required_keys
    from launcher.config_checks import check_settings

    check_required_keys(config)
    check_settings(config)
    job = job_config(config, recipe.dir, run_dir)
    key = check_cache.key_of(job, recipe.dir)
    if not check_cache.passed(key):
        checked = _check_imports(job_config(config, recipe.dir, run_dir, translate=False),
                                 recipe.dir)
        if job.get("optims") is not None:
            _check_parameter_groups(job)
        check_cache.remember(key, checked)
    return job


def _check_imports(job: Any, recipe_dir: Path) -> list:
    """The checks that import the configured classes; returns what they imported."""
    from launcher.components import COMPONENTS, component_class
    from launcher.job_arguments import check_arguments
    from launcher.optim import check_manual_trainer_options

    classes = {name: component_class(job, name, recipe_dir) for name in COMPONENTS}
    trainer_options = {k: v for k, v in job["trainer"].items() if k != "_target_"}
    classes["trainer"].check_options(trainer_options)
    check_manual_trainer_options(job)
    classes["system"].check_stages(job.get("stages"))
    classes["system"].check_config(job, recipe_dir)
    check_arguments(job, recipe_dir)
    return [*classes.values(), *_check_all_targets(job, recipe_dir),
            *_check_collate_fn(job, recipe_dir)]


def _check_all_targets(job: Any, recipe_dir: Path) -> list:
    from launcher.resolve import keys_named, locate

    return [locate(target, key=here, recipe_dir=recipe_dir)
            for here, target in keys_named(job, ("_target_",))]


def _check_collate_fn(job: Any, recipe_dir: Path) -> list:
    from launcher.resolve import locate

    block = job.get("dataloader") or {}
    located = []
    for key, node in [("dataloader", block)] + [(f"dataloader.{s}", block.get(s) or {})
                                                 for s in ("train", "valid", "test")]:
        if isinstance(node, Mapping) and isinstance(node.get("collate_fn"), str):
            located.append(locate(node["collate_fn"], key=f"{key}.collate_fn",
                                  recipe_dir=recipe_dir))
    return located


def _check_parameter_groups(job: Any) -> None:
    from launcher.building import build
    from launcher.optim import assign_parameters

    assign_parameters(build(job["model"], "model"), list(job["optims"]))
