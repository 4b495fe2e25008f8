"""ESPnet3's `espnet3.systems.asr.task.ASRTask` (a copy of ESPnet2's ASR task), as
`task: launcher.systems.asr.task.ASRTask`: ESPnet2's own class, from the `espnet`
extra. Imported only when a config names it."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name != "ASRTask":
        raise AttributeError(name)
    from espnet2.tasks.asr import ASRTask  # ModuleNotFoundError names the extra's package

    return ASRTask
