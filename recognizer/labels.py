"""Every label convention of the project, in one place.

* SVHN's raw files (digitStruct.mat, *_32x32.mat) use label 10 for the digit 0.
* The classifier predicts class ``k`` for digit ``k`` (0..9).
* The detector has two classes: 0 is background (torchvision's convention), 1 is "a digit".
"""
from __future__ import annotations

import numpy as np

NUM_DIGITS = 10
DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(NUM_DIGITS))

DETECTOR_BACKGROUND = 0
DETECTOR_DIGIT = 1
DETECTOR_NUM_CLASSES = 2
DETECTOR_NAMES: tuple[str, ...] = ("background", "digit")

SVHN_ZERO_LABEL = 10


def svhn_to_digit(label: int | float) -> int:
    """Map a raw SVHN label (1..10, 10 meaning 0) or an already-converted digit to 0..9.

    Raises:
        ValueError: when the label is not one of 0..10.
    """
    value = int(label)
    if value != label or not 0 <= value <= SVHN_ZERO_LABEL:
        raise ValueError(f"SVHN label {label!r} is not a digit label; expected an integer 0..10")
    return 0 if value == SVHN_ZERO_LABEL else value


def svhn_to_digits(labels: np.ndarray) -> np.ndarray:
    """Vectorised :func:`svhn_to_digit` for an array of raw labels; returns int64 digits 0..9."""
    arr = np.asarray(labels).astype(np.int64).reshape(-1)
    bad = (arr < 0) | (arr > SVHN_ZERO_LABEL)
    if bad.any():
        raise ValueError(f"SVHN label {int(arr[bad][0])} is not a digit label; expected 0..10")
    arr = arr.copy()
    arr[arr == SVHN_ZERO_LABEL] = 0
    return arr


def label_map() -> dict[str, list[str]]:
    """The label map stored in every checkpoint."""
    return {"classifier": list(DIGIT_NAMES), "detector": list(DETECTOR_NAMES)}
