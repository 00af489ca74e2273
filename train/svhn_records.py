"""The record of one annotated SVHN image and the error of a bad SVHN file, shared by the
readers (:mod:`train.svhn`) and the writers (:mod:`train.svhn_write`); import them from
``train.svhn``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BOX_FIELDS = ("left", "top", "width", "height")
"""digitStruct's box fields in the order of :attr:`SVHNImage.boxes` columns."""


class SVHNFormatError(ValueError):
    """A file is missing, truncated or not in the SVHN format it should be in.

    The message always names the file and what is wrong with it.
    """


@dataclass(frozen=True, eq=False)
class SVHNImage:
    """One annotated image of an SVHN split.

    Attributes:
        name: image file name relative to the split folder, e.g. ``"1.png"`` or
            ``"train/1.png"`` (labels.json).
        boxes: ``(N, 4)`` float32 ``[left, top, width, height]`` pixels, unclipped, exactly as
            in digitStruct.mat (a box may start at -1 or run past the image).
        digits: ``(N,)`` int64 digits 0..9 (SVHN's raw 10 already converted to 0), in the
            file's order (left to right in SVHN).
    """

    name: str
    boxes: np.ndarray
    digits: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.array(self.boxes, dtype=np.float32).reshape(-1, 4)
        digits = np.array(self.digits, dtype=np.int64).reshape(-1)
        if len(boxes) != len(digits):
            raise ValueError(
                f"SVHNImage {self.name!r}: {len(boxes)} boxes but {len(digits)} digits; expected one digit per box"
            )
        if len(digits) and (digits.min() < 0 or digits.max() > 9):
            raise ValueError(f"SVHNImage {self.name!r}: digits {digits.tolist()} not all in 0..9")
        boxes.setflags(write=False)
        digits.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "digits", digits)

    def __len__(self) -> int:
        return len(self.digits)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SVHNImage):
            return NotImplemented
        return (
            self.name == other.name
            and np.array_equal(self.boxes, other.boxes)
            and np.array_equal(self.digits, other.digits)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.boxes.tobytes(), self.digits.tobytes()))

    @property
    def xyxy(self) -> np.ndarray:
        """``(N, 4)`` float32 ``[x1, y1, x2, y2]`` boxes (unclipped)."""
        b = self.boxes
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1).astype(np.float32)

    @property
    def text(self) -> str:
        """The house number as a string, digits in file order (e.g. ``"19"``)."""
        return "".join(str(int(d)) for d in self.digits)


def short_error(exc: BaseException) -> str:
    """One line from an exception (h5py's messages can span lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def scipy_io() -> Any:
    try:
        import scipy.io
    except ImportError:
        raise ImportError(
            "SVHN's 32x32 .mat files need scipy: pip install 'recognizer[train]' (or pip install scipy)"
        ) from None
    return scipy.io
