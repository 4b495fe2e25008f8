"""ESPnet3's `ASRSystem`: the shared System's stages for speech recognition.

Recipes subclass it as in ESPnet3 (`class MySystem(ASRSystem)`) and select
the subclass with `system._target_`. Its stages are the shared System's."""

from __future__ import annotations

from launcher.systems.base.system import System


class ASRSystem(System):
    """collect_stats, train and evaluate, as the shared System runs them."""
