"""Where results go: a window, a video file, a frame dump, a JSON Lines log.

Each sink is a context manager whose ``close()`` finalizes its output (the video's index is
written, files are flushed and closed), also when the run ends with an error or Ctrl-C. JSON
Lines are written one whole line at a time and flushed, so a log cut short is still valid up to
its last line. All sinks run on the main thread (``cv2.imshow`` must).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from recognizer.sources import quiet_stderr as _quiet_stderr
from recognizer.tracking import ConfirmedEvent, TrackEnded, TrackUpdate
from recognizer.types import Reading

__all__ = [
    "CODECS_BY_EXTENSION",
    "DumpSink",
    "JsonlLog",
    "SinkError",
    "VideoSink",
    "WindowSink",
    "event_record",
    "frame_record",
]

log = logging.getLogger(__name__)


class SinkError(Exception):
    """An output cannot be created or written; the message is one user-facing line."""


CODECS_BY_EXTENSION: dict[str, tuple[str, ...]] = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v", "MJPG"),
    ".avi": ("MJPG", "XVID", "mp4v"),
    ".mkv": ("avc1", "XVID", "MJPG", "mp4v"),
    ".webm": ("VP90", "VP80"),
}
"""FourCC codes tried in order for each container; the first that really writes is used."""


def frame_record(
    frame_index: int,
    timestamp: float,
    readings: Sequence[Reading],
    update: TrackUpdate | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """The JSON record of one frame: its readings and (if tracked) each reading's track and text.

    Returns:
        ``{"type": "frame", "frame", "timestamp", "readings": [...], "tracks": [...]}``; each
        reading dict gains ``track_id`` when ``update`` is given; ``"file"`` is added when the
        frame came from one of several files (``origin``).
    """
    items = []
    for i, r in enumerate(readings):
        d = r.to_dict()
        if update is not None and i < len(update.assignments):
            d["track_id"] = update.assignments[i]
        items.append(d)
    rec: dict[str, Any] = {"type": "frame", "frame": int(frame_index), "timestamp": round(float(timestamp), 4), "readings": items}
    if update is not None:
        rec["tracks"] = [t.to_dict() for t in update.tracks if t.seen]
    if origin is not None:
        rec["file"] = origin
    return rec


def event_record(event: ConfirmedEvent | TrackEnded) -> dict[str, Any]:
    """The JSON record of a tracker event (``type`` is ``"confirmed"`` or ``"track_ended"``)."""
    d = event.to_dict()
    d["type"] = d.pop("event")
    return d


def _check_parent(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{what} '{path}': folder '{parent}' does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"{what} '{path}': folder '{parent}' is not writable")


class JsonlWriter:
    """Appends JSON objects as lines, flushing after each so the file is valid at any moment."""

    def __init__(self, path: str | os.PathLike[str], what: str = "log file") -> None:
        self.path = Path(path)
        _check_parent(self.path, what)
        if self.path.is_dir():
            raise SinkError(f"{what} '{self.path}' is a folder; expected a file path")
        self._fh: IO[str] | None = None
        self.lines = 0

    def open(self) -> None:
        if self._fh is None:
            self._fh = open(self.path, "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self.open()
        assert self._fh is not None
        # One write call per line, then flush: an interrupted run leaves only whole lines.
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlLog(JsonlWriter):
    """``--log FILE``: one line per frame (readings, tracks) and per tracker event."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "log file")
        self.frames = 0
        self.events = 0

    def write_frame(
        self,
        frame_index: int,
        timestamp: float,
        readings: Sequence[Reading],
        update: TrackUpdate | None,
        origin: str | None = None,
    ) -> None:
        self.write(frame_record(frame_index, timestamp, readings, update, origin))
        self.frames += 1
        if update is not None:
            for ev in (*update.confirmed, *update.ended):
                self.write(event_record(ev))
                self.events += 1


