"""Find a recipe folder and compose its config (no run directory is touched here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import ConfigError

DEFAULT_CONFIG_NAME = "config"
# The launcher's own config groups (hydra/launcher, cluster) sit behind the recipe's.
SHARED_CONFIGS = "hydra.searchpath=[pkg://launcher.conf]"


@dataclass(frozen=True)
class Recipe:
    dir: Path
    config_name: str

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def config_file(self) -> Path:
        return self.conf_dir / f"{self.config_name}.yaml"


def find_recipe(path: str | Path, config_name: str | None = None) -> Recipe:
    folder = Path(path).expanduser()
    name = (config_name or DEFAULT_CONFIG_NAME).removesuffix(".yaml")
    if not folder.is_dir():
        raise ConfigError(f"recipe folder '{path}' does not exist",
                          hint="give a path such as egs3/tones/asr1 (relative to the "
                               "current directory)")
    recipe = Recipe(folder.resolve(), name)
    if not recipe.conf_dir.is_dir():
        raise ConfigError(f"recipe folder '{path}' has no conf/ folder",
                          hint=f"create {recipe.conf_dir}/{name}.yaml")
    if not recipe.config_file.is_file():
        found = sorted(p.stem for p in recipe.conf_dir.glob("*.yaml"))
        raise ConfigError(f"no config '{name}.yaml' in {recipe.conf_dir}",
                          hint=f"choose one with --config-name: {', '.join(found)}"
                          if found else "create it")
    return recipe


def compose(recipe: Recipe, overrides: Sequence[str]):  # -> DictConfig
    """Compose the recipe config with overrides, as a job would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(recipe.conf_dir), version_base="1.3",
                                   job_name="run"):
            return hydra_compose(config_name=recipe.config_name,
                                 overrides=[*overrides, SHARED_CONFIGS])
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(first, file=_source(first, overrides, recipe),
                          hint=_compose_hint(first)) from None


def _source(message: str, overrides: Sequence[str], recipe: Recipe) -> str:
    """Blame the override the message quotes, else the config file."""
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if f"'{key}'" in message or f"'{override}'" in message:
            return f"{recipe.config_file} (command-line override '{override}')"
    return str(recipe.config_file)


def _compose_hint(message: str) -> str | None:
    if "not in struct" in message or "Could not override" in message:
        return "check the key's spelling; prefix it with '+' to add a new key"
    if "Could not find" in message:
        return "check the config group and option names under conf/"
    return None
