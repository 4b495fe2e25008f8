"""The training building blocks of ESPnet3's `espnet3.systems.base.training`, by the
same names, for recipe Systems written against ESPnet3 (`MySystem.train()` that
builds its own module and Trainer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def instantiate_model(config: Mapping) -> Any:
    """The model that `model:` describes, built as the shared System builds it (a
    constructor that raises is reported as a config error naming `model`)."""
    from launcher.components.building import build

    return build(config["model"], "model")


_instantiate_model = instantiate_model  # ESPnet3's name, as its recipes import it
