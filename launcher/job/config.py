"""A job's config as the job uses it, made from the composed config.

Planning makes it to check it; every job makes it again from the config Hydra
composes for it. Run and recipe folders are set, device counts come from the
resources, the cluster profile's callbacks are added, and `src.` targets
point at the recipe's own package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PER_JOB_KEYS = ("run_dir", "exp_dir")  # the job's own folder, by our name and ESPnet3's


def job_config(config: Any, recipe_dir: Path, run_dir: Path, translate: bool = True) -> Any:
    """A copy of the composed config as a job uses it: run and recipe folders set,
    device counts from the resources, the cluster's callbacks added, and `src.`
    targets pointing at the recipe's own package (unless `translate` is off)."""
    from omegaconf import OmegaConf

    from launcher.components.lightning_app import app_job_config, is_lightning_app
    from launcher.components.targets import translate_all_targets
    from launcher.resources import with_device_counts

    plain = OmegaConf.to_container(config, resolve=False)
    plain = with_device_counts(plain, config.get("num_nodes"), config.get("num_device"))
    if is_lightning_app(plain):
        plain = app_job_config(plain)
    if translate:
        plain = translate_all_targets(plain, recipe_dir)
    plain["run_dir"] = str(run_dir)
    plain["exp_dir"] = str(run_dir)  # ESPnet3's name for it, as recipe Systems read it
    plain.setdefault("best_model_criterion", None)
    plain["recipe_dir"] = str(recipe_dir)
    stages = plain.setdefault("stages", ["train"])
    if isinstance(stages, str):  # `stages=train` means [train]
        plain["stages"] = [stages]
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


def run_dir_for(config: Any, recipe_dir: Path, name: str) -> Path:
    """Where a run lives: in the config's `exp_dir` when it sets one (ESPnet3's
    `${recipe_dir}/exp/${exp_tag}`), a launch with run-defining overrides or a sweep in
    a subfolder of it per job; else in `<exp_root>/<name>`."""
    from launcher.layout import exp_root

    return run_dir_in(configured_exp_dir(config, recipe_dir),
                      exp_root(recipe_dir, config.get("exp_root")), name)


def run_dir_in(exp_dir: Path | None, root: Path, name: str) -> Path:
    """`run_dir_for`, given the configured `exp_dir` (or None) and the runs' root."""
    from launcher.identity import DEFAULT_RUN_NAME

    if exp_dir is None:
        return root / name
    return exp_dir if name == DEFAULT_RUN_NAME else exp_dir / name


def configured_exp_dir(config: Any, recipe_dir: Path) -> Path | None:
    """The config's own `exp_dir`, its `${recipe_dir}` the recipe folder, a relative one
    taken from the recipe folder; None when it sets none."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from launcher.errors import ConfigError

    plain = OmegaConf.to_container(config, resolve=False)
    if plain.get("exp_dir") is None:
        return None
    plain["recipe_dir"] = str(recipe_dir)
    try:
        value = OmegaConf.create(plain).exp_dir
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{plain['exp_dir']!r} cannot be resolved when planning: "
                          f"{str(exc).splitlines()[0]}", key="exp_dir",
                          hint="build it from keys of the config, e.g. "
                               "${recipe_dir}/exp/${exp_tag}") from None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else Path(recipe_dir).resolve() / path


def recipe_dir_of(config_sources: Sequence[Mapping]) -> Path:
    """The recipe folder: the parent of the primary config folder Hydra loaded (for a
    job composed from a code snapshot, the folder the snapshot was taken from)."""
    from launcher.snapshot.use import source_recipe_dir

    return source_recipe_dir(config_dir_of(config_sources))


def config_dir_of(config_sources: Sequence[Mapping]) -> Path:
    """The primary config folder Hydra loaded (the recipe's conf/ or configs/)."""
    for source in config_sources:
        if source.get("provider") == "main" and source.get("schema") == "file":
            return Path(source["path"])
    raise LookupError("the primary config was not loaded from a folder")


SELF_NAME = "${self_name:}"


def with_self_name(config: Any, config_name: str) -> Any:
    """The config with ESPnet3's `${self_name:}` replaced by the primary config's name
    (`training` for conf/training.yaml), as ESPnet3 does before anything resolves."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(config, resolve=False)
    if SELF_NAME not in repr(plain):
        return config
    named = OmegaConf.create(replaced_in_strings(plain, SELF_NAME, config_name))
    OmegaConf.set_struct(named, OmegaConf.is_struct(config))
    return named


def replaced_in_strings(node: Any, old: str, new: str) -> Any:
    """A plain config with `old` replaced by `new` in every string value."""
    if isinstance(node, dict):
        return {k: replaced_in_strings(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [replaced_in_strings(v, old, new) for v in node]
    return node.replace(old, new) if isinstance(node, str) else node
