"""Find a recipe folder and compose its config (no run directory is touched here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.conf import SEARCH_PATH
from launcher.conf import is_config_group as is_group_in
from launcher.errors import ConfigError, clipped

DEFAULT_CONFIG_NAME = "config"
# A recipe's config folder: ESPnet3's conf/, or configs/ as a lightning-hydra-template app
# has it. The launcher's own config groups (hydra/launcher, cluster) sit behind it.
CONFIG_FOLDERS = ("conf", "configs")


@dataclass(frozen=True)
class Recipe:
    dir: Path
    config_name: str

    @property
    def conf_dir(self) -> Path:
        """conf/, else configs/ (conf/ when there is neither, for the error to name)."""
        for name in CONFIG_FOLDERS:
            if (self.dir / name).is_dir():
                return self.dir / name
        return self.dir / CONFIG_FOLDERS[0]

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
        raise ConfigError(f"recipe folder '{path}' has no conf/ or configs/ folder",
                          hint=f"create {recipe.conf_dir}/{name}.yaml")
    if not recipe.config_file.is_file():
        found = sorted(p.stem for p in recipe.conf_dir.glob("*.yaml"))
        raise ConfigError(f"no config '{name}.yaml' in {recipe.conf_dir}",
                          hint=_config_name_hint(found, given=config_name is not None))
    return recipe


def _config_name_hint(found: list[str], given: bool) -> str:
    """Which --config-name to pass: `train` for an app shaped like the Lightning-Hydra
    template (configs/train.yaml), else the configs there."""
    if not found:
        return "create it"
    if not given and "train" in found:
        others = [n for n in found if n != "train"]
        return "pass --config-name train" + (f" (or one of: {', '.join(others)})"
                                             if others else "")
    return f"choose one with --config-name: {', '.join(found)}"


def compose(recipe: Recipe, overrides: Sequence[str]):  # -> DictConfig
    """Compose the recipe config with overrides, as a job would see it."""
    import yaml
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from launcher.job.config import with_self_name
    from launcher.job.espnet3_resolvers import register_espnet3_resolvers

    register_espnet3_resolvers(recipe.dir)  # ${load_yaml:...} resolves when checked
    try:
        with initialize_config_dir(config_dir=str(recipe.conf_dir), version_base="1.3",
                                   job_name="run"):
            composed = hydra_compose(config_name=recipe.config_name,
                                     overrides=[*overrides, SEARCH_PATH])
    except yaml.YAMLError as exc:
        raise yaml_error(exc, recipe.config_file) from None
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(first, file=_source(first, overrides, recipe),
                          hint=_compose_hint(first)) from None
    return with_self_name(composed, recipe.config_name)


def yaml_error(exc: Exception, default_file: Path) -> ConfigError:
    """A YAML syntax error as one line: the file, the line and column, the problem."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    detail = f"{problem} ({context})" if context else problem
    return ConfigError(f"YAML syntax error at {where}{detail}",
                       file=getattr(mark, "name", None) or str(default_file),
                       hint="check the brackets, quotes and indentation (spaces, not tabs) "
                            "there")


def compose_sweep(recipe: Recipe, jobs: Sequence[Sequence[str]]) -> list:
    """Compose every job of a sweep, each as `compose` would: a sweep over values as
    copies of its first job (`launcher.plan.planning_values`), any other from the files."""
    from launcher.plan.planning_values import value_sweep

    sweep = value_sweep(recipe, jobs)
    if sweep is None:
        return [compose(recipe, job) for job in jobs]
    return [sweep.composed(i) for i in range(len(jobs))]


def is_config_group(recipe: Recipe, key: str) -> bool:
    """Whether `key` chooses a config group of the recipe (or of the launcher)."""
    return is_group_in(recipe.conf_dir, key)


def _source(message: str, overrides: Sequence[str], recipe: Recipe) -> str:
    """Blame the override the message quotes, else the config file."""
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if f"'{key}'" in message or override in message:
            return f"{recipe.config_file} (command-line override '{clipped(override)}')"
    return str(recipe.config_file)


def _compose_hint(message: str) -> str | None:
    if "not in struct" in message or "Could not override" in message:
        return "check the key's spelling; prefix it with '+' to add a new key"
    if "Could not find" in message:
        return "check the config group and option names under conf/"
    if "LexerNoViableAlt" in message or "mismatched input" in message:
        return "quote a value with spaces or special characters: key='a b#c'"
    return None
