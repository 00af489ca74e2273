"""Where results go: a window, a video file, a frame dump, a JSON Lines log.

Each sink is a context manager whose ``close()`` finalizes its output (the video's last
fragment or index is written, files are closed), also when the run ends with an error or
Ctrl-C. Every error a sink meets while opening, writing or closing (a missing or read-only
folder, a full disk, ``/dev/full``) is raised as :class:`SinkError`, one line that says what
the output holds; a sink that failed refuses further writes and remembers why (``error``).

* JSON Lines go to the file one whole line per ``os.write``, without a buffer; a write that
  fails or comes up short (the disk filled) is undone by cutting the file back to the end of
  its last whole line, so a log is valid up to its last line at any moment.
* ``.mp4``, ``.m4v`` and ``.mov`` are H.264 in fragmented MP4 written with PyAV (FFmpeg's
  libx264) when ``av`` is installed: a fragment of about one second reaches the disk as soon as
  it is complete, so a process killed outright (SIGKILL, power loss, out of memory) leaves a
  video that plays up to its last second. Without ``av``, and for the other containers
  (``.avi``, ``.mkv``: they keep what was written when killed), OpenCV's writer is used.
* A video stops before its disk is full, while there is still room to finalize it
  (:data:`RESERVE_BYTES` plus two seconds of video and its index): OpenCV's writer does not
  report failed writes, and a file cut off by a full disk may not play at all.

All sinks run on the main thread (``cv2.imshow`` must).
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import math
import os
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from recognizer.sources import quiet_stderr as _quiet_stderr
from recognizer.tracking import ConfirmedEvent, TrackEnded, TrackUpdate
from recognizer.types import Reading

__all__ = [
    "AV_CONTAINERS",
    "CODECS_BY_EXTENSION",
    "RESERVE_BYTES",
    "DumpSink",
    "JsonlLog",
    "SinkError",
    "VideoSink",
    "WindowSink",
    "count_readable_frames",
    "event_record",
    "frame_record",
    "free_bytes",
    "rescale_reading",
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
"""FourCC codes tried in order with OpenCV's writer for each container; the first that really
writes is used (for the containers of :data:`AV_CONTAINERS`, only when PyAV is missing)."""

AV_CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
"""Containers written as H.264 in fragmented MP4 with PyAV when it is installed (FFmpeg muxer name)."""

AV_OPTIONS: dict[str, str] = {
    # A fragment (moof + mdat) per keyframe, no index to write at the end, each flushed at once.
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "flush_packets": "1",
}
"""Muxer options of the PyAV writer."""

X264_OPTIONS: dict[str, str] = {"tune": "zerolatency", "preset": "ultrafast"}
"""libx264 options: no frame held back in a lookahead (every frame reaches the file within a
second), and as cheap as the ``mp4v`` writer it replaces: 1.4 ms per 640x480 frame against 1.3,
with files a third smaller (``veryfast``: 2.6 ms, half the size; BENCHMARKS.md)."""

RESERVE_BYTES = 256 * 1024
"""Free space a video keeps on its disk (plus 2 s of video and 32 bytes per frame written)."""


def _reason(exc: BaseException) -> str:
    """An OSError's reason in words (``No space left on device``), else the exception's text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged process may still write on the disk holding ``folder`` (None: unknown)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _check_parent(path: Path, what: str) -> None:
    """The folder of ``path`` exists and a file can be created in it (tried, for a new file).

    ``os.access`` is not enough: root may "write" to ``/proc`` by its answer, and a read-only
    mount or a full inode table only shows when a file is made.
    """
    parent = _folder_of(path)
    if not parent.is_dir():
        raise SinkError(f"{what} '{path}': folder '{parent}' does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"{what} '{path}': folder '{parent}' is not writable")
    if os.path.lexists(path):
        return  # an existing file (or /dev/full): opening it tells
    try:
        fd, probe = tempfile.mkstemp(prefix=".recognizer-", suffix=".probe", dir=parent)
    except OSError as exc:
        raise SinkError(f"{what} '{path}': folder '{parent}' is not writable ({_reason(exc)})") from exc
    os.close(fd)
    with _suppress_oserror():
        os.unlink(probe)


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, OSError)


