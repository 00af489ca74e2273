"""Frozen result types shared by every stage.

Only numpy and plain Python values live here, never tensors, so results can cross threads,
be compared in tests and be written as JSON without touching torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
"""An ``(x1, y1, x2, y2)`` box in pixels of the original frame."""


def as_box(values: Any) -> Box:
    """Return ``values`` (4 numbers) as a tuple of Python floats in xyxy order."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


@dataclass(frozen=True)
class Frame:
    """One frame of a source.

    Attributes:
        index: 0-based position of the frame in its source (gaps mean dropped frames).
        timestamp: seconds; video time for files, monotonic time for live sources.
        image: ``(H, W, 3)`` uint8 BGR array, OpenCV's order.
        origin: the video file the frame came from, set by sources that play several videos
            one after the other (:class:`recognizer.sources.VideoFolderSource`), else None.
            A new origin is a new scene: the pipeline ends the tracks of the previous file,
            and the logs name the file of each frame.
    """

    index: int
    timestamp: float
    image: np.ndarray = field(repr=False, compare=False)
    origin: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class DigitBox:
    """One detected digit.

    Attributes:
        box: xyxy pixels in the original frame.
        digit: 0..9.
        det_score: detector confidence in [0, 1] that a digit is there.
        cls_score: classifier probability in [0, 1] of ``digit``.
    """

    box: Box
    digit: int
    det_score: float
    cls_score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 2) for v in self.box],
            "digit": self.digit,
            "det_score": round(self.det_score, 4),
            "cls_score": round(self.cls_score, 4),
        }


@dataclass(frozen=True)
class Reading:
    """One house number read in a frame.

    Attributes:
        text: the digits left to right, e.g. ``"221"``.
        confidence: geometric mean over digits of ``det_score * cls_score``, in [0, 1].
        box: xyxy pixels enclosing all its digits.
        digits: the digit boxes, in reading order.
        label: the house number with its letters when the text reader saw them (``"12A"``,
            ``"C-24"``); empty when the number is its digits alone.
        source: who read it: ``"digits"`` (the digit models), ``"text"`` (the text reader
            alone, on a region the digit models missed or misread) or ``"both"`` (the two
            agreed).
    """

    text: str
    confidence: float
    box: Box
    digits: tuple[DigitBox, ...]
    label: str = ""
    source: str = "digits"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "box": [round(v, 2) for v in self.box],
            "digits": [d.to_dict() for d in self.digits],
        }
        # The digit path alone writes exactly what it always wrote.
        if self.label:
            out["label"] = self.label
        if self.source != "digits":
            out["source"] = self.source
        return out
