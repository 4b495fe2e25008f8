"""Top-level config keys: each must be read by someone, or it is refused before launch.

A key is read by the launcher, belongs to ESPnet3's config contract, is
declared by one of the configured classes (a class attribute
`config_keys = ("my_key",)` on the System, LightningModule, Trainer or model),
or is used by an interpolation elsewhere in the config (`mixture: {...}` with
`${mixture}` in the dataset). Anything else is a typo (`optimizers:` for
`optimizer:`), or a key of another tool, that would otherwise be silently
ignored. ESPnet3 keys whose feature is not here are refused when they ask for
something, naming what to do instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from launcher.errors import ConfigError
from launcher.identity import RUN_KEY

LAUNCHER_KEYS = (
    "stages", "seed", "exp_root", "system", "lightning_module", "model", "trainer",
    "dataset", "dataloader", "optim", "optims", "scheduler", "schedulers",
    "best_model_criterion", "resources", "cluster", "requeue", "resume", "snapshot", "search",
    "run_dir", "hydra", RUN_KEY)
ESPNET3_KEYS = (  # egs3/TEMPLATE's training.yaml, and the spellings of egs3 recipes
    "num_device", "num_nodes", "task", "recipe_dir", "data_dir", "exp_tag", "exp_dir",
    "stats_dir", "dataset_dir", "inference_dir", "create_dataset", "tokenizer",
    "optimizer", "optimizers", "scheduler_interval", "scheduler_monitor",
    "val_scheduler_criterion", "init", "parallel", "fit")
FIT_ARGUMENTS = ("ckpt_path", "train_dataloaders", "val_dataloaders", "datamodule")
INTERPOLATED = re.compile(r"\$\{\s*([A-Za-z_]\w*)\s*(?=[.\[}])")


def check_top_level_keys(config: Mapping, classes: Iterable[type],
                         composed: Mapping | None = None) -> None:
    """Refuse a top-level key nobody reads, and ESPnet3 features that are not here.
    Interpolations count where they were written (`composed`, as the files and the
    command line made the config), not only where they survive in `config`."""
    declared = {key for cls in classes for key in getattr(cls, "config_keys", ())}
    known = {*LAUNCHER_KEYS, *ESPNET3_KEYS, *declared}
    used = set(INTERPOLATED.findall(repr(_plain(config))))
    if composed is not None:
        used |= set(INTERPOLATED.findall(repr(_plain(composed))))
    for key in config:
        if key in known or key in used:
            continue
        close = difflib.get_close_matches(str(key), sorted(known), 1)
        raise ConfigError(
            f"no part of the run reads '{key}'; the known keys are {', '.join(sorted(known))}",
            key=str(key),
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + "a key of your own: use it in an interpolation (${" + str(key) + "}), or "
            "declare it on your class: config_keys = ('" + str(key) + "',)")
    _check_espnet3_features(config)


def _check_espnet3_features(config: Mapping) -> None:
    if config.get("init") is not None:
        raise ConfigError("ESPnet's parameter initialiser is not run here", key="init",
                          hint="initialise the weights in the model's constructor, "
                               "and remove 'init'")
    fit = _plain(config.get("fit")) or {}
    unknown = sorted(set(fit) - set(FIT_ARGUMENTS)) if isinstance(fit, Mapping) else [fit]
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not a keyword argument of Trainer.fit",
                          key="fit", hint=f"use {', '.join(FIT_ARGUMENTS)}, or fit: {{}}")
    parallel = _plain(config.get("parallel")) or {}
    env = parallel.get("env", "local") if isinstance(parallel, Mapping) else parallel
    if env != "local":
        raise ConfigError(f"collect_stats runs inside the job, not on a '{env}' backend",
                          key="parallel.env",
                          hint="remove 'parallel' and state the job's CPUs and GPUs in "
                               "'resources' (or num_device/num_nodes)")


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
