"""Helpers shared by tests that check written video files."""
from __future__ import annotations

from pathlib import Path

import cv2


def count_frames(path: Path) -> tuple[int, float]:
    """Decode ``path`` with OpenCV to the end; return ``(frames read, fps from its metadata)``."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not a playable video"
    n = 0
    while cap.read()[0]:
        n += 1
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, fps


def frames_of(pipe):
    """The frame results of a pipeline's iteration (it also hands out each source's end)."""
    from recognizer.types import FrameResult

    return (item for item in pipe if isinstance(item, FrameResult))
