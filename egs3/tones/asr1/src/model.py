"""A small CTC recogniser: log-spectrum frontend, global normalisation, BiGRU, CTC.

`forward(**batch)` returns `(loss, stats, weight)` as the shared
LightningModule expects; `collect_feats` gives the collect_stats stage the
features whose mean and variance `stats_file` then holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from launcher.errors import ConfigError

from .data import NUM_TOKENS

N_FFT, HOP = 256, 80          # 32 ms windows every 10 ms at 8 kHz
LOW_BIN, HIGH_BIN = 16, 56    # 500 Hz .. 1750 Hz: where the keypad tones live


class Frontend(nn.Module):
    """Log power spectrum of the band that carries the tones."""

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor):
        window = torch.hann_window(N_FFT, device=speech.device)
        spec = torch.stft(speech, N_FFT, HOP, window=window, return_complex=True)
        feats = spec.abs().pow(2)[:, LOW_BIN:HIGH_BIN].clamp_min(1e-8).log().transpose(1, 2)
        return feats, lengths // HOP + 1


class GlobalMVN(nn.Module):
    """Normalise with the mean and variance collect_stats wrote to `stats_file`."""

    def __init__(self, stats_file: str | None, dim: int) -> None:
        super().__init__()
        self.stats_file = stats_file
        mean, std, found = torch.zeros(dim), torch.ones(dim), False
        if stats_file and Path(stats_file).exists():
            stats = np.load(stats_file)
            mean = torch.from_numpy(stats["sum"] / stats["count"]).float()
            var = stats["sum_square"] / stats["count"] - (stats["sum"] / stats["count"]) ** 2
            std = torch.from_numpy(np.sqrt(np.maximum(var, 1e-10))).float()
            found = True
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.found = found

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.training and not self.found:
            raise ConfigError(f"feature statistics {self.stats_file} do not exist",
                              key="model.stats_file",
                              hint="run collect_stats first: stages=[collect_stats,train]")
        return (feats - self.mean) / self.std


class TonesCTC(nn.Module):
    def __init__(self, hidden: int = 64, num_layers: int = 1,
                 stats_file: str | None = None) -> None:
        super().__init__()
        dim = HIGH_BIN - LOW_BIN
        self.frontend = Frontend()
        self.normalize = GlobalMVN(stats_file, dim)
        self.encoder = nn.GRU(dim, hidden, num_layers=num_layers, batch_first=True,
                              bidirectional=True)
        self.output = nn.Linear(2 * hidden, NUM_TOKENS)
        self.ctc = nn.CTCLoss(blank=0, zero_infinity=True)

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **_) -> dict:
        feats, lengths = self.frontend(speech, speech_lengths)
        return {"feats": feats, "feats_lengths": lengths}

    def forward(self, speech, speech_lengths, text, text_lengths):
        feats, lengths = self.frontend(speech, speech_lengths)
        hidden, _ = self.encoder(self.normalize(feats))
        log_probs = self.output(hidden).log_softmax(-1)
        loss = self.ctc(log_probs.transpose(0, 1), text, lengths, text_lengths)
        stats = {"loss": loss.detach()}
        if not self.training:
            stats["ter"] = token_error_rate(log_probs, lengths, text, text_lengths)
        return loss, stats, torch.tensor(float(len(speech)))


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    best = log_probs.argmax(-1)
    out = []
    for row, n in zip(best, lengths.tolist(), strict=True):
        tokens = torch.unique_consecutive(row[:n]).tolist()
        out.append([t for t in tokens if t != 0])
    return out


def edit_distance(a: list[int], b: list[int]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def token_error_rate(log_probs, lengths, text, text_lengths) -> torch.Tensor:
    hyps = greedy_decode(log_probs, lengths)
    refs = [t[:n].tolist() for t, n in zip(text, text_lengths.tolist(), strict=True)]
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True))
    return torch.tensor(errors / max(1, sum(len(r) for r in refs)))
