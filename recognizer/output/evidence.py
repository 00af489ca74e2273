"""Evidence: a small JPEG of every confirmed house number, cut from the frame where its
reading was most confident, so a person can check the read.

* :func:`crop_view` cuts the number's box with :data:`CONTEXT` box heights of margin on every
  side (the plate, the door around it), downscaled to at most :data:`MAX_SIDE` pixels.
* :class:`EvidenceWriter` encodes and writes the JPEGs on a background thread (a bounded queue:
  the frame loop only hands over a crop), each under a temporary name renamed into place, so a
  picture under its final name is always whole.

The crops themselves are kept by :class:`recognizer.output.sinks.numbers.NumbersSink`, one per live
track (the tracker's :class:`~recognizer.tracking.BestView` says when a better one comes).
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from recognizer.output.sinks.base import SinkError, os_reason

__all__ = ["CONTEXT", "JPEG_QUALITY", "MAX_SIDE", "EvidenceWriter", "crop_view", "evidence_name"]

log = logging.getLogger(__name__)

CONTEXT = 1.0
"""Margin around the number's box, in box heights, on every side."""

MAX_SIDE = 360
"""Longest side of an evidence picture in pixels (larger crops are downscaled)."""

MIN_SIDE = 48
"""Shortest side a crop is widened to around its centre (a far, tiny number still shows its plate)."""

JPEG_QUALITY = 90


def crop_view(image: np.ndarray, box: tuple[float, float, float, float], *, context: float = CONTEXT,
              max_side: int = MAX_SIDE) -> np.ndarray:
    """The number in ``box`` (xyxy pixels of ``image``) with ``context`` box heights of margin,
    clipped to the frame: a copy, ``(h, w, 3)`` uint8 BGR, at most ``max_side`` pixels long."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    pad = context * max(y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w = max((x2 - x1) / 2 + pad, MIN_SIDE / 2)
    half_h = max((y2 - y1) / 2 + pad, MIN_SIDE / 2)
    left, right = max(int(math.floor(cx - half_w)), 0), min(int(math.ceil(cx + half_w)), w)
    top, bottom = max(int(math.floor(cy - half_h)), 0), min(int(math.ceil(cy + half_h)), h)
    if right <= left or bottom <= top:  # a box outside the frame: the frame's nearest corner
        left, top = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
        right, bottom = left + 1, top + 1
    crop = image[top:bottom, left:right]
    longest = max(crop.shape[:2])
    if longest > max_side:
        f = max_side / longest
        return cv2.resize(crop, (max(round(crop.shape[1] * f), 1), max(round(crop.shape[0] * f), 1)), interpolation=cv2.INTER_AREA)
    return crop.copy()  # its own memory: the frame can go


def evidence_name(track_id: int, text: str, source: str | None = None) -> str:
    """The picture's file name: ``000012-221.jpg`` (``left-000012-221.jpg`` for source ``left``)."""
    stem = f"{track_id:06d}-{text or 'none'}"
    return f"{source}-{stem}.jpg" if source else f"{stem}.jpg"


class EvidenceWriter:
    """Writes evidence JPEGs into ``folder`` on a background thread.

    Args:
        folder: where the pictures go; created (with its parents) on :meth:`open`.
        what: how messages name it (``--evidence folder 'DIR'``).
        queue_size: pictures waiting at most; :meth:`write` waits for room beyond that (a
            backlog means the disk is far slower than the frame loop, and a picture is never
            dropped).

    A write that fails (a full disk) stops the writer: the next :meth:`write` or :meth:`close`
    raises :class:`~recognizer.output.sinks.SinkError` saying how many pictures were written (``names``).
    """

    def __init__(self, folder: str | os.PathLike[str], *, what: str | None = None, queue_size: int = 64) -> None:
        self.folder = Path(folder)
        self.what = what or f"evidence folder '{self.folder}'"
        self.names: set[str] = set()  # pictures on disk (a better view replaces its number's picture)
        self.error: str | None = None
        self._queue: queue.Queue[tuple[str, np.ndarray] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        if self._thread is not None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"{self.what}: cannot create it ({os_reason(exc)})") from exc
        self._thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
        self._thread.start()

    def write(self, name: str, image: np.ndarray) -> None:
        """Queue ``image`` to be written as ``folder/name`` (replacing an earlier picture of
        that name once the new one is whole)."""
        if self.error is not None:
            raise SinkError(self.error)
        self.open()
        self._queue.put((name, image))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain: the main thread reports the error
            name, image = item
            final = self.folder / name
            tmp = self.folder / f".{name}.tmp"
            try:
                ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise OSError(f"cannot encode {name} as JPEG")
                with open(tmp, "wb") as fh:
                    fh.write(data.tobytes())
                os.replace(tmp, final)
                self.names.add(name)
            except Exception as exc:  # noqa: BLE001 - reported on the main thread as one line
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass
                self.error = f"{self.what}: cannot write {name} ({os_reason(exc)}); it holds {len(self.names)} pictures"

    def close(self) -> None:
        """Write what is queued, stop the thread; raise :class:`SinkError` if a write failed."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        if self.error is not None:
            raise SinkError(self.error)

    def status_line(self) -> str:
        return f"evidence: {len(self.names)} pictures written to {self.folder}"
