"""Which keys of a config may change when some of its values change.

A job of a sweep over values is the first job with other values at a few
keys, in a run folder of its own. A key whose value is read through an
interpolation from those keys (at any remove) may differ between the jobs as
well; what no such chain reaches is the same in every job, and what is the
same need not be checked again (`launcher.plan.planning_shape`). An
interpolation that cannot be read here (a relative key, a resolver that may
read anything, an escaped `\\${`) is taken to read every key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from launcher.plan.settings import JOB_TIME_RESOLVERS

# Resolvers whose value depends on their arguments alone (and the environment, or a
# file's line, which do not change while planning); their arguments' keys are read.
CONSTANT_RESOLVERS = ("oc.env", "load_line", "self_name")
KEY = re.compile(r"\s*([A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*)\s*")
RESOLVER = re.compile(r"\s*([\w.]+)\s*:(.*)", re.DOTALL)
EVERY_KEY = None  # what an interpolation reads when it cannot be told
JOB_TIME_RESOLVERS_BODY = tuple(p.removeprefix("${") for p in JOB_TIME_RESOLVERS)


def links(plain: Any) -> dict[str, set[str] | None]:
    """For every value holding an interpolation, its dotted key (list items by index) and
    the keys it reads (EVERY_KEY when that cannot be told)."""
    return {key: reads(text) for key, text in _interpolated(plain, "")}


def reached(links: Mapping[str, set[str] | None], sources: Iterable[str]) -> set[str]:
    """`sources` and every key whose value reads one of them, at any remove."""
    found = set(sources)
    grew = True
    while grew:
        grew = False
        for key, read in links.items():
            if key not in found and (read is EVERY_KEY
                                     or any(_overlap(r, f) for r in read for f in found)):
                found.add(key)
                grew = True
    return found


def within(key: str, keys: Iterable[str]) -> bool:
    """Whether `key` is one of `keys`, or inside or above one of them."""
    return any(_overlap(key, k) for k in keys)


def dotted(key: str) -> str:
    """`a[0].b` as `a.0.b`."""
    return re.sub(r"\[(\d+)\]", r".\1", key)


def reads(text: str) -> set[str] | None:
    """The keys the interpolations in `text` read; EVERY_KEY when that cannot be told."""
    keys: set[str] = set()
    for body in _bodies(text):
        if body is None:
            return EVERY_KEY
        key = KEY.fullmatch(body)
        if key:
            keys.add(dotted(key.group(1)))
            continue
        if body.lstrip().startswith(JOB_TIME_RESOLVERS_BODY):
            continue  # answered by the running job only; planning never reads it
        call = RESOLVER.fullmatch(body)
        if call is None or call.group(1) not in CONSTANT_RESOLVERS:
            return EVERY_KEY
        inner = reads(call.group(2))
        if inner is EVERY_KEY:
            return EVERY_KEY
        keys |= inner
    return keys


def _bodies(text: str) -> Iterator[str | None]:
    """The inside of each outermost `${...}`; None for one that cannot be read."""
    start = text.find("${")
    while start != -1:
        if start > 0 and text[start - 1] == "\\":
            yield None
            return
        depth, end = 0, start + 1
        while end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
            end += 1
        if depth != 0:
            yield None
            return
        yield text[start + 2:end]
        start = text.find("${", end + 1)


def _interpolated(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        items = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, list):
        items = [(str(i), v) for i, v in enumerate(node)]
    else:
        if isinstance(node, str) and "${" in node:
            yield path, node
        return
    for name, value in items:
        yield from _interpolated(value, f"{path}.{name}" if path else name)


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")
