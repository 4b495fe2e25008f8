"""Check a composed config before anything is written or queued.

Every class the run will build is imported and checked against its contract,
every `_target_` in the config must import, the stages must exist and, with
several optimizers, the model is built once to check that its parameters are
split cleanly. Errors name the key and the file it came from. A pass of the
checks that import is remembered for the job's shape (`launcher.plan.check_cache`):
the jobs of a sweep over values, and later launches of an unchanged recipe,
skip importing torch and Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.components.modeling.optimizer_config import named_optimizers
from launcher.errors import ConfigError
from launcher.identity import origin
from launcher.job.config import job_config
from launcher.plan.check_cache import CheckCache
from launcher.plan.recipe import Recipe
from launcher.plan.stage_needs import (
    check_statistics,
    check_test_data,
    check_train_data,
    is_lightning_module,
    trains,
)


def check(config: Any, recipe: Recipe, run_dir: Path, overrides: Sequence[str],
          cache: CheckCache) -> Any:
    """Validate; return the job config. Raises ConfigError naming key and file. Passes
    of the checks that import are remembered in `cache`."""
    try:
        return _check(config, recipe, run_dir, cache)
    except ConfigError as exc:
        raise exc.located(origin(exc.key, overrides, recipe.config_file)) from None


def _check(config: Any, recipe: Recipe, run_dir: Path, cache: CheckCache) -> Any:
    from launcher.components.selection import check_required_keys
    from launcher.plan.check_cache import key_of
    from launcher.plan.devices import check_process_group
    from launcher.plan.settings import check_settings

    check_required_keys(config)
    check_settings(config, recipe.dir)
    job = job_config(config, recipe.dir, run_dir)
    check_process_group(job)
    key = key_of(job, recipe.dir)
    if not cache.passed(key):
        checked = _check_imports(job_config(config, recipe.dir, run_dir, translate=False),
                                 recipe.dir, config)
        if named_optimizers(job):
            _check_parameter_groups(job)
        cache.remember(key, checked)
    check_statistics(job, recipe.dir)  # reads the files: never remembered
    return job


def _check_imports(job: Any, recipe_dir: Path, composed: Any = None) -> list:
    """The checks that import the configured classes; returns what they imported.
    `composed`: the config before the job's changes (its interpolations are still there:
    the Trainer block is resolved in the job)."""
    from launcher.components.data.checks import check_data
    from launcher.components.modeling.optimization_spec import check_manual_trainer_options
    from launcher.components.selection import COMPONENTS
    from launcher.plan.calls import check_arguments
    from launcher.plan.config_keys import check_top_level_keys

    classes = {name: checked_class(job, name, recipe_dir) for name in COMPONENTS}
    trainer_options = {k: v for k, v in job["trainer"].items() if k != "_target_"}
    classes["trainer"].check_options(trainer_options)
    check_manual_trainer_options(job)
    classes["system"].check_stages(job.get("stages"))
    classes["system"].check_config(job, recipe_dir)
    check_top_level_keys(job, classes.values(), composed)
    _check_optimizers(job, classes)
    check_train_data(job, classes)
    check_test_data(job, classes)
    check_arguments(check_data(job), recipe_dir)
    return [*classes.values(), *_check_all_targets(job, recipe_dir),
            *_check_collate_fn(job, recipe_dir)]


def _check_optimizers(job: Any, classes: dict[str, type]) -> None:
    """The optimizers as the config states them (either spelling, not both), when the
    shared `configure_optimizers` reads them for training: a missing one is found now,
    not at fit. A model that is itself a LightningModule brings its own."""
    from launcher.components.modeling.lightning_module import ESPnetLightningModule
    from launcher.components.modeling.optimizer_config import optimizer_entries

    reads_config = getattr(classes["lightning_module"], "configure_optimizers", None) is \
        ESPnetLightningModule.configure_optimizers and not is_lightning_module(classes["model"])
    given = any(job.get(k) is not None for k in ("optim", "optimizer", "optims", "optimizers"))
    if given or (reads_config and trains(job, classes["system"])):
        optimizer_entries(job)


def _check_all_targets(job: Any, recipe_dir: Path) -> list:
    """Every `_target_` imports. Found in the config as written: resolving the rest of it
    would run `${hydra:...}` interpolations, which only a running job can answer."""
    from omegaconf import OmegaConf

    from launcher.components.targets import keys_named, locate

    plain = OmegaConf.to_container(job, resolve=False)
    return [locate(OmegaConf.select(job, here) if "${" in str(target) else target,
                   key=here, recipe_dir=recipe_dir)
            for here, target in keys_named(plain, ("_target_",))]


def _check_collate_fn(job: Any, recipe_dir: Path) -> list:
    from launcher.components.targets import locate

    block = job.get("dataloader") or {}
    located = []
    for key, node in [("dataloader", block)] + [(f"dataloader.{s}", block.get(s) or {})
                                                 for s in ("train", "valid", "test")]:
        if isinstance(node, Mapping) and isinstance(node.get("collate_fn"), str):
            located.append(locate(node["collate_fn"], key=f"{key}.collate_fn",
                                  recipe_dir=recipe_dir))
    return located


def _check_parameter_groups(job: Any) -> None:
    from launcher.components.modeling.optimization_spec import assign_parameters
    from launcher.components.modeling.optimizer_config import optimizer_entries
    from launcher.systems.base.training import instantiate_model

    assign_parameters(instantiate_model(job), optimizer_entries(job))


def checked_class(config: Any, name: str, recipe_dir: Path | None) -> type:
    """The class selected for component `name`, its constructor judged too: the model's
    against the model block, the others' against the arguments the launcher passes.
    With `task:`, the model's is the task class, whose `build_model` takes the block
    (ESPnet2's model arguments, judged by ESPnet when it builds the model)."""
    from launcher.components.selection import COMPONENTS, component_class, target_of
    from launcher.plan.arguments import check_block, require_contract
    from launcher.systems.base.training import task_class

    if name == "model" and config.get("task"):
        return task_class(config["task"], recipe_dir)
    cls = component_class(config, name, recipe_dir)
    key, target = f"{name}._target_", target_of(config, name)
    if name == "model":
        check_block(cls, config[name], key=name, target=target)
    else:
        require_contract(cls, COMPONENTS[name].arguments, key=key, target=target)
    return cls


def selected(config: Any, name: str) -> str:
    """What the config selects for component `name`, as the dry run shows it."""
    from launcher.components.selection import target_of

    if name == "model" and config.get("task"):
        return f"{config['task']}.build_model"
    return target_of(config, name)
