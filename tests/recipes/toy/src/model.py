"""A tiny regression model and data set for fast tests of the training path."""

import logging
import time

import torch
from torch import nn
from torch.utils.data import Dataset


class Regressor(nn.Module):
    def __init__(self, dim: int = 4, hidden: int = 8, fail: bool = False, dropout: float = 0.0,
                 step_sleep_s: float = 0.0, fail_if_hidden: int = -1,
                 nan_every: int = 0) -> None:
        super().__init__()
        fail = fail or hidden == fail_if_hidden
        self.encoder = nn.Linear(dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, 1)
        self.fail = fail
        self.step_sleep_s = step_sleep_s  # slows steps down so tests can act mid-run
        self.nan_every = nan_every  # every n-th training batch has a NaN loss
        self.batches = 0
        if getattr(self, "VERSION", None):  # set by tests of code snapshots
            logging.getLogger("launcher").info("code version %s", self.VERSION)

    def forward(self, x, y):
        if self.fail and self.training:
            raise RuntimeError("deliberate failure (model.fail=true)")
        if self.step_sleep_s and self.training:
            time.sleep(self.step_sleep_s)
        pred = self.decoder(self.dropout(torch.tanh(self.encoder(x)))).squeeze(-1)
        loss = ((pred - y) ** 2).mean()
        if self.training and self.nan_every:
            self.batches += 1
            if self.batches % self.nan_every == 0:
                loss = loss * float("nan")
        return loss, {"loss": loss.detach()}, torch.tensor(float(len(x)))


class ToyData(Dataset):
    def __init__(self, size: int = 64, dim: int = 4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, dim, generator=g)
        self.y = self.x.sum(-1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}
