"""Frame sources: webcams, video files, folders or globs of images or videos, network streams.

Every source yields :class:`~recognizer.types.Frame` objects with a 0-based index and a
timestamp: video time for files and image folders (seconds from the start), monotonic time
(``time.monotonic()``) for cameras and streams. Sources know nothing about threads or queues;
whether frames may be dropped is the pipeline's business, decided by :attr:`Source.live`.

Live sources (cameras, streams) reconnect with exponential backoff when a read fails; the
frame index keeps counting across reconnects, so the gap shows in the data.

Image files are decoded by :mod:`recognizer.io.imageio` (:data:`MAX_SIDE` is defined there).
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import math
import os
import stat
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from recognizer.io.imageio import MAX_SIDE, as_bgr, bound_size, read_image
from recognizer.types import Frame

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_EXTENSIONS",
    "MAX_SIDE",
    "VIDEO_EXTENSIONS",
    "CameraSource",
    "ImageFolderSource",
    "ReconnectPolicy",
    "Source",
    "SourceError",
    "StreamSource",
    "VideoFileSource",
    "VideoFolderSource",
    "input_files",
    "open_source",
    "plausible_fps",
    "quiet_stderr",
    "sane_fps",
]

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""Frame rate assumed when the metadata gives none (0, NaN, absurd) and the user gave none."""

PLAUSIBLE_FPS = (1.0, 240.0)
"""Frame rates a file's or camera's metadata is believed within; others are treated as missing."""

SHORT_VIDEO = 0.9
"""A video whose decoding stops before this share of the frames its container declares (and
at least 2 frames short) is reported as damaged or truncated: the container's count is an
estimate for some formats, a few frames off, never half."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")

_STREAM_PREFIXES = ("http://", "https://", "rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://")


class SourceError(Exception):
    """A source could not be opened or was lost for good; the message is one user-facing line."""


def _frame(index: int, timestamp: float, image: np.ndarray) -> Frame:
    """A frame of ``image`` as BGR, downscaled to :data:`MAX_SIDE` when larger."""
    small, original = bound_size(as_bgr(image))
    if original is None:
        return Frame(index=index, timestamp=timestamp, image=small)
    return Frame(index=index, timestamp=timestamp, image=small, original_size=original)


_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a moment (unless logging is at DEBUG).

    OpenCV's C++ code and FFmpeg print warnings straight to fd 2 while they probe backends
    and codecs (a missing camera index yields a dozen lines); our own one-line error says what
    matters. With ``-v`` (DEBUG) everything is shown.
    """
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    with _QUIET_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            sys.stderr.flush()
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def sane_fps(value: float | None, fallback: float = DEFAULT_FPS) -> float:
    """Return ``value`` when it is a plausible frame rate (0 < fps <= 1000), else ``fallback``."""
    if value is None:
        return fallback
    try:
        v = float(value)
    except (TypeError, ValueError):
        return fallback
    if not math.isfinite(v) or v <= 0 or v > 1000:
        return fallback
    return v


