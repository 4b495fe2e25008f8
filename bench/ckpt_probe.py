"""Checkpoint write time against model size, in one process (used by B5).

    python bench/ckpt_probe.py FOLDER PARAMS [PARAMS ...]   -> one JSON line

For each size, a Lightning-style checkpoint (weights, Adam state after one
step, loop counters and, for the launcher, the packed random state its
module adds for exact resume) is written by

- `launcher.components.callbacks.checkpoints.AtomicCheckpointIO` (temporary file + rename), and
- `lightning_fabric`'s `TorchCheckpointIO`, what a plain Trainer uses;

in turn, several times; the median seconds of each are reported, with
the size of the file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

REPS = 4


def checkpoint_of(params: int) -> dict[str, Any]:
    import torch

    width = max(8, int(params ** 0.5))
    model = torch.nn.Linear(width, width)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, width)).sum().backward()
    optimizer.step()
    return {"epoch": 0, "global_step": 1, "state_dict": model.state_dict(),
            "optimizer_states": [optimizer.state_dict()], "loops": {}, "callbacks": {}}


def write_seconds(io: Any, checkpoint: dict, path: Path) -> float:
    start = time.perf_counter()
    io.save_checkpoint(checkpoint, path)
    return time.perf_counter() - start


def main(folder: Path, sizes: list[int]) -> list[dict[str, Any]]:
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    from launcher.components.callbacks.checkpoints import AtomicCheckpointIO
    from launcher.components.modeling.exact_resume import RESUME_KEY, pack_rng_states

    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for params in sizes:
        plain = checkpoint_of(params)
        start = time.perf_counter()
        ours = {**plain, RESUME_KEY: {"epoch": 0, "batches_done": 1, "rng": pack_rng_states()}}
        pack_s = time.perf_counter() - start
        times: dict[str, list[float]] = {"atomic": [], "plain": []}
        writers = [("atomic", AtomicCheckpointIO(), ours), ("plain", TorchCheckpointIO(), plain)]
        for rep in range(REPS):
            # Alternate who goes first: the second write of a pair can pay for the
            # writeback of the first.
            for name, io, checkpoint in writers[::-1] if rep % 2 else writers:
                times[name].append(write_seconds(io, checkpoint, folder / f"{name}.ckpt"))
        results.append({"params": params, "mb": (folder / "atomic.ckpt").stat().st_size / 2**20,
                        "atomic_s": times["atomic"], "plain_s": times["plain"],
                        "rng_pack_s": pack_s, **read_costs(folder)})
        for name in ("atomic.ckpt", "plain.ckpt"):
            (folder / name).unlink(missing_ok=True)
    return results


def read_costs(folder: Path) -> dict[str, list[float]]:
    """Seconds to read the newest checkpoint of `folder` the ways a resume does."""
    import torch

    from launcher.components.callbacks.checkpoints import resume_checkpoint

    path = folder / "atomic.ckpt"
    (folder / "plain.ckpt").unlink(missing_ok=True)
    readers = {
        "lightning_load_s": lambda: torch.load(path, map_location="cpu", weights_only=False),
        "resume_check_s": lambda: resume_checkpoint(folder),
    }
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(REPS):
        for name, read in readers.items():
            start = time.perf_counter()
            read()
            times[name].append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), [int(float(s)) for s in sys.argv[2:]])))
