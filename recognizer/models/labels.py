"""Every label convention of the project, in one place.

* SVHN's raw files (digitStruct.mat, *_32x32.mat) use label 10 for the digit 0.
* The classifier predicts class ``k`` for digit ``k`` (0..9). A classifier may have an 11th
  class, :data:`NOT_DIGIT_CLASS` (10): "this crop is not a digit" (a door edge, a pole, a cut-off
  neighbour). In crop files (``.npz``) such crops carry the label :data:`NOT_DIGIT_LABEL` (-1),
  since 10 already means the digit 0 in SVHN's raw files.
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

NOT_DIGIT_LABEL = -1
NOT_DIGIT_CLASS = NUM_DIGITS
CLASSIFIER_NAMES_WITH_NOT_DIGIT: tuple[str, ...] = DIGIT_NAMES + ("not-digit",)


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


def crop_labels_to_classes(labels: np.ndarray) -> np.ndarray:
    """Crop-file labels (raw SVHN 1..10, digits 0..9, or -1 "not a digit") to classifier classes.

    Returns:
        ``(N,)`` int64: digits 0..9, and :data:`NOT_DIGIT_CLASS` (10) for -1.

    Raises:
        ValueError: a label outside -1..10.
    """
    arr = np.asarray(labels).astype(np.int64).reshape(-1)
    not_digit = arr == NOT_DIGIT_LABEL
    out = np.full(arr.shape, NOT_DIGIT_CLASS, dtype=np.int64)
    if (~not_digit).any():
        try:
            out[~not_digit] = svhn_to_digits(arr[~not_digit])
        except ValueError as exc:
            raise ValueError(f"{exc}, or -1 for a crop that is not a digit") from None
    return out


def label_map(classifier_classes: int = NUM_DIGITS) -> dict[str, list[str]]:
    """The label map stored in every checkpoint (11 classifier classes: with "not-digit")."""
    names = CLASSIFIER_NAMES_WITH_NOT_DIGIT if classifier_classes > NUM_DIGITS else DIGIT_NAMES
    return {"classifier": list(names), "detector": list(DETECTOR_NAMES)}