def plausible_fps(value: float | None) -> float | None:
    """``value`` when it is a believable frame rate for metadata (:data:`PLAUSIBLE_FPS`), else None.

    A clip reporting 0.25 fps would be saved as a video 120 times too long; 0, NaN and such
    rates are all treated as "no frame rate".
    """
    v = sane_fps(value, -1.0)
    lo, hi = PLAUSIBLE_FPS
    return v if lo <= v <= hi else None


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source retries after the camera or stream goes away.

    Attributes:
        initial_delay: seconds before the first retry.
        max_delay: the delay doubles after each failed attempt up to this many seconds.
        timeout: give up (raise :class:`SourceError`) after this many seconds without a frame;
            ``None`` retries until the run is stopped.
    """

    initial_delay: float = 0.25
    max_delay: float = 4.0
    timeout: float | None = 30.0


class Source(ABC):
    """A sequence of frames.

    Use as a context manager (or call :meth:`open` / :meth:`close`); :meth:`read` returns the
    next frame or ``None`` at the end. :meth:`read` may block; a live source retrying a lost
    connection calls ``should_stop`` between attempts and returns ``None`` once it is true.

    Attributes:
        kind: ``"camera"``, ``"file"``, ``"files"`` (several videos), ``"images"`` or ``"stream"``.
        name: what the user gave, for messages.
        live: default drop policy; True keeps only the newest frame, False never drops.
        fps: frames per second (metadata, user value or :data:`DEFAULT_FPS`).
        frame_count: number of frames when known in advance (files, images), else None.
        reconnects: how many times the source reconnected.
    """

    kind: str = "source"
    live: bool = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.fps = DEFAULT_FPS
        self.frame_count: int | None = None
        self.reconnects = 0
        self._index = 0

    @abstractmethod
    def open(self) -> None:
        """Open the device/file; raises :class:`SourceError` with a one-line message."""

    @abstractmethod
    def read(self, should_stop: Callable[[], bool] | None = None) -> Frame | None:
        """The next frame, or ``None`` at the end (or when ``should_stop()`` became true)."""

    @abstractmethod
    def close(self) -> None:
        """Release the device/file; safe to call twice."""

    def describe(self) -> dict[str, Any]:
        """Plain values for logs and summaries."""
        return {"kind": self.kind, "name": self.name, "live": self.live, "fps": self.fps, "frame_count": self.frame_count}

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame


class _CaptureSource(Source):
    """Shared code of sources read with ``cv2.VideoCapture``."""

    def __init__(self, target: int | str, name: str, *, fps: float | None = None) -> None:
        super().__init__(name)
        self._target = target
        self._user_fps = fps
        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Lock()  # close() may come from another thread than read()

    def _open_capture(self) -> cv2.VideoCapture | None:
        cap = cv2.VideoCapture(self._target)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def close(self) -> None:
        # A capture thread stuck inside read() holds the lock; never wait on it forever (the
        # device is then released when the process ends).
        if not self._lock.acquire(timeout=2.0):
            log.warning("%s '%s' is still busy reading; not released", self.kind, self.name)
            return
        try:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
        finally:
            self._lock.release()


class VideoFileSource(_CaptureSource):
    """A video file read frame by frame; never drops, timestamps are video time in seconds."""

    kind = "file"
    live = False

    def __init__(self, path: str | os.PathLike[str], *, fps: float | None = None) -> None:
        super().__init__(str(path), str(path), fps=fps)
        self._last_ts = -1.0
        self._index_time = fps is not None
        self.warnings: list[str] = []  # what the run's summary should say about the file (a short read)

    def open(self) -> None:
        if not os.path.exists(self._target):  # type: ignore[arg-type]
            raise SourceError(f"video file '{self.name}' does not exist")
        if not os.path.isfile(self._target):  # type: ignore[arg-type]
            raise SourceError(f"video file '{self.name}' is not a regular file (a folder, pipe or device)")
        cap = self._open_capture()
        if cap is None:
            raise SourceError(f"cannot open video file '{self.name}': OpenCV has no decoder for it or it is damaged")
        meta_fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = sane_fps(self._user_fps, plausible_fps(meta_fps) or DEFAULT_FPS)
        if self._user_fps is None and plausible_fps(meta_fps) is None:
            log.warning("video '%s' reports fps=%s; assuming %.1f (set --fps to override)", self.name, meta_fps, self.fps)
        # Container times follow the same wrong rate: derive them from the index then too.
        self._index_time = self._user_fps is not None or plausible_fps(meta_fps) is None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None
        self._cap = cap
        self._index = 0
        self._last_ts = -1.0

    def read(self, should_stop: Callable[[], bool] | None = None) -> Frame | None:
        with self._lock:
            cap = self._cap
            if cap is None:
                return None
            ok, image = cap.read()
            if not ok or image is None:
                self._check_length()
                return None
            pos_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        index = self._index
        self._index += 1
        ts = pos_ms / 1000.0 if math.isfinite(pos_ms) and pos_ms >= 0 else -1.0
        if self._index_time or ts < 0 or (index > 0 and ts <= self._last_ts):
            # No usable container time (or the user fixed the rate): derive it from the index.
            ts = index / self.fps
        self._last_ts = ts
        return _frame(index, ts, image)

    def _check_length(self) -> None:
        """At the end of the file: warn (once) when decoding stopped far before the frame count
        the container declares, a damaged or truncated file that would otherwise look complete."""
        declared, decoded = self.frame_count, self._index
        if self.warnings or not declared or decoded >= SHORT_VIDEO * declared or declared - decoded < 2:
            return
        text = (f"video '{self.name}': decoding stopped after {decoded} of the {declared} frames its container declares "
                "(a damaged or truncated file)")
        self.warnings.append(text)
        log.warning("%s", text)


class _LiveCaptureSource(_CaptureSource):
    """A camera or stream: monotonic timestamps, reconnect with backoff when reads fail."""

    live = True

    def __init__(
        self, target: int | str, name: str, *, fps: float | None = None, reconnect: ReconnectPolicy | None = None
    ) -> None:
        super().__init__(target, name, fps=fps)
        self.reconnect_policy = reconnect or ReconnectPolicy()

    def _describe_open_failure(self) -> str:
        raise NotImplementedError

    def open(self) -> None:
        cap = self._open_capture()
        if cap is None:
            raise SourceError(self._describe_open_failure())
        self._configure(cap)
        self._cap = cap
        self._index = 0

    def _configure(self, cap: cv2.VideoCapture) -> None:
        # Ask the driver to keep as few frames as it can: we want the newest, not a backlog.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.fps = sane_fps(self._user_fps, plausible_fps(cap.get(cv2.CAP_PROP_FPS)) or DEFAULT_FPS)

    def read(self, should_stop: Callable[[], bool] | None = None) -> Frame | None:
        stop = should_stop or (lambda: False)
        policy = self.reconnect_policy
        lost_since: float | None = None
        delay = policy.initial_delay
        while not stop():
            with self._lock:
                cap = self._cap
                ok, image = (cap.read() if cap is not None else (False, None))
            if ok and image is not None:
                if lost_since is not None:
                    log.warning("%s '%s' is back after %.1f s", self.kind, self.name, time.monotonic() - lost_since)
                index = self._index
                self._index += 1
                return _frame(index, time.monotonic(), image)
            now = time.monotonic()
            if lost_since is None:
                lost_since = now
                log.warning("%s '%s' stopped delivering frames; reconnecting", self.kind, self.name)
            if policy.timeout is not None and now - lost_since > policy.timeout:
                raise SourceError(
                    f"{self.kind} '{self.name}' was lost and did not come back within {policy.timeout:g} s"
                )
            # Sleep in small steps so a stop request is honoured quickly.
            deadline = now + delay
            while not stop() and time.monotonic() < deadline:
                time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))
            if stop():
                break
            delay = min(delay * 2, policy.max_delay)
            with self._lock:
                if self._cap is not None:
                    self._cap.release()
                self._cap = self._open_capture()
                if self._cap is not None:
                    self._configure(self._cap)
                    self.reconnects += 1
        return None


class CameraSource(_LiveCaptureSource):
    """A local camera by index (``0`` is the first webcam)."""

    kind = "camera"

    def __init__(
        self,
        index: int,
        *,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        super().__init__(int(index), f"camera {index}", fps=fps, reconnect=reconnect)
        self.width = width
        self.height = height

    def _open_capture(self) -> cv2.VideoCapture | None:
        # On Linux ask V4L2 directly: CAP_ANY would also try FFmpeg and depth-camera backends,
        # each printing its own complaint when the index does not exist.
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        with quiet_stderr():
            cap = cv2.VideoCapture(self._target, api)
            if not cap.isOpened():
                cap.release()
                return None
        return cap

    def _describe_open_failure(self) -> str:
        return (
            f"cannot open camera {self._target}: no such device, no permission, or it is in use "
            "(try another index, or a video file / URL as SOURCE)"
        )

    def _configure(self, cap: cv2.VideoCapture) -> None:
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self._user_fps:
            cap.set(cv2.CAP_PROP_FPS, self._user_fps)
        super()._configure(cap)


class StreamSource(_LiveCaptureSource):
    """A network stream OpenCV's FFmpeg backend can open (http MJPEG, rtsp, ...)."""

    kind = "stream"

    def __init__(self, url: str, *, fps: float | None = None, reconnect: ReconnectPolicy | None = None) -> None:
        super().__init__(url, url, fps=fps, reconnect=reconnect)

    def _open_capture(self) -> cv2.VideoCapture | None:
        # Bounded open and read times, so a stalled server is noticed and reconnected to
        # instead of blocking the capture thread forever.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
        cap = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def _describe_open_failure(self) -> str:
        return f"cannot open stream '{self.name}': no answer, wrong address, or a format OpenCV cannot read"


