"""Remember which job shapes passed the checks that import the recipe's classes.

Checking that each configured class imports and fits its contract means
importing PyTorch and Lightning: about 4 s before a sweep can be queued, paid
again on every launch although the code did not change. A pass is therefore
remembered under a key made of everything those checks read: every key of the
config with every string (targets, Literal choices) and the type of every
other value (an argument's type is judged, see `launcher.plan.arguments`), the
Trainer options as given, (with several optimizers) the model and optimizer
settings, (with a System other than the shared one, whose `check_config` may
read anything) the whole config, the recipe's own code, and the versions of
Python, torch and Lightning. The files of the other modules the targets came
from are recorded with the pass and must be unchanged for it to count. Only
passes are remembered: a bad config is checked, and refused, every time. A
number whose type stays (a learning rate of 0.1 or 0.01) does not change the
key, so a sweep over it is checked once; a pass that compared a number by
value (a `Literal[1, 2]` argument) is not remembered, as its key could not
tell a bad number from a good one.
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

from launcher.components.modeling.optimizer_config import named_optimizers
from launcher.components.selection import COMPONENTS, target_of
from launcher.job.config import PER_JOB_KEYS

WHERE_KEYS = (*PER_JOB_KEYS, "exp_root", "snapshot", "search")  # where runs go, what is copied


def key_of(job: Any, recipe_dir: Path) -> str | None:
    """The check key of a job config; None when part of it cannot be read (then check)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    plain = OmegaConf.to_container(job, resolve=False)
    shape: dict[str, Any] = {
        # Where runs go differs from job to job and launch to launch; planning checks
        # it on every launch, and no check remembered here compares its value.
        "values": typed({k: v for k, v in plain.items() if k not in WHERE_KEYS}),
        "trainer": plain.get("trainer"),
        "code": _recipe_code(recipe_dir),
        "env": _environment(),
    }
    if target_of(plain, "system") != COMPONENTS["system"].default:
        shape["config"] = plain  # a System's own check_config may read any of it
    if named_optimizers(plain):  # parameter groups: the model is built
        try:
            shape["groups"] = [OmegaConf.to_container(job[k], resolve=True)
                               for k in ("model", "optims", "optimizers") if k in job]
        except OmegaConfBaseException:
            return None
    text = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def typed(node: Any) -> Any:
    """A plain config with each string as it is and each other value as its type:
    `{lr: 0.1, name: a}` -> `{lr: [float], name: [str, a]}`; a list stays a list."""
    if isinstance(node, dict):
        return {str(k): typed(v) for k, v in node.items()}
    if isinstance(node, list):
        return [typed(v) for v in node]
    if isinstance(node, str):
        return ["str", node]
    return [type(node).__name__]


class CheckCache:
    """The passes remembered in `folder` (one file per key); one object per launch, which
    also remembers what it has seen pass, so a sweep reads each entry once."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.seen: set[str] = set()

    def passed(self, key: str | None) -> bool:
        if key is None:
            return False
        if key in self.seen:
            return True
        path = self._entry(key)
        if not path.is_file() or not _unchanged(json.loads(path.read_text())["files"]):
            return False
        self.seen.add(key)
        return True

    def remember(self, key: str | None, objects: Iterable[Any]) -> None:
        """Record a pass, with the source files of the modules the checked objects came
        from; not one whose check compared numbers by value (see the module's docstring)."""
        from launcher.atomic import write_text
        from launcher.plan.arguments import compares_values

        objects = list(objects)
        if key is None or any(compares_values(obj) for obj in objects):
            return
        self.seen.add(key)
        files = {f: _stat(f) for f in sorted(_source_files(objects))}
        path = self._entry(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"files": files}))

    def _entry(self, key: str) -> Path:
        return self.folder / f"{key}.json"


def user_cache() -> CheckCache:
    """The cache in the user's state folder (`$LAUNCHER_STATE_DIR/checks`)."""
    from launcher.executors.registry import state_dir

    return CheckCache(state_dir() / "checks")


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
    package = Path(__file__).parents[1]
    return [f"{p.relative_to(package)}:{_stat(str(p))}" for p in sorted(package.rglob("*.py"))]


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
