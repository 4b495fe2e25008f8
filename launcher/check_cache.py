"""Remember which job shapes passed the checks that import the recipe's classes.

Checking that each configured class imports and fits its contract means
importing PyTorch and Lightning: about 4 s before a sweep can be queued, paid
again on every launch although the code did not change. A pass is therefore
remembered under a key made of everything those checks read: every
`_target_`, the model's keys, the Trainer options, the stages, (with several
optimizers) the model and optimizer settings, (with a System other than the
shared one, whose `check_config` may read anything) the whole config, the
recipe's own code, and the versions of Python, torch and Lightning. The files
of the other modules the targets came from are recorded with the pass and
must be unchanged for it to count. Only passes are remembered: a bad config
is checked, and refused, every time. A value the checks never read (a
learning rate) does not change the key, so a sweep over it is checked once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from launcher.components import COMPONENTS, CONSTRUCTION_KEYS, target_of
from launcher.resolve import keys_named

_passed_here: set[str] = set()  # keys checked in this process


def key_of(job: Any, recipe_dir: Path) -> str | None:
    """The check key of a job config; None when part of it cannot be read (then check)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    plain = OmegaConf.to_container(job, resolve=False)
    shape: dict[str, Any] = {
        "targets": sorted(map(str, keys_named(plain, ("_target_", "collate_fn")))),
        "model_keys": sorted(k for k in plain.get("model") or {} if k not in CONSTRUCTION_KEYS),
        "trainer": plain.get("trainer"),
        "stages": plain.get("stages"),
        "code": _recipe_code(recipe_dir),
        "env": _environment(),
    }
    if target_of(plain, "system") != COMPONENTS["system"].default:
        shape["config"] = plain  # a System's own check_config may read any of it
    if plain.get("optims") is not None:  # parameter groups: the model is built
        try:
            shape["groups"] = OmegaConf.to_container(job.model, resolve=True), \
                OmegaConf.to_container(job.optims, resolve=True)
        except OmegaConfBaseException:
            return None
    text = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def passed(key: str | None) -> bool:
    if key is None:
        return False
    if key in _passed_here:
        return True
    path = _entry(key)
    if not path.is_file() or not _unchanged(json.loads(path.read_text())["files"]):
        return False
    _passed_here.add(key)
    return True


def remember(key: str | None, objects: Iterable[Any]) -> None:
    """Record a pass, with the source files of the modules the checked objects came from."""
    if key is None:
        return
    _passed_here.add(key)
    files = {f: _stat(f) for f in sorted(_source_files(objects))}
    path = _entry(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"files": files}))
    tmp.replace(path)


def _entry(key: str) -> Path:
    from launcher.registry import state_dir

    return state_dir() / "checks" / f"{key}.json"


def _recipe_code(recipe_dir: Path) -> str:
    """A digest of the recipe's Python files (src/ and its top level), by content."""
    digest = hashlib.sha256()
    recipe_dir = Path(recipe_dir)
    for path in sorted([*recipe_dir.glob("*.py"), *(recipe_dir / "src").rglob("*.py")]):
        digest.update(str(path.relative_to(recipe_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _environment() -> list[str]:
    return [*_versions(), *sys.path]


@functools.cache
def _versions() -> tuple[str, ...]:
    from importlib import metadata

    versions = [metadata.version(p) for p in ("torch", "pytorch-lightning", "launcher")]
    return (sys.version, *versions, *_launcher_files())


def _launcher_files() -> list[str]:
    package = Path(__file__).parent
    return [f"{p.name}:{_stat(str(p))}" for p in sorted(package.glob("*.py"))]


def _source_files(objects: Iterable[Any]) -> set[str]:
    files = set()
    for obj in objects:
        for cls in getattr(obj, "__mro__", (obj,)):
            module = sys.modules.get(getattr(cls, "__module__", None) or "")
            path = getattr(module, "__file__", None)
            if path and "_recipe_" not in (module.__name__ or ""):
                files.add(path)
    return files


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _unchanged(files: Mapping[str, Any]) -> bool:
    return all(_stat(path) == recorded for path, recorded in files.items())