class ImageFolderSource(Source):
    """Images from a folder (sorted by name) or a glob pattern, read one by one; never drops.

    Timestamps are ``index / fps`` (``fps`` defaults to :data:`DEFAULT_FPS`). Unreadable files
    are skipped with a warning and counted in :attr:`skipped`.
    """

    kind = "images"
    live = False

    def __init__(self, pattern_or_dir: str | os.PathLike[str], *, fps: float | None = None) -> None:
        super().__init__(str(pattern_or_dir))
        self.fps = sane_fps(fps)
        self.paths: list[Path] = []
        self.skipped = 0
        self._pos = 0

    def open(self) -> None:
        target = self.name
        if os.path.isfile(target):
            candidates = [Path(target)]
            where = f"file '{target}'"
        elif os.path.isdir(target):
            candidates = list(Path(target).iterdir())
            where = f"folder '{target}'"
        else:
            candidates = [Path(p) for p in glob.glob(target)]
            where = f"pattern '{target}'"
        named = [p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS]
        paths = _regular_files(named)
        self.skipped = len(named) - len(paths)
        if not paths:
            raise SourceError(
                f"{where} matches no images or videos (expected files ending in {', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})"
            )
        self.paths = sorted(paths, key=_natural_key)
        self.frame_count = len(self.paths)
        self._pos = 0
        self._index = 0

    def read(self, should_stop: Callable[[], bool] | None = None) -> Frame | None:
        while self._pos < len(self.paths):
            path = self.paths[self._pos]
            self._pos += 1
            image, why, original = read_image(path)
            if image is None:
                self.skipped += 1
                log.warning("skipping '%s': %s", path, why)
                continue
            index = self._index
            self._index += 1
            return Frame(index=index, timestamp=index / self.fps, image=image, original_size=original)
        return None

    def close(self) -> None:
        self._pos = len(self.paths)