class VideoSink:
    """``--save FILE``: annotated frames as a video at the input's frame rate.

    The codec is probed when the sink is made: each FourCC for the file's extension is tried by
    writing a test frame to a scratch file, and the first that produces a file is used. The
    writer opens on the first frame (its size fixes the video's size; later frames of another
    size are resized).

    Args:
        path: output file; its folder must exist.
        fps: frames per second of the output (use the input's).
        codecs: FourCC codes to try instead of :data:`CODECS_BY_EXTENSION`.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, *, codecs: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        _check_parent(self.path, "video file")
        ext = self.path.suffix.lower()
        if codecs is None:
            if ext not in CODECS_BY_EXTENSION:
                raise SinkError(
                    f"video file '{self.path}': unknown extension '{ext}'; expected one of {', '.join(CODECS_BY_EXTENSION)}"
                )
            codecs = CODECS_BY_EXTENSION[ext]
        if not fps or fps <= 0:
            raise SinkError(f"video file '{self.path}': fps={fps} is not a frame rate")
        self.fps = float(fps)
        self.codecs = tuple(codecs)
        self.codec: str | None = None
        self.size: tuple[int, int] | None = None  # (width, height)
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        # Probe now (main thread, before any frame): a bad choice fails before the run starts.
        self._working = self._probe()
        if not self._working:
            raise SinkError(
                f"video file '{self.path}': none of the codecs {', '.join(self.codecs)} can be written here; "
                "try a .avi file (MJPG)"
            )

    def _probe(self) -> list[str]:
        """The codecs of :attr:`codecs` that really write a file here, in order.

        Each is tried on a scratch file next to the output with one small test frame. FFmpeg
        prints errors for encoders it cannot open (e.g. ``avc1`` without an H.264 encoder);
        they are expected here and kept off the terminal.
        """
        probe = self.path.with_name(f".{self.path.stem}.probe{self.path.suffix}")
        test = np.zeros((64, 64, 3), dtype=np.uint8)
        working: list[str] = []
        try:
            with _quiet_stderr():
                for code in self.codecs:
                    w = cv2.VideoWriter(str(probe), cv2.VideoWriter_fourcc(*code), self.fps, (64, 64))
                    ok = w.isOpened()
                    if ok:
                        w.write(test)
                    w.release()
                    if ok and probe.exists() and probe.stat().st_size > 0:
                        working.append(code)
                    else:
                        log.debug("codec %s does not work for %s", code, self.path.suffix)
                    probe.unlink(missing_ok=True)
        finally:
            probe.unlink(missing_ok=True)
        return working

    def open(self, size: tuple[int, int]) -> None:
        """Open the writer for frames of ``size`` = (width, height) pixels."""
        if self._writer is not None:
            return
        for code in self._working:
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*code), self.fps, size)
            if writer.isOpened():
                self._writer, self.codec, self.size = writer, code, size
                log.info("writing %s with codec %s at %.2f fps, %dx%d", self.path, code, self.fps, *size)
                return
            writer.release()
        raise SinkError(f"video file '{self.path}': cannot open a writer for {size[0]}x{size[1]} frames with {', '.join(self._working)}")

    def write(self, image_bgr: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame."""
        h, w = image_bgr.shape[:2]
        if self._writer is None:
            self.open((w, h))
        assert self._writer is not None and self.size is not None
        if (w, h) != self.size:
            image_bgr = cv2.resize(image_bgr, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(image_bgr)
        self.frames += 1

    def close(self) -> None:
        """Finalize the file (writes the container's index; the video is playable after)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DumpSink:
    """``--dump DIR``: annotated frames as images plus ``readings.jsonl`` (one line per frame).

    Layout: ``DIR/frames/000123.jpg`` (named by frame index) and ``DIR/readings.jsonl`` whose
    lines are :func:`frame_record` dicts with an extra ``"image"`` key (path relative to DIR).
    The folder is created; an existing non-empty folder is refused so nothing is overwritten.
    """

    def __init__(self, directory: str | os.PathLike[str], *, image_ext: str = ".jpg", jpeg_quality: int = 90) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise SinkError(f"dump folder '{self.directory}' is a file; expected a folder path")
        if self.directory.is_dir() and any(self.directory.iterdir()):
            raise SinkError(f"dump folder '{self.directory}' is not empty; choose a new folder so nothing is overwritten")
        _check_parent(self.directory.absolute(), "dump folder")
        if image_ext not in (".jpg", ".png"):
            raise SinkError(f"dump image format '{image_ext}'; expected .jpg or .png")
        self.image_ext = image_ext
        self.frames_dir = self.directory / "frames"
        self.lines_path = self.directory / "readings.jsonl"
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_ext == ".jpg" else []
        self._lines: JsonlWriter | None = None
        self.frames = 0

    def open(self) -> None:
        if self._lines is None:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
            self._lines = JsonlWriter(self.lines_path, "dump file")
            self._lines.open()

    @property
    def lines(self) -> int:
        return self._lines.lines if self._lines is not None else 0

    def write(
        self,
        image_bgr: np.ndarray,
        frame_index: int,
        timestamp: float,
        readings: Sequence[Reading],
        update: TrackUpdate | None = None,
        origin: str | None = None,
    ) -> None:
        """Write the annotated image of a frame, then its line."""
        self.open()
        name = f"{frame_index:06d}{self.image_ext}"
        path = self.frames_dir / name
        if not cv2.imwrite(str(path), image_bgr, self._params):
            raise SinkError(f"cannot write frame image '{path}'")
        self.frames += 1
        rec = frame_record(frame_index, timestamp, readings, update, origin)
        rec["image"] = f"frames/{name}"
        assert self._lines is not None
        self._lines.write(rec)

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()

    def __enter__(self) -> DumpSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def display_available() -> str | None:
    """None when a window can be opened here, else the reason (one line)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "--show needs a display but DISPLAY is not set; use --save or --dump on a machine without a screen"
    return None


class WindowSink:
    """``--show``: a window with the annotated frames. ``q``/Esc quits, space pauses/resumes.

    Call :meth:`show` once per frame on the main thread; it returns False when the user asked
    to quit (key or window closed).
    """

    QUIT_KEYS = (ord("q"), ord("Q"), 27)
    PAUSE_KEY = ord(" ")

    def __init__(self, title: str = "recognizer") -> None:
        reason = display_available()
        if reason:
            raise SinkError(reason)
        self.title = title
        self.paused = False
        self.quit = False
        self.frames = 0
        self._open = False

    def open(self) -> None:
        if not self._open:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            self._open = True

    def _closed_by_user(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def _handle_key(self, key: int) -> None:
        if key < 0:
            return
        key &= 0xFF
        if key in self.QUIT_KEYS:
            self.quit = True
        elif key == self.PAUSE_KEY:
            self.paused = not self.paused

    def show(self, image_bgr: np.ndarray, *, wait_ms: int = 1) -> bool:
        """Display a frame and handle keys; blocks while paused. Returns False to quit."""
        self.open()
        cv2.imshow(self.title, image_bgr)
        self.frames += 1
        self._handle_key(cv2.waitKey(max(wait_ms, 1)))
        while self.paused and not self.quit:
            self._handle_key(cv2.waitKey(50))
            if self._closed_by_user():
                self.quit = True
        if not self.quit and self._closed_by_user():
            self.quit = True
        return not self.quit

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False

    def __enter__(self) -> WindowSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
