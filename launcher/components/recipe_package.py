"""A recipe's `src/` folder, imported as a package of its own.

Each recipe's `src/` is imported under a name unique to that recipe (derived
from its absolute path), so two recipes that both ship a `src` package can be
used in one process, and nothing touches `sys.path`.

ESPnet3 recipes import their siblings as `from src.lightning_module import
MyLightningModule` (they run with the recipe folder as the working directory).
The loader here reads such a line as an import from the recipe's own package:
`src` means "this recipe's src/" in every module of that package, with or
without `src/__init__.py`. The rewrite happens while compiling, on the syntax
tree, and the result is never cached as bytecode, so a plain `python -c
"import src.model"` in the recipe folder still sees the file as written.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SRC = "src"


def recipe_package_name(recipe_dir: Path) -> str:
    """The module name under which `recipe_dir/src` is imported."""
    recipe_dir = Path(recipe_dir).resolve()
    slug = re.sub(r"\W", "_", "_".join(recipe_dir.parts[-2:]))
    digest = hashlib.sha1(str(recipe_dir).encode()).hexdigest()[:8]
    return f"_recipe_{slug}_{digest}"


def import_recipe_package(recipe_dir: Path) -> str:
    """Make `recipe_dir/src` importable under its unique name; return that name. In a
    job that runs from a code snapshot, the snapshot's copy of `src` is imported."""
    from launcher.snapshot.use import code_dir

    name = recipe_package_name(recipe_dir)
    if name in sys.modules:
        return name
    src = code_dir(recipe_dir).resolve() / SRC
    _FINDER.packages[name] = str(src)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    init = src / "__init__.py"
    if init.is_file():
        loader = RecipeModuleLoader(name, str(init), package=name)
        spec = importlib.util.spec_from_file_location(
            name, init, loader=loader, submodule_search_locations=[str(src)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    else:
        module = types.ModuleType(name)
        module.__path__ = [str(src)]
        module.__package__ = name
        sys.modules[name] = module
    return name


class RecipeModuleLoader(importlib.machinery.SourceFileLoader):
    """Loads a module of a recipe package, reading `src.` imports as the package's own."""

    def __init__(self, fullname: str, path: str, package: str) -> None:
        super().__init__(fullname, path)
        self.package = package

    def get_code(self, fullname: str) -> types.CodeType:
        source = self.get_data(self.path)
        tree = SrcImports(self.package).visit(ast.parse(source, self.path))
        return compile(ast.fix_missing_locations(tree), self.path, "exec", dont_inherit=True)


class SrcImports(ast.NodeTransformer):
    """`from src.x import y` → `from <package>.x import y`; `import src.x as m` likewise;
    `import src.x` → `import <package>.x` and `src = <package>` (what the name `src`
    would have been bound to)."""

    def __init__(self, package: str) -> None:
        self.package = package

    def _renamed(self, module: str | None) -> str | None:
        if module == SRC:
            return self.package
        if module is not None and module.startswith(SRC + "."):
            return self.package + module[len(SRC):]
        return module

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.level == 0:
            node.module = self._renamed(node.module)
        return node

    def visit_Import(self, node: ast.Import) -> list[ast.stmt]:
        bound_src = False
        for alias in node.names:
            renamed = self._renamed(alias.name)
            bound_src |= renamed != alias.name and alias.asname is None
            alias.name = renamed
        if not bound_src:
            return [node]
        package = ast.Call(func=ast.Name("__import__", ast.Load()),
                           args=[ast.Constant(self.package)], keywords=[])
        return [node, ast.copy_location(
            ast.Assign(targets=[ast.Name(SRC, ast.Store())], value=package), node)]


class RecipePackages:
    """Finds the modules of the recipe packages imported so far, loading each with
    `RecipeModuleLoader`; any other name is left to the usual finders."""

    def __init__(self) -> None:
        self.packages: dict[str, str] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        package = fullname.partition(".")[0]
        if package not in self.packages or fullname == package:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = RecipeModuleLoader(fullname, spec.origin, package=package)
        return spec


_FINDER = RecipePackages()
