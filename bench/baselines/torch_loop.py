"""Baseline: the plain PyTorch training loop, no framework at all.

Same model, data loader, batch size, seed and step clock as the Lightning
paths; the floor that both Lightning paths are compared with.

    python bench/baselines/torch_loop.py --hidden 64 --steps 2000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from recipe_code import recipe_module, training_arguments
from torch.utils.data import DataLoader


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = training_arguments(__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: train on one GPU (B1 with BENCH_DEVICE=gpu)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    model_code, clock_code = recipe_module("model"), recipe_module("clock")
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = model_code.MLP(args.dim, args.hidden, args.layers).to(device)
    data = model_code.RandomData(args.steps * args.batch_size, args.dim, seed=0)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    clock = clock_code.StepClock()
    clock.mark("fit_start")
    model.train()
    for step, batch in enumerate(loader, start=1):
        loss, _, _ = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clock.step(step)
        if step >= args.steps:
            break
    clock.finish()


if __name__ == "__main__":
    main()
