"""Synthetic footage for the benchmark and the tests: a panning wall with house-number plates.

* :func:`synthetic_frame` draws frame ``i`` of the clip described by a :class:`ClipSpec` (a
  moving textured background, a few plates with digits drawn by ``cv2.putText``);
* :func:`make_bench_clip` writes such a clip to a video file;
* :class:`SyntheticCamera` delivers the same frames in real time, as a live
  :class:`recognizer.io.sources.Source`.

Used by ``recognizer bench`` (:mod:`recognizer.apps.bench`), ``benchmarks/memory.py`` and the tests.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from recognizer.io.sources import Source
from recognizer.types import Frame

__all__ = [
    "ClipSpec",
    "SyntheticCamera",
    "make_bench_clip",
    "synthetic_frame",
]


@dataclass(frozen=True)
class ClipSpec:
    """What the synthetic footage looks like.

    Attributes:
        width, height: frame size in pixels.
        fps: frame rate of the clip (and of the synthetic camera).
        numbers: house numbers drawn on plates.
        speed: background and plate motion in pixels per frame.
        seed: texture seed (the same seed gives the same frames).
    """

    width: int = 640
    height: int = 480
    fps: float = 30.0
    numbers: tuple[str, ...] = ("221", "47", "1350")
    speed: float = 3.0
    seed: int = 0


_TEXTURES: dict[tuple[int, int, int], np.ndarray] = {}
_TEXTURE_LOCK = threading.Lock()


def _texture(spec: ClipSpec) -> np.ndarray:
    """A smooth random wall texture twice the frame size (cached per size and seed)."""
    key = (spec.width, spec.height, spec.seed)
    with _TEXTURE_LOCK:
        tex = _TEXTURES.get(key)
        if tex is None:
            rng = np.random.default_rng(spec.seed)
            h, w = spec.height * 2, spec.width * 2
            coarse = rng.integers(60, 200, size=(h // 16, w // 16, 3), dtype=np.uint8)
            tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
            fine = rng.normal(0, 12, size=(h, w, 1)).astype(np.int16)
            tex = np.clip(tex.astype(np.int16) + fine, 0, 255).astype(np.uint8)
            for y in range(0, h, 48):  # brick-like lines give the detector some edges to chew on
                cv2.line(tex, (0, y), (w - 1, y), (90, 90, 110), 2)
            _TEXTURES[key] = tex
        return tex


def synthetic_frame(index: int, spec: ClipSpec | None = None) -> np.ndarray:
    """Frame ``index`` of the synthetic clip: ``(height, width, 3)`` uint8 BGR.

    The background pans diagonally; each plate (light rectangle, dark digits) drifts across
    the frame at its own height, wrapping around.
    """
    spec = spec or ClipSpec()
    tex = _texture(spec)
    h, w = spec.height, spec.width
    ox = int(index * spec.speed) % w
    oy = int(index * spec.speed * 0.5) % h
    image = tex[oy : oy + h, ox : ox + w].copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k, text in enumerate(spec.numbers):
        scale = 1.6 + 0.4 * (k % 3)
        thick = 3 + k % 2
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        pw, ph = tw + 24, th + base + 24
        span = w + pw
        x = int((k * span / max(len(spec.numbers), 1) + index * spec.speed * (1 + 0.3 * k)) % span) - pw
        y = int(h * (0.15 + 0.3 * k)) % max(h - ph, 1)
        cv2.rectangle(image, (x, y), (x + pw, y + ph), (235, 235, 235), -1)
        cv2.rectangle(image, (x, y), (x + pw, y + ph), (40, 40, 40), 2)
        cv2.putText(image, text, (x + 12, y + 12 + th), font, scale, (30, 30, 30), thick, cv2.LINE_AA)
    return image


def make_bench_clip(path: str | os.PathLike[str], frames: int, spec: ClipSpec | None = None, *, fourcc: str = "mp4v") -> Path:
    """Write ``frames`` synthetic frames to a video file with OpenCV; returns the path.

    Raises:
        RuntimeError: OpenCV cannot write this container/codec here.
    """
    spec = spec or ClipSpec()
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write '{path}' with codec {fourcc}")
    try:
        for i in range(frames):
            writer.write(synthetic_frame(i, spec))
    finally:
        writer.release()
    return path


class SyntheticCamera(Source):
    """A fake live camera: synthetic frames delivered in real time at ``spec.fps``.

    ``read`` blocks until the next frame is due, like a real camera, and stamps it with
    ``time.monotonic()``. Used by the live benchmark and by tests (no device needed).

    Args:
        spec: footage description (``fps`` sets the delivery rate).
        frames: stop after this many frames (None: never).
        fail_at: raise ``RuntimeError`` when frame ``fail_at`` is due (tests of error paths).
    """

    kind = "camera"
    live = True

    def __init__(self, spec: ClipSpec | None = None, *, frames: int | None = None, fail_at: int | None = None) -> None:
        super().__init__("synthetic camera")
        self.spec = spec or ClipSpec()
        self.fps = self.spec.fps
        self.max_frames = frames
        self.fail_at = fail_at
        self._t0: float | None = None
        self._opened = False

    def open(self) -> None:
        self._opened = True
        self._t0 = None
        self._index = 0

    def read(self, should_stop: Callable[[], bool] | None = None) -> Frame | None:
        if not self._opened or (self.max_frames is not None and self._index >= self.max_frames):
            return None
        if self.fail_at is not None and self._index >= self.fail_at:
            raise RuntimeError(f"synthetic camera failure at frame {self._index}")
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = self._t0 + self._index / self.fps
        while True:
            now = time.monotonic()
            if now >= due:
                break
            if should_stop is not None and should_stop():
                return None
            time.sleep(min(due - now, 0.01))
        index = self._index
        self._index += 1
        return Frame(index=index, timestamp=time.monotonic(), image=synthetic_frame(index, self.spec))

    def close(self) -> None:
        self._opened = False

