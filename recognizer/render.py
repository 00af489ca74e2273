"""Drawing results on frames with OpenCV primitives (the notebook's visualisation)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from recognizer.preprocess import check_image
from recognizer.types import Reading

DIGIT_COLOUR = (0, 220, 0)  # BGR
NUMBER_COLOUR = (0, 200, 255)
TEXT_COLOUR = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _label(image: np.ndarray, text: str, x: int, y: int, scale: float, colour: tuple[int, int, int]) -> None:
    """Draw ``text`` on a filled box whose bottom-left corner is at (x, y), kept inside the image."""
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    h, w = image.shape[:2]
    x = int(min(max(x, 0), max(w - tw - 2, 0)))
    y = int(min(max(y, th + base + 2), h - 1))
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 2, y), colour, -1)
    cv2.putText(image, text, (x + 1, y - base - 1), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)


def draw_readings(image_bgr: np.ndarray, readings: Sequence[Reading], *, labels: Sequence[str] | None = None) -> np.ndarray:
    """Return a copy of ``image_bgr`` with digit boxes, digits and each number drawn.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR frame (left untouched).
        readings: what the recognizer read in this frame.
        labels: optional text per reading to show instead of its own ``text`` (e.g. a track's
            stable number and id).
    """
    out = check_image(image_bgr).copy()
    h = out.shape[0]
    scale = max(0.35, min(1.2, h / 900))
    for k, reading in enumerate(readings):
        for d in reading.digits:
            x1, y1, x2, y2 = (int(round(v)) for v in d.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), DIGIT_COLOUR, 1 if h < 300 else 2)
            _label(out, str(d.digit), x1, y1 - 1, scale * 0.8, DIGIT_COLOUR)
        x1, y1, x2, y2 = (int(round(v)) for v in reading.box)
        cv2.rectangle(out, (x1 - 2, y1 - 2), (x2 + 2, y2 + 2), NUMBER_COLOUR, 1)
        text = labels[k] if labels is not None and k < len(labels) else f"{reading.text} ({reading.confidence:.2f})"
        _label(out, text, x1, y2 + int(28 * scale) + 4, scale, NUMBER_COLOUR)
    return out
