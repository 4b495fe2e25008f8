"""The layout shows the layers: imports run one way, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "launcher"
# Top to bottom; a module may import its own layer and the layers below it.
# followups sit beside plan and read what executors recorded.
RANK = {"run_script": -1, "cli": 0, "launch": 1, "plan": 2, "followups": 2, "executors": 3,
        "job": 4, "systems": 5, "components": 6, "compat": 7}
BOTTOM = 8
MAX_LINES = 300


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "launcher":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "bottom"


def modules() -> list[tuple[str, Path]]:
    return [("launcher." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
             .removesuffix(".__init__"), p) for p in sorted(PACKAGE.rglob("*.py"))]


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_imports_run_one_way():
    upward = []
    for module, path in modules():
        mine = layer(module)
        for name in imported(path):
            other = layer(name)
            if other is None or other == mine:
                continue
            if RANK.get(other, BOTTOM) <= RANK.get(mine, BOTTOM) and \
                    (mine, other) != ("followups", "executors"):
                upward.append(f"{module} imports {name}")
    assert not upward, "imports that run upward:\n" + "\n".join(sorted(set(upward)))


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_no_module_is_a_god_module(module, path):
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"{module}: split it"


def test_private_apis_of_upstream_libraries_are_used_only_in_compat():
    private = ("hydra._internal", "_make_sbatch_string", "_results_timeout_s",
               "_set_rng_states", "_collect_rng_states", "_signal_connector",
               "_apply_overrides_to_config", "fit_loop.epoch_loop")
    found = [f"{module}: {word}" for module, path in modules()
             if layer(module) != "compat" for word in private if word in path.read_text()]
    assert not found, "\n".join(found)