class VideoFolderSource(Source):
    """Several video files played one after the other (a folder of dashcam footage); never drops.

    Frame indices and timestamps run on across files (each file's video time is offset by the
    length of the files before it); each frame's :attr:`~recognizer.types.Frame.origin` names
    the file it came from.
    Files that cannot be opened are skipped with a warning and counted in :attr:`skipped`.
    The frame rate is the first file's (what ``--save`` writes at).
    """

    kind = "files"
    live = False

    def __init__(self, paths: Sequence[str | os.PathLike[str]], name: str, *, fps: float | None = None) -> None:
        super().__init__(name)
        self.paths = [Path(p) for p in paths]
        self._user_fps = fps
        self.skipped = 0
        self._current: VideoFileSource | None = None
        self._current_path: str | None = None
        self._next = 0
        self._offset = 0.0
        self._last_ts = 0.0

    def open(self) -> None:
        if not self.paths:
            raise SourceError(f"'{self.name}' holds no video files")
        total = 0
        known = True
        for p in self.paths:
            cap = cv2.VideoCapture(str(p))
            n = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
            cap.release()
            if math.isfinite(n) and n > 0:
                total += int(n)
            else:
                known = False
        self.frame_count = total if known else None
        self._index, self._next, self._offset, self._last_ts = 0, 0, 0.0, 0.0
        if not self._advance():
            raise SourceError(f"none of the {len(self.paths)} video files in '{self.name}' can be opened")
        self.fps = self._current.fps if self._current is not None else sane_fps(self._user_fps)

    def _advance(self) -> bool:
        """Open the next readable file; False when there is none left."""
        if self._current is not None:
            self._current.close()
            self._current = None
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            src = VideoFileSource(path, fps=self._user_fps)
            try:
                src.open()
            except SourceError as exc:
                self.skipped += 1
                log.warning("skipping %s", exc)
                continue
            self._current = src
            self._current_path = str(path)
            return True
        return False

    def read(self, should_stop: Callable[[], bool] | None = None) -> Frame | None:
        while self._current is not None:
            frame = self._current.read(should_stop)
            if frame is not None:
                index = self._index
                self._index += 1
                ts = self._offset + frame.timestamp
                self._last_ts = ts
                return dataclasses.replace(frame, index=index, timestamp=ts, origin=self._current_path)
            # This file is over: the next one starts one frame period after its last frame.
            self._offset = self._last_ts + 1.0 / max(self._current.fps, 1e-6) if self._index else 0.0
            if not self._advance():
                return None
        return None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        self._next = len(self.paths)


