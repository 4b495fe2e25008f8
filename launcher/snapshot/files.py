"""Which files are a launch's code: the recipe's, and the local packages it imports.

A local package is one the recipe's code (or a `_target_` of its config)
imports from outside site-packages and the standard library: an editable
install of espnet3, a folder on PYTHONPATH. Its own imports are followed the
same way. The launcher itself is the tool, not the recipe's code, and is never
taken. Only names are read (a regular expression over the sources, and
`importlib.util.find_spec` for top-level names), so nothing is imported.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import site
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECIPE, LIB = "recipe", "lib"  # the snapshot's two folders
TOOL = ("launcher", "hydra_plugins")
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".mypy_cache", ".pytest_cache",
                          ".ruff_cache", ".ipynb_checkpoints"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
IMPORTS = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_]\w*)[\w.]*[ \t]+import\b"
                     r"|import[ \t]+([A-Za-z_][\w. \t,]*))", re.M)
DOTTED = re.compile(r"^([A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)+$")


@dataclass(frozen=True)
class CodeFile:
    name: str  # its path in the snapshot: recipe/src/model.py, lib/espnet3/__init__.py
    source: Path


@dataclass
class Code:
    """A launch's code: what a snapshot copies and what the code digest covers."""

    recipe_dir: Path
    conf_name: str  # the recipe's config folder: conf or configs
    packages: dict[str, Path]  # local top-level packages (or modules) by name
    files: list[CodeFile] = field(default_factory=list)

    def manifest(self) -> dict[str, str]:
        """The hash of each Python file: what the code digest is made of (the configs
        are not: a config change is the run's fingerprint's business)."""
        return {f.name: file_hash(f.source) for f in self.files if f.name.endswith(".py")}


def file_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def digest(manifest: dict[str, str]) -> str:
    text = "\n".join(f"{name} {sha}" for name, sha in sorted(manifest.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def code_of(recipe_dir: Path, conf_dir: Path, configs: Iterable[Any] = ()) -> Code:
    """The recipe's code files and the local packages its code and `configs` import."""
    recipe_dir = Path(recipe_dir).resolve()
    files = [*_tree(Path(conf_dir), f"{RECIPE}/{Path(conf_dir).name}"),
             *_tree(recipe_dir / "src", f"{RECIPE}/src"),
             *(CodeFile(f"{RECIPE}/{p.name}", p) for p in sorted(recipe_dir.glob("*.py"))
               if p.is_file())]
    names = set(imported_names(f.source for f in files if f.name.endswith(".py")))
    for config in configs:
        names |= set(dotted_roots(config))
    packages = local_packages(names)
    for name, path in sorted(packages.items()):
        files += _tree(path, f"{LIB}/{name}") if path.is_dir() else \
            [CodeFile(f"{LIB}/{path.name}", path)]
    return Code(recipe_dir, Path(conf_dir).name, packages, files)


def _tree(root: Path, prefix: str) -> list[CodeFile]:
    if not root.is_dir():
        return []
    return [CodeFile(f"{prefix}/{p.relative_to(root).as_posix()}", p)
            for p in sorted(_walk(root))]


def _walk(root: Path) -> Iterator[Path]:
    for path in root.iterdir():
        if path.is_dir() and not path.is_symlink():
            if path.name not in SKIPPED_DIRS:
                yield from _walk(path)
        elif path.is_file() and not path.name.endswith(SKIPPED_SUFFIXES):
            yield path


def imported_names(sources: Iterable[Path]) -> Iterator[str]:
    """Top-level module names that `import` lines of the files name."""
    for path in sources:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for from_name, import_list in IMPORTS.findall(text):
            if from_name:
                yield from_name
            for part in import_list.split(","):
                word = part.strip().split(" ")[0].split(".")[0]
                if word.isidentifier():
                    yield word


def dotted_roots(config: Any) -> Iterator[str]:
    """The first part of every dotted name in a config (`_target_: espnet3.x.Y`)."""
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(config, resolve=False) if OmegaConf.is_config(config) \
        else config
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str) and (match := DOTTED.match(item)):
            yield match.group(1)


def local_packages(names: Iterable[str]) -> dict[str, Path]:
    """The local ones among `names`, and the local ones they import, by name."""
    found: dict[str, Path] = {}
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = local_location(name)
        if path is None:
            continue
        found[name] = path
        sources = _walk(path) if path.is_dir() else iter([path])
        todo += imported_names(p for p in sources if p.suffix == ".py")
    return found


def local_location(name: str) -> Path | None:
    """Where module `name` is, when it is neither installed nor the tool nor built in."""
    if name in TOOL or name == "src" or name in sys.builtin_module_names \
            or name in getattr(sys, "stdlib_module_names", ()):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a broken or odd module: not ours to copy
        return None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None  # a namespace package spreads over folders: nothing to copy whole
    path = Path(spec.origin).resolve()
    if spec.submodule_search_locations:
        path = path.parent
    return None if _installed(path) else path


def _installed(path: Path) -> bool:
    """In the standard library or a site-packages folder: this environment's, or another
    one's put on the path (a `.pth` file, PYTHONPATH)."""
    return any(part in ("site-packages", "dist-packages") for part in path.parts) or \
        any(path.is_relative_to(folder) for folder in _installed_folders())


@functools.lru_cache(maxsize=1)
def _installed_folders() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    folders = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    folders += list(getattr(site, "getsitepackages", list)())
    folders.append(site.getusersitepackages() if hasattr(site, "getusersitepackages")
                   else None)
    return tuple({Path(f).resolve() for f in folders if f})
