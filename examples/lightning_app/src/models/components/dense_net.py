"""A small fully connected classifier (the template's SimpleDenseNet, smaller)."""

from __future__ import annotations

import torch


class DenseNet(torch.nn.Module):
    def __init__(self, input_size: int = 2, hidden_size: int = 32, output_size: int = 3):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(input_size, hidden_size), torch.nn.ReLU(),
            torch.nn.Linear(hidden_size, hidden_size), torch.nn.ReLU(),
            torch.nn.Linear(hidden_size, output_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
