"""A Lightning app as the lightning-hydra-template lays one out, recognised by its config.

Such an app has `model:` (its own LightningModule, with its own
`configure_optimizers`), `data:` (a LightningDataModule), `trainer:` (Lightning's
options), `callbacks:` and `logger:` (named blocks), `paths:` and keys of its
own (`task_name`, `tags`, `train`, `test`, `ckpt_path`, ...). The launcher runs it
with `launcher.systems.lightning_app.LightningAppSystem`, so the user writes no
adapter. Everything that reads the config's shape (which System and module the
config selects, the job's config, the status' metric) asks this module, so the
shape is defined once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

APP_SYSTEM = "launcher.systems.lightning_app.LightningAppSystem"
# The model is its own LightningModule: no module wraps it.
APP_MODULE = "pytorch_lightning.LightningModule"
# The template's top-level keys (configs/train.yaml, its extras/ and hparams_search/).
APP_KEYS = ("data", "callbacks", "logger", "paths", "extras", "task_name", "tags", "train",
            "test", "ckpt_path", "optimized_metric")
# Keys whose presence means an ESPnet3-style recipe, whatever else the config has.
RECIPE_KEYS = ("lightning_module", "task", "dataset", "dataloader")


def is_lightning_app(config: Mapping) -> bool:
    """`model:` and `data:` both name a class, and nothing says ESPnet3-style recipe (or
    the config selects the app System itself)."""
    system = config.get("system")
    if isinstance(system, Mapping) and system.get("_target_") == APP_SYSTEM:
        return True
    return (_has_target(config.get("model")) and _has_target(config.get("data"))
            and not any(config.get(key) is not None for key in RECIPE_KEYS))


def _has_target(block: Any) -> bool:
    return isinstance(block, Mapping) and isinstance(block.get("_target_"), str)


def app_job_config(plain: dict) -> dict:
    """An app's composed config (plain, unresolved) as the job uses it.

    `trainer.default_root_dir` given as an interpolation (the template's
    `${paths.output_dir}`, which is the run directory) is dropped: the launcher
    puts every run in its own folder. A literal path stays, for the Trainer's checks
    to refuse. Without `best_model_criterion`, the metric the app's first
    monitoring callback watches becomes the one `launch status` tracks (the
    System keeps no second copy of checkpoints the app already keeps)."""
    trainer = plain.get("trainer")
    if isinstance(trainer, Mapping) and "${" in str(trainer.get("default_root_dir", "")):
        plain["trainer"] = {k: v for k, v in trainer.items() if k != "default_root_dir"}
    if plain.get("best_model_criterion") is None:
        watched = monitored(plain.get("callbacks"))
        if watched is not None:
            plain["best_model_criterion"] = [list(watched)]
    return plain


def monitored(callbacks: Any) -> tuple[str, int, str] | None:
    """`(metric, top_k, mode)` of the first callback block that monitors a metric."""
    for block in named_blocks(callbacks).values():
        metric = block.get("monitor")
        if isinstance(metric, str) and metric and "${" not in metric:
            top_k = block.get("save_top_k", 1)
            return metric, top_k if isinstance(top_k, int) and top_k > 0 else 1, \
                str(block.get("mode", "min"))
    return None


def named_blocks(node: Any) -> dict[str, Mapping]:
    """The `_target_` blocks of a `callbacks:` or `logger:` group, each by its key's tail
    (`.model_checkpoint`; `[0]` in a list); entries that are not blocks are skipped,
    as the template skips them."""
    if isinstance(node, list | tuple):
        items = {f"[{i}]": block for i, block in enumerate(node)}
    elif isinstance(node, Mapping):
        items = {"": node} if "_target_" in node else {f".{k}": v for k, v in node.items()}
    else:
        return {}
    return {name: block for name, block in items.items()
            if isinstance(block, Mapping) and "_target_" in block}
