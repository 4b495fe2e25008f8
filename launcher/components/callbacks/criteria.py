"""`best_model_criterion`: which metrics pick the checkpoints worth keeping.

    best_model_criterion: [[valid/loss, 3, min], [valid/acc, 1, max]]

Each entry keeps the `top_k` best checkpoints by a logged metric. Checked
before a launch (`parse_criteria`); that the metric is really logged can
only be seen once the module logs, at the first validation
(`launcher.components.callbacks.criterion_checkpoint`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from launcher.errors import ConfigError

CRITERIA_EXAMPLE = "e.g. best_model_criterion: [[valid/loss, 3, min]]"


def parse_criteria(criteria: Any) -> list[tuple[str, int, str]]:
    """`[[metric, top_k, mode], ...]` checked and normalised."""
    if criteria is None:
        return []
    if isinstance(criteria, str | bytes) or not isinstance(criteria, Sequence):
        raise ConfigError(f"{criteria!r} is not a list of [metric, top_k, min|max]",
                          key="best_model_criterion", hint=CRITERIA_EXAMPLE)
    if len(criteria) == 3 and isinstance(criteria[0], str) and not is_sequence(criteria[1]):
        raise ConfigError(f"{list(criteria)!r} is one criterion, not a list of them",
                          key="best_model_criterion",
                          hint=f"wrap it in a second list: [{list(criteria)!r}]")
    return [_criterion(item, i) for i, item in enumerate(criteria)]


def _criterion(item: Any, i: int) -> tuple[str, int, str]:
    key = f"best_model_criterion[{i}]"
    if not is_sequence(item) or len(item) != 3:
        raise ConfigError(f"{item!r} is not [metric, top_k, min|max]", key=key,
                          hint=CRITERIA_EXAMPLE)
    metric, top_k, mode = item
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"the metric {metric!r} is not a metric name", key=key,
                          hint="name a logged metric, e.g. valid/loss")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < -1:
        raise ConfigError(f"top_k {top_k!r} is not an integer >= -1", key=key,
                          hint="how many best checkpoints to keep: 3 (or -1 for all)")
    if mode not in ("min", "max"):
        raise ConfigError(f"mode {mode!r} is not min or max", key=key,
                          hint="min for a loss, max for an accuracy")
    return metric, top_k, mode


def is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def metric_slug(metric: str) -> str:
    return re.sub(r"[^\w.-]", "_", metric)

