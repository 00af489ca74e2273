"""Frozen result types shared by every stage.

Only numpy and plain Python values live here, never tensors, so results can cross threads,
be compared in tests and be written as JSON without touching torch. The bottom layer: a frame
(:class:`Frame`), what is read in it (:class:`DigitBox`, :class:`Reading`), what the frame loop
hands to every output (:class:`FrameResult`) and a source's end (:class:`SourceEnded`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the tracker's result types, for annotations only (tracking sits above this module)
    from recognizer.tracking import TrackEnded, TrackUpdate

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
            one after the other (:class:`recognizer.io.sources.VideoFolderSource`), else None.
            A new origin is a new scene: the pipeline ends the tracks of the previous file,
            and the logs name the file of each frame.
        original_size: ``(width, height)`` of the image in its file when it was downscaled on
            read (see :data:`recognizer.io.imageio.MAX_SIDE`), else None; outputs that report
            boxes map them back to the file's pixels (:meth:`scale`).
    """

    index: int
    timestamp: float
    image: np.ndarray = field(repr=False, compare=False)
    origin: str | None = field(default=None, kw_only=True)
    original_size: tuple[int, int] | None = field(default=None, kw_only=True)

    def scale(self) -> tuple[float, float] | None:
        """``(x, y)`` factors from this frame's pixels to its file's pixels; None when it was
        not downscaled."""
        if not self.original_size:
            return None
        h, w = self.image.shape[:2]
        return (self.original_size[0] / w, self.original_size[1] / h)


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


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, as the main thread receives it.

    Attributes:
        frame: the source frame (index, timestamp, BGR image).
        readings: house numbers read in it.
        update: the tracker's update for this frame (None when no tracker is used).
        captured_at: ``time.monotonic()`` when the capture thread got the frame.
        inferred_at: ``time.monotonic()`` when its batch finished inference.
        batch_size: frames in the batch it was processed with.
        infer_seconds: wall time of its batch's ``recognize`` call.
        timings: per-stage seconds of the batch, as reported by the recognizer's
            ``recognize_timed`` (empty for a recognizer without it).
        origin: ``frame.origin``: the file the frame came from, for sources made of several
            video files (else None).
        source: the name of the frame's source in a run of several sources; None with one.
        source_index: the position of that source in the run (0 with one source).
    """

    frame: Frame
    readings: list[Reading]
    update: TrackUpdate | None
    captured_at: float
    inferred_at: float
    batch_size: int
    infer_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    origin: str | None = None
    source: str | None = None
    source_index: int = 0


@dataclass(frozen=True)
class SourceEnded:
    """Handed out by :class:`Pipeline` after the last frame of a source.

    Attributes:
        name: the source's name; index: its position in the run.
        error: why it failed, one line (``"camera 'camera 2' was lost and did not come back
            within 30 s"``); None when it simply ended (end of file, ``max_frames``, the run
            stopped).
        exception: the exception behind ``error``.
        tracks: the tracks its end closed (the tracks still open at its last frame).
    """

    name: str
    index: int
    error: str | None = None
    exception: BaseException | None = None
    tracks: tuple[TrackEnded, ...] = ()


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Raise ``ValueError`` unless ``image`` is an ``(H, W, 3)`` uint8 array with H, W > 0."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} has shape {image.shape}; expected (H, W, 3) with H, W > 0")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} has dtype {image.dtype}; expected uint8")
    return image
