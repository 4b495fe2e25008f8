"""A recipe's `run.py`: `launch <this recipe>`, taking ESPnet3's flags as well.

ESPnet3 recipes are run as `python run.py --stages collect_stats train
--training_config conf/training.yaml --dry_run`. Those flags become the
launcher's own before anything else reads them; everything else (Hydra
overrides, `-m`, `--wait`, ...) passes through as `launch` takes it:

    --stages a b ... | all      stages=[a,b,...]  (all: every stage of the System)
    --training_config FILE      --config-name NAME (FILE must be in the recipe's conf/)
    --dry_run                   --dry-run

ESPnet3's other configs (`--inference_config`, `--metrics_config`,
`--publication_config`) have no stages here to use them: they are refused.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from launcher.errors import ConfigError

REFUSED = ("--inference_config", "--metrics_config", "--publication_config",
           "--demo_config", "--write_requirements")


def run_recipe(recipe_dir: Path, argv: Sequence[str]) -> int:
    """`python run.py ARGS` in recipe folder `recipe_dir`; returns the exit status."""
    from launcher.cli import main

    try:
        translated = launch_arguments(Path(recipe_dir), list(argv))
    except ConfigError as exc:
        print(f"run.py: error: {exc}", file=sys.stderr)
        return 2
    return main([str(recipe_dir), *translated])


def launch_arguments(recipe_dir: Path, argv: list[str]) -> list[str]:
    """ESPnet3's flags in `argv` turned into `launch`'s; the rest kept, in order."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        flag, _, inline = argv[i].partition("=")
        if flag in REFUSED:
            raise ConfigError(f"{flag} is an ESPnet3 flag for stages this launcher does not run",
                              key=flag, hint="train with --training_config; see "
                                             "docs/porting_from_espnet3.md")
        if flag == "--stages":
            names, i = _values(argv, i, inline)
            if not names:
                raise ConfigError("--stages needs at least one stage name", key="--stages",
                                  hint="e.g. --stages collect_stats train")
            out.append(f"stages=[{','.join(names)}]")
            continue
        if flag == "--training_config":
            values, i = _values(argv, i, inline)
            out += ["--config-name", config_name(recipe_dir, values)]
            continue
        out.append("--dry-run" if argv[i] == "--dry_run" else argv[i])
        i += 1
    return out


def config_name(recipe_dir: Path, values: list[str]) -> str:
    """The name of a config file of the recipe's conf/ folder, given as a path."""
    if len(values) != 1:
        raise ConfigError("--training_config takes one file", key="--training_config",
                          hint="e.g. --training_config conf/training.yaml")
    path = Path(values[0])
    conf = (recipe_dir / "conf").resolve()
    full = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not full.is_file() and not path.is_absolute():
        full = (recipe_dir / path).resolve()  # relative to the recipe, as ESPnet3 runs it
    if full.parent != conf or full.suffix != ".yaml" or not full.is_file():
        raise ConfigError(f"{values[0]} is not a .yaml file in {conf}",
                          key="--training_config",
                          hint="the training config must be one of the recipe's conf/*.yaml")
    return full.stem


def _values(argv: list[str], i: int, inline: str) -> tuple[list[str], int]:
    """The values of the flag at `argv[i]` (`--flag=v` or `--flag v w ...`) and the index
    after them."""
    if inline:
        return [inline], i + 1
    j = i + 1
    while j < len(argv) and not argv[j].startswith("-") and "=" not in argv[j]:
        j += 1
    return argv[i + 1:j], j
