"""SmallCNN: the notebook's digit reader (3 conv layers with BatchNorm and ReLU, pooling, linear)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from recognizer.models.labels import NUM_DIGITS

DEFAULT_INPUT_MEAN = 0.5
DEFAULT_INPUT_STD = 0.25
"""Input normalisation of every classifier trained so far: ``(x - 0.5) / 0.25`` per channel
of ``x`` in [0, 1]. A checkpoint written before the values were stored in its config was
trained with these, and is rebuilt with them."""


class SmallCNN(nn.Module):
    """Classify 32x32 RGB digit crops into 10 classes (11 with the "not a digit" class).

    Input: ``(N, 3, 32, 32)`` float32 RGB in [0, 1], as :func:`recognizer.models.preprocess.crops_to_tensor`
    gives it. The model normalises it itself, ``(x - input_mean) / input_std``, so the values
    it was trained with travel in its config (and its checkpoint) instead of living in the
    code that feeds it.
    Output: ``(N, num_classes)`` logits.

    Three conv -> BatchNorm -> ReLU blocks (the first two followed by 2x2 max pooling), an
    adaptive average pool to ``pool x pool`` and a linear layer, as in the original notebook.
    ``pool=2`` keeps a little of the layout (top/bottom halves tell 6 from 9 apart better than
    a single global average).
    """

    def __init__(
        self,
        num_classes: int = NUM_DIGITS,
        channels: tuple[int, int, int] = (32, 64, 128),
        pool: int = 2,
        dropout: float = 0.2,
        input_mean: float = DEFAULT_INPUT_MEAN,
        input_std: float = DEFAULT_INPUT_STD,
    ) -> None:
        super().__init__()
        if len(channels) != 3 or any(int(c) <= 0 for c in channels):
            raise ValueError(f"channels={channels!r}; expected three positive widths")
        input_mean, input_std = float(input_mean), float(input_std)
        if not math.isfinite(input_mean) or not (math.isfinite(input_std) and input_std > 0):
            raise ValueError(f"input_mean={input_mean!r}, input_std={input_std!r}; expected finite numbers, input_std > 0")
        c1, c2, c3 = (int(c) for c in channels)
        self.config: dict[str, Any] = {
            "num_classes": int(num_classes),
            "channels": [c1, c2, c3],
            "pool": int(pool),
            "dropout": float(dropout),
            "input_mean": input_mean,
            "input_std": input_std,
        }
        # Plain floats, not buffers: the state_dict (and so every checkpoint) is unchanged.
        self.input_mean = input_mean
        self.input_std = input_std
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c3 * pool * pool, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean) / self.input_std
        x = self.pool(self.features(x))
        return self.fc(self.dropout(torch.flatten(x, 1)))