def _regular_files(paths: Iterator[Path] | Sequence[Path], *, warn: bool = True) -> list[Path]:
    """The regular files of ``paths`` (symlinks followed); the others are skipped, with a
    warning unless ``warn`` is False.

    A FIFO named ``x.png`` would block the reader forever; a sub-folder named ``x.mp4`` is
    skipped silently.
    """
    out = []
    for p in paths:
        try:
            mode = os.stat(p).st_mode
        except OSError as exc:
            if warn:
                log.warning("skipping '%s': %s", p, exc.strerror or exc)
            continue
        if stat.S_ISREG(mode):
            out.append(p)
        elif warn and not stat.S_ISDIR(mode):
            log.warning("skipping '%s': not a regular file (a pipe, socket or device)", p)
    return out


def _scan(target: str, *, warn: bool = False) -> tuple[list[Path], list[Path]]:
    """Image files and video files in a folder or matching a glob pattern (natural order).

    ``warn``: say which entries named like videos are skipped (images are checked again, with
    warnings, when :class:`ImageFolderSource` opens).
    """
    entries = list(Path(target).iterdir()) if os.path.isdir(target) else [Path(p) for p in glob.glob(target)]
    images = _regular_files([p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS], warn=False)
    videos = _regular_files([p for p in entries if p.suffix.lower() in VIDEO_EXTENSIONS], warn=warn)
    return sorted(images, key=_natural_key), sorted(videos, key=_natural_key)


def input_files(spec: str | int) -> list[Path]:
    """The files a source spec would read (none for cameras and URLs), without opening them.

    Used to refuse an output path that is one of the inputs.
    """
    if isinstance(spec, int) or spec.strip().isdigit() or spec.lower().startswith(_STREAM_PREFIXES):
        return []
    if os.path.isdir(spec) or (not os.path.exists(spec) and any(ch in spec for ch in "*?[")):
        images, videos = _scan(spec)
        return images + videos
    return [Path(spec)]


def _folder_source(target: str, fps: float | None) -> Source:
    images, videos = _scan(target, warn=True)
    if videos and images:
        raise SourceError(
            f"'{target}' holds both images ({len(images)}) and videos ({len(videos)}); "
            f"pass a glob such as '{os.path.join(target, '*.mp4')}' to choose"
        )
    if videos:
        return VideoFolderSource(videos, target, fps=fps)
    return ImageFolderSource(target, fps=fps)


def _natural_key(path: Path) -> list[Any]:
    """Sort ``frame2.png`` before ``frame10.png``."""
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def open_source(
    spec: str | int,
    *,
    fps: float | None = None,
    reconnect: ReconnectPolicy | None = None,
) -> Source:
    """Build the right source for what the user typed (not opened yet).

    Args:
        spec: a camera index (``0`` or ``"0"``), a URL (``http://``, ``rtsp://``, ...), a
            folder or glob pattern of images or of videos, an image file or a video file.
        fps: override the frame rate (for images, files with bad metadata, cameras).
        reconnect: retry policy for cameras and streams.

    Raises:
        SourceError: when ``spec`` names nothing that exists, with what would be right.
    """
    if fps is not None and sane_fps(fps, -1.0) < 0:
        raise SourceError(f"--fps {fps} is not a frame rate; expected a number in (0, 1000]")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), fps=fps, reconnect=reconnect)
    text = str(spec)
    if text.lower().startswith(_STREAM_PREFIXES):
        return StreamSource(text, fps=fps, reconnect=reconnect)
    if os.path.isdir(text):
        return _folder_source(text, fps)
    if os.path.exists(text) and not os.path.isfile(text):
        raise SourceError(f"source '{text}' is not a regular file (a pipe, socket or device); expected a video or image file")
    if os.path.isfile(text):
        if Path(text).suffix.lower() in IMAGE_EXTENSIONS:
            return ImageFolderSource(text, fps=fps)
        return VideoFileSource(text, fps=fps)
    if any(ch in text for ch in "*?["):
        return _folder_source(text, fps)
    raise SourceError(
        f"source '{text}' not found: expected a camera index (0, 1, ...), a video file, "
        "a folder or glob of images or videos, or a stream URL (http://, rtsp://)"
    )
