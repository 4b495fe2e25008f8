"""Import the benchmark recipe's own code (`bench/recipe/src`) into the baselines.

The baselines must train the very same model on the very same data as the
launcher path, so they import the recipe's files rather than copies. The
folder is loaded as a package under an explicit name (no `sys.path` edits).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SRC = Path(__file__).resolve().parents[1] / "recipe" / "src"
PACKAGE = "bench_recipe_src"


def recipe_module(name: str) -> ModuleType:
    """`recipe_module("model")` is bench/recipe/src/model.py."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, SRC / "__init__.py", submodule_search_locations=[str(SRC)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{name}")


def training_arguments(description: str) -> argparse.ArgumentParser:
    """The model, data and run options every baseline takes, named as bench/run.py passes them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    return parser
