"""Synthetic "speech": sequences of DTMF-like digit tones in noise.

Each utterance is 1 to `max_digits` digits; a digit is the sum of two sine
tones (a row and a column frequency, as on a telephone keypad) of random
length and loudness, separated by silences of random length, all in white
noise. The text is the digit sequence (tokens 1..10; 0 is the CTC blank).
Everything is generated from `seed`, so a dataset is the same on every rank,
in every job and after every requeue.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

SAMPLE_RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0)
# digits 1..9 then 0, laid out as on a keypad
KEYS = [(ROWS[i // 3], COLS[i % 3]) for i in range(9)] + [(ROWS[3], COLS[1])]
NUM_TOKENS = len(KEYS) + 1  # + blank


def synthesize(rng: np.random.Generator, max_digits: int, noise: float) -> tuple[np.ndarray, list]:
    digits = rng.integers(0, len(KEYS), size=rng.integers(1, max_digits + 1)).tolist()
    pieces = [np.zeros(int(rng.uniform(0.02, 0.1) * SAMPLE_RATE))]
    for digit in digits:
        n = int(rng.uniform(0.04, 0.1) * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        low, high = KEYS[digit]
        phase = rng.uniform(0, 2 * np.pi, size=2)
        tone = np.sin(2 * np.pi * low * t + phase[0]) + np.sin(2 * np.pi * high * t + phase[1])
        pieces.append(rng.uniform(0.2, 0.6) * tone)
        pieces.append(np.zeros(int(rng.uniform(0.02, 0.06) * SAMPLE_RATE)))
    audio = np.concatenate(pieces)
    audio = audio + rng.normal(0.0, noise, size=audio.shape)
    return audio.astype(np.float32), [d + 1 for d in digits]


class TonesDataset(Dataset):
    def __init__(self, num_utts: int = 1000, seed: int = 0, max_digits: int = 5,
                 noise: float = 0.3) -> None:
        rng = np.random.default_rng(seed)
        self.items = [synthesize(rng, max_digits, noise) for _ in range(num_utts)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        audio, text = self.items[index]
        return {"speech": torch.from_numpy(audio), "text": torch.tensor(text)}


def collate(items: list[dict]) -> dict:
    """Pad a list of utterances into a batch with lengths."""
    speech = torch.nn.utils.rnn.pad_sequence([i["speech"] for i in items], batch_first=True)
    text = torch.nn.utils.rnn.pad_sequence([i["text"] for i in items], batch_first=True)
    return {
        "speech": speech,
        "speech_lengths": torch.tensor([len(i["speech"]) for i in items]),
        "text": text,
        "text_lengths": torch.tensor([len(i["text"]) for i in items]),
    }
