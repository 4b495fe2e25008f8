"""Writes sharded checkpoint folders as Lightning's FSDP strategy lays them out, from
several gloo processes, without Lightning (whose FSDP refuses CPUs): the weights under
`model` in `torch.distributed.checkpoint` shards, the rest in `meta.pt` from rank 0."""

from __future__ import annotations

import os
from pathlib import Path

import torch

WORLD = 2


def weights(seed: int) -> dict[str, torch.Tensor]:
    """The LightningModule's state dict of the toy Regressor (dim 4, hidden 8)."""
    g = torch.Generator().manual_seed(seed)
    return {"model.encoder.weight": torch.randn(8, 4, generator=g),
            "model.encoder.bias": torch.randn(8, generator=g),
            "model.decoder.weight": torch.randn(1, 8, generator=g),
            "model.decoder.bias": torch.randn(1, generator=g),
            "model.counter": torch.tensor(7)}


def _write(rank: int, folders: list[str], seeds: list[int], init: str) -> None:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    mesh = init_device_mesh("cpu", (WORLD,))
    for folder, seed in zip(folders, seeds, strict=True):
        state = {k: distribute_tensor(v, mesh, [Shard(0)]) if v.dim() else v
                 for k, v in weights(seed).items()}
        dcp.save({"model": state}, checkpoint_id=folder)
        if rank == 0:
            torch.save({"epoch": seed, "global_step": 10 * seed, "loops": {},
                        "callbacks": {}}, Path(folder) / "meta.pt")
    dist.destroy_process_group()


def write_folders(folders: list[Path], seeds: list[int], scratch: Path) -> None:
    """Write one sharded checkpoint per folder, from WORLD processes."""
    import torch.multiprocessing as mp

    init = f"file://{scratch / 'rendezvous'}"
    mp.spawn(_write, args=([str(f) for f in folders], seeds, init), nprocs=WORLD)