def _scale_box(box: Sequence[float], scale: tuple[float, float]) -> tuple[float, float, float, float]:
    sx, sy = scale
    x1, y1, x2, y2 = box
    return (float(x1) * sx, float(y1) * sy, float(x2) * sx, float(y2) * sy)


def rescale_reading(reading: Reading, scale: tuple[float, float]) -> Reading:
    """``reading`` with its boxes multiplied by ``scale`` = (x factor, y factor).

    Frames downscaled on read (see :data:`recognizer.sources.MAX_SIDE`) are read in their own
    pixels; this maps a reading back to the pixels of the file.
    """
    digits = tuple(dataclasses.replace(d, box=_scale_box(d.box, scale)) for d in reading.digits)
    return dataclasses.replace(reading, box=_scale_box(reading.box, scale), digits=digits)


def frame_record(
    frame_index: int,
    timestamp: float,
    readings: Sequence[Reading],
    update: TrackUpdate | None = None,
    origin: str | None = None,
    scale: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The JSON record of one frame: its readings and (if tracked) each reading's track and text.

    Args:
        scale: for a frame downscaled on read, (original width / frame width, original height
            / frame height); boxes are then written in the file's pixels and the record gains
            ``"scale"``, frame pixels per file pixel (multiply a box by it to draw it on the
            annotated frame of ``--save`` or ``--dump``).

    Returns:
        ``{"type": "frame", "frame", "timestamp", "readings": [...], "tracks": [...]}``; each
        reading dict gains ``track_id`` when ``update`` is given; ``"file"`` is added when the
        frame came from one of several files (``origin``).
    """
    if scale is not None and scale == (1.0, 1.0):
        scale = None
    items = []
    for i, r in enumerate(readings):
        d = (rescale_reading(r, scale) if scale is not None else r).to_dict()
        if update is not None and i < len(update.assignments):
            d["track_id"] = update.assignments[i]
        items.append(d)
    rec: dict[str, Any] = {"type": "frame", "frame": int(frame_index), "timestamp": round(float(timestamp), 4), "readings": items}
    if update is not None:
        tracks = [t.to_dict() for t in update.tracks if t.seen]
        if scale is not None:
            for t in tracks:
                t["box"] = [round(v, 2) for v in _scale_box(t["box"], scale)]
        rec["tracks"] = tracks
    if origin is not None:
        rec["file"] = origin
    if scale is not None:
        rec["scale"] = round(1.0 / max(scale), 6)
    return rec


def event_record(event: ConfirmedEvent | TrackEnded) -> dict[str, Any]:
    """The JSON record of a tracker event (``type`` is ``"confirmed"`` or ``"track_ended"``)."""
    d = event.to_dict()
    d["type"] = d.pop("event")
    return d


class JsonlWriter:
    """Appends JSON objects as lines: each line in one ``os.write``, so the file is valid at any moment.

    A write that fails or comes up short (a full disk) is undone: the file is cut back to the end
    of its last whole line, and :class:`SinkError` says how many lines it holds. After that,
    every write raises the same error (:attr:`error`).
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "log file") -> None:
        self.path = Path(path)
        self.what = what
        if self.path.is_dir():
            raise SinkError(f"{what} '{self.path}' is a folder; expected a file path")
        _check_parent(self.path, what)
        self._fd: int | None = None
        self._end = 0  # bytes of whole lines in the file
        self.lines = 0
        self.error: str | None = None
        self.reason: str | None = None  # why writing stopped, in words

    def open(self) -> None:
        if self._fd is not None:
            return
        if self.error is not None:
            raise SinkError(self.error)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise SinkError(f"{self.what} '{self.path}': cannot create it ({_reason(exc)})") from exc

    def write(self, record: dict[str, Any]) -> None:
        if self.error is not None:
            raise SinkError(self.error)
        self.open()
        assert self._fd is not None
        data = memoryview((json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8"))
        try:
            done = os.write(self._fd, data)
            while done < len(data):  # a short write: the rest gets one more try (a full disk fails it)
                n = os.write(self._fd, data[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
        except OSError as exc:
            self._cut_back()
            self._failed(f"cannot write ({_reason(exc)})", exc)
        self._end += len(data)
        self.lines += 1

    def _cut_back(self) -> None:
        """Remove a partly written line (regular files; a device or pipe cannot be cut)."""
        assert self._fd is not None
        try:
            if stat.S_ISREG(os.fstat(self._fd).st_mode) and os.fstat(self._fd).st_size != self._end:
                os.ftruncate(self._fd, self._end)
            os.lseek(self._fd, self._end, os.SEEK_SET)
        except OSError as exc:
            log.debug("cannot cut %s back to %d bytes: %s", self.path, self._end, exc)

    def _failed(self, reason: str, exc: BaseException | None = None) -> None:
        self.reason = reason
        self.error = f"{self.what} '{self.path}': {reason}; it holds {self.lines} whole lines"
        raise SinkError(self.error) from exc

    @property
    def failed(self) -> bool:
        return self.error is not None

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.close(fd)
        except OSError as exc:  # a network file system may report a lost write only here
            if self.error is None:
                self._failed(f"cannot finish the file ({_reason(exc)})", exc)

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
        scale: tuple[float, float] | None = None,
    ) -> None:
        self.write(frame_record(frame_index, timestamp, readings, update, origin, scale))
        self.frames += 1
        if update is not None:
            for ev in (*update.confirmed, *update.ended):
                self.write(event_record(ev))
                self.events += 1

    def status_line(self) -> str:
        """What the file holds, for the end of a run."""
        line = f"log: {self.lines} lines written to {self.path}"
        if self.reason is not None:
            line += f", whole lines only; writing stopped there: {self.reason}"
        return line


def count_readable_frames(path: str | os.PathLike[str], limit: int | None = None) -> int:
    """Frames of a video file that OpenCV can decode, from the start (at most ``limit``)."""
    with _quiet_stderr():
        cap = cv2.VideoCapture(str(path))
        n = 0
        try:
            while cap.isOpened() and (limit is None or n < limit) and cap.grab():
                n += 1
        finally:
            cap.release()
    return n


def _h264_module() -> Any:
    """PyAV when it is installed and has libx264, else None."""
    try:
        import av
    except ImportError:
        return None
    try:
        if "libx264" not in av.codecs_available:
            return None
    except Exception:  # noqa: BLE001 - an unusual build: use OpenCV
        return None
    return av


class _AvWriter:
    """H.264 (libx264) in fragmented MP4/MOV through PyAV: a fragment per keyframe, one per second.

    libx264 with 4:2:0 chroma needs an even width and height: an odd frame gets one replicated
    row or column.
    """

    codec = "h264"

    def __init__(self, av: Any, path: Path, container: str, fps: float, size: tuple[int, int]) -> None:
        self._av = av
        w, h = size
        self._pad = (w % 2, h % 2)
        self._container = av.open(str(path), mode="w", format=container, options=dict(AV_OPTIONS))
        try:
            rate = Fraction(fps).limit_denominator(1001)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = w + self._pad[0], h + self._pad[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = max(int(round(fps)), 1)  # a keyframe (a fragment) per second
            stream.options = dict(X264_OPTIONS)
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._time_base = 1 / rate
        self._n = 0

    def write(self, image_bgr: np.ndarray) -> None:
        if self._pad != (0, 0):
            image_bgr = cv2.copyMakeBorder(image_bgr, 0, self._pad[1], 0, self._pad[0], cv2.BORDER_REPLICATE)
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        frame.pts = self._n
        frame.time_base = self._time_base
        self._n += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()


class _CvWriter:
    """OpenCV's ``cv2.VideoWriter`` (which reports no write errors: see :class:`_SpaceGuard`)."""

    def __init__(self, writer: cv2.VideoWriter, codec: str) -> None:
        self._writer = writer
        self.codec = codec

    def write(self, image_bgr: np.ndarray) -> None:
        self._writer.write(image_bgr)

    def close(self) -> None:
        self._writer.release()


class _SpaceGuard:
    """Says when a growing video is about to fill its disk, while there is room to finalize it.

    Looks at the free space once a second while there is plenty, at every frame when it runs low.
    """

    PLENTY = 256 * 2**20

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.folder = _folder_of(path)
        self.fps = fps
        self._next = 0.0

    def need(self, frames: int) -> int:
        """Bytes to keep free: the reserve, two seconds of video (flushed at close) and its index."""
        try:
            size = os.stat(self.path).st_size
        except OSError:
            size = 0
        per_frame = size / frames if frames else 0.0
        return RESERVE_BYTES + 32 * frames + int(2.0 * max(self.fps, 1.0) * per_frame)

    def low(self, frames: int) -> int | None:
        """The free bytes when they are fewer than :meth:`need`, else None."""
        now = time.monotonic()
        if now < self._next:
            return None
        free = free_bytes(self.folder)
        if free is None:
            self._next = now + 60.0
            return None
        need = self.need(frames)
        if free < need:
            return free
        self._next = now + 1.0 if free > need + self.PLENTY else 0.0
        return None


class VideoSink:
    """``--save FILE``: annotated frames as a video at the input's frame rate.

    ``.mp4``/``.m4v``/``.mov`` are written with PyAV as H.264 in fragmented MP4 when it is
    installed (playable up to the last second even if the process is killed); otherwise, and
    for the other containers, the codec is probed when the sink is made: each FourCC for the
    file's extension is tried by writing a test frame to a scratch file, and the first that
    produces a file is used. The writer opens on the first frame (its size fixes the video's
    size; later frames of another size are resized).

    Writing stops with :class:`SinkError` when a write fails or the disk is nearly full; the
    file is still finalized by :meth:`close`, which then counts the frames that can be read
    (:attr:`readable`) for :meth:`status_line`.

    Args:
        path: output file; its folder must exist.
        fps: frames per second of the output (use the input's).
        codecs: FourCC codes to try with OpenCV instead of :data:`CODECS_BY_EXTENSION`.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, *, codecs: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        _check_parent(self.path, "video file")
        ext = self.path.suffix.lower()
        default_codecs = codecs is None
        if codecs is None:
            if ext not in CODECS_BY_EXTENSION:
                raise SinkError(
                    f"video file '{self.path}': unknown extension '{ext}'; expected one of {', '.join(CODECS_BY_EXTENSION)}"
                )
            codecs = CODECS_BY_EXTENSION[ext]
        if not fps or not math.isfinite(fps) or fps <= 0:
            raise SinkError(f"video file '{self.path}': fps={fps} is not a frame rate")
        self.fps = float(fps)
        self.codecs = tuple(codecs)
        self.codec: str | None = None
        self.size: tuple[int, int] | None = None  # (width, height)
        self.frames = 0
        self.error: str | None = None  # why writing stopped early (one line)
        self.reason: str | None = None
        self.readable: int | None = None  # frames that decode, counted at close after a failure
        self._writer: _AvWriter | _CvWriter | None = None
        self._guard = _SpaceGuard(self.path, self.fps)
        self._av = _h264_module() if default_codecs and ext in AV_CONTAINERS else None
        if self._av is not None and self._probe_av():
            self.codecs = ("h264", *self.codecs)
            self._working: list[str] = ["h264"]
            return
        self._av = None
        # Probe now (main thread, before any frame): a bad choice fails before the run starts.
        self._working = self._probe()
        if not self._working:
            raise SinkError(
                f"video file '{self.path}': none of the codecs {', '.join(self.codecs)} can be written here; "
                "try a .avi file (MJPG)"
            )

    def _probe_path(self) -> Path:
        return self.path.with_name(f".{self.path.stem}.probe{self.path.suffix}")

    def _probe_av(self) -> bool:
        """Whether PyAV really writes H.264 here (one small test frame to a scratch file)."""
        probe = self._probe_path()
        try:
            with _quiet_stderr():
                w = _AvWriter(self._av, probe, AV_CONTAINERS[self.path.suffix.lower()], self.fps, (64, 64))
                w.write(np.zeros((64, 64, 3), np.uint8))
                w.close()
            return probe.stat().st_size > 0
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to OpenCV's writer
            log.debug("PyAV cannot write %s here: %s", self.path.suffix, exc)
            return False
        finally:
            with _suppress_oserror():
                probe.unlink(missing_ok=True)

    def _probe(self) -> list[str]:
        """The codecs of :attr:`codecs` that really write a file here with OpenCV, in order.

        Each is tried on a scratch file next to the output with one small test frame. FFmpeg
        prints errors for encoders it cannot open (e.g. ``avc1`` without an H.264 encoder);
        they are expected here and kept off the terminal.
        """
        probe = self._probe_path()
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
            with _suppress_oserror():
                probe.unlink(missing_ok=True)
        return working

    def open(self, size: tuple[int, int]) -> None:
        """Open the writer for frames of ``size`` = (width, height) pixels."""
        if self._writer is not None:
            return
        if self._av is not None:
            try:
                with _quiet_stderr():
                    self._writer = _AvWriter(self._av, self.path, AV_CONTAINERS[self.path.suffix.lower()], self.fps, size)
            except Exception as exc:  # noqa: BLE001 - av raises its own OSError subclasses and ValueErrors
                raise SinkError(f"video file '{self.path}': cannot create it ({_reason(exc)})") from exc
            self.codec, self.size = self._writer.codec, size
            log.info("writing %s with PyAV (H.264, fragmented) at %.2f fps, %dx%d", self.path, self.fps, *size)
            return
        for code in self._working:
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*code), self.fps, size)
            if writer.isOpened():
                self._writer, self.codec, self.size = _CvWriter(writer, code), code, size
                log.info("writing %s with codec %s at %.2f fps, %dx%d", self.path, code, self.fps, *size)
                return
            writer.release()
        raise SinkError(f"video file '{self.path}': cannot open a writer for {size[0]}x{size[1]} frames with {', '.join(self._working)}")

    def _stop(self, cause: str, exc: BaseException | None = None) -> None:
        self.reason = f"writing stopped there: {cause}"
        self.error = f"video file '{self.path}': writing stopped after {self.frames} frames: {cause}"
        raise SinkError(self.error) from exc

    def write(self, image_bgr: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame."""
        if self.error is not None:
            raise SinkError(self.error)
        free = self._guard.low(self.frames)
        if free is not None:
            self._stop(f"the disk is full ({free // 1024} KiB left, kept to finalize the file)")
        h, w = image_bgr.shape[:2]
        if self._writer is None:
            self.open((w, h))
        assert self._writer is not None and self.size is not None
        if (w, h) != self.size:
            image_bgr = cv2.resize(image_bgr, self.size, interpolation=cv2.INTER_AREA)
        try:
            self._writer.write(image_bgr)
        except Exception as exc:  # noqa: BLE001 - PyAV's errors (OSError, FFmpegError) and any other
            self._stop(_reason(exc), exc)
        self.frames += 1

    def close(self) -> None:
        """Finalize the file (the last fragment, or the container's index): it plays after this.

        After a failure (of a write, or of finalizing) the frames that decode are counted
        (:attr:`readable`); a file without any is removed. Raises :class:`SinkError` when
        finalizing fails.
        """
        if self._writer is None:
            if self.error is not None and self.readable is None:
                self.readable = 0  # stopped before the first frame: no file was made
            return
        writer, self._writer = self._writer, None
        close_error: BaseException | None = None
        try:
            with _quiet_stderr():
                writer.close()
        except Exception as exc:  # noqa: BLE001 - reported below as one line
            close_error = exc
        known = self.error is not None  # already raised by write()
        if close_error is not None and self.error is None:
            self.reason = f"cannot finish the file ({_reason(close_error)})"
            self.error = f"video file '{self.path}': {self.reason}"
        if self.error is None and isinstance(writer, _CvWriter):
            # OpenCV's writer reports no errors: a disk that filled anyway (another program)
            # shows as a file with fewer frames than were written.
            free = free_bytes(self._guard.folder)
            if free is not None and free < RESERVE_BYTES:
                self.readable = count_readable_frames(self.path, self.frames)
                if self.readable < self.frames:
                    self.reason = "the disk filled up while it was written (OpenCV's writer does not report failed writes)"
                    self.error = f"video file '{self.path}': only {self.readable} of {self.frames} frames play: {self.reason}"
        if self.error is None:
            return
        if self.readable is None:
            self.readable = count_readable_frames(self.path, self.frames) if self.path.exists() else 0
        if self.readable == 0:
            with _suppress_oserror():
                self.path.unlink(missing_ok=True)
        if not known:
            raise SinkError(self.error) from close_error

    def status_line(self) -> str:
        """What the file holds, for the end of a run."""
        if self.error is None:
            if not self.frames:
                return f"video: no frames, {self.path} not written"
            return f"video: {self.frames} frames written to {self.path} ({self.codec})"
        if not self.frames:
            return f"video: no frames, {self.path} not written; {self.reason}"
        if not self.readable:
            return f"video: {self.frames} frames written, but none of them plays; {self.path} was removed; {self.reason}"
        if self.readable >= self.frames:
            return f"video: {self.frames} frames written to {self.path} ({self.codec}) and finalized, all of them play; {self.reason}"
        return f"video: {self.frames} frames written to {self.path} ({self.codec}), the first {self.readable} of them play; {self.reason}"

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DumpSink:
    """``--dump DIR``: annotated frames as images plus ``readings.jsonl`` (one line per frame).

    Layout: ``DIR/frames/000123.jpg`` (named by frame index) and ``DIR/readings.jsonl`` whose
    lines are :func:`frame_record` dicts with an extra ``"image"`` key (path relative to DIR).
    The folder is created; an existing non-empty folder is refused so nothing is overwritten.
    An image is written in one piece or not at all (a partial one is removed), and before its line.
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
        self.error: str | None = None
        self.reason: str | None = None

    def open(self) -> None:
        if self._lines is None:
            try:
                self.frames_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"dump folder '{self.directory}': cannot create it ({_reason(exc)})") from exc
            self._lines = JsonlWriter(self.lines_path, "dump file")
            self._lines.open()

    @property
    def lines(self) -> int:
        return self._lines.lines if self._lines is not None else 0

    def _write_image(self, path: Path, image_bgr: np.ndarray) -> None:
        ok, buf = cv2.imencode(self.image_ext, image_bgr, self._params)
        if not ok:
            raise OSError(errno.EINVAL, "the image cannot be encoded")
        data = memoryview(buf.reshape(-1))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            done = 0
            while done < len(data):
                n = os.write(fd, data[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
        except BaseException:
            os.close(fd)
            with _suppress_oserror():
                path.unlink()
            raise
        os.close(fd)

    def write(
        self,
        image_bgr: np.ndarray,
        frame_index: int,
        timestamp: float,
        readings: Sequence[Reading],
        update: TrackUpdate | None = None,
        origin: str | None = None,
        scale: tuple[float, float] | None = None,
    ) -> None:
        """Write the annotated image of a frame, then its line."""
        if self.error is not None:
            raise SinkError(self.error)
        self.open()
        name = f"{frame_index:06d}{self.image_ext}"
        path = self.frames_dir / name
        try:
            self._write_image(path, image_bgr)
        except OSError as exc:
            self.reason = f"cannot write frame image '{path}' ({_reason(exc)})"
            self.error = f"dump folder '{self.directory}': {self.reason}; it holds {self.frames} frames"
            raise SinkError(self.error) from exc
        self.frames += 1
        rec = frame_record(frame_index, timestamp, readings, update, origin, scale)
        rec["image"] = f"frames/{name}"
        assert self._lines is not None
        try:
            self._lines.write(rec)
        except SinkError:
            self.reason = self._lines.reason
            self.error = self._lines.error
            raise

    def close(self) -> None:
        if self._lines is not None:
            try:
                self._lines.close()
            except SinkError:
                self.reason, self.error = self._lines.reason, self._lines.error
                raise

    def status_line(self) -> str:
        """What the folder holds, for the end of a run."""
        line = f"dump: {self.frames} frames and {self.lines} lines written to {self.directory}"
        if self.reason is not None:
            line += f"; writing stopped there: {self.reason}"
        return line

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
        """Display a frame and handle keys; blocks while paused. Returns False to quit.

        Raises :class:`SinkError` when OpenCV cannot show it (the display went away).
        """
        try:
            return self._show(image_bgr, wait_ms)
        except cv2.error as exc:
            raise SinkError(f"window '{self.title}': cannot show the frame ({_reason(exc)})") from exc

    def _show(self, image_bgr: np.ndarray, wait_ms: int) -> bool:
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
