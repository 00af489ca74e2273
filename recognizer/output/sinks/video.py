"""``--save``: the annotated video (PyAV's fragmented H.264 MP4, or OpenCV's writer)."""
from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from recognizer.output.sinks.base import SinkError, check_parent, folder_of, free_bytes, os_reason, suppress_oserror

if TYPE_CHECKING:
    from recognizer.types import FrameResult
from recognizer.io.sources import quiet_stderr as _quiet_stderr

log = logging.getLogger(__name__)


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
    """H.264 (libx264) in fragmented MP4/MOV through PyAV: a fragment per keyframe, a keyframe
    every ``fragment_seconds`` (one per second by default).

    libx264 with 4:2:0 chroma needs an even width and height: an odd frame gets one replicated
    row or column.
    """

    codec = "h264"

    def __init__(self, av: Any, path: Path, container: str, fps: float, size: tuple[int, int], fragment_seconds: float = 1.0) -> None:
        self._av = av
        w, h = size
        self._pad = (w % 2, h % 2)
        self._container = av.open(str(path), mode="w", format=container, options=dict(AV_OPTIONS))
        try:
            rate = Fraction(fps).limit_denominator(1001)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = w + self._pad[0], h + self._pad[1]
            stream.pix_fmt = "yuv420p"
            # A keyframe starts a fragment: what a killed process leaves plays up to the last one.
            stream.codec_context.gop_size = max(int(round(fps * fragment_seconds)), 1)
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
        self.folder = folder_of(path)
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
        fragment_seconds: seconds of video per keyframe and fragment of the PyAV writer (a
            killed process's file plays up to its last complete fragment; shorter fragments
            make larger files, BENCHMARKS.md); OpenCV's writers ignore it.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, *, codecs: Sequence[str] | None = None,
                 fragment_seconds: float = 1.0) -> None:
        self.path = Path(path)
        check_parent(self.path, "video file")
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
        if not math.isfinite(fragment_seconds) or fragment_seconds <= 0:
            raise SinkError(f"video file '{self.path}': fragment_seconds={fragment_seconds} is not a duration")
        self.fragment_seconds = float(fragment_seconds)
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
            with suppress_oserror():
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
            with suppress_oserror():
                probe.unlink(missing_ok=True)
        return working

    def open(self, size: tuple[int, int]) -> None:
        """Open the writer for frames of ``size`` = (width, height) pixels."""
        if self._writer is not None:
            return
        if self._av is not None:
            try:
                with _quiet_stderr():
                    self._writer = _AvWriter(self._av, self.path, AV_CONTAINERS[self.path.suffix.lower()], self.fps, size,
                                             self.fragment_seconds)
            except Exception as exc:  # noqa: BLE001 - av raises its own OSError subclasses and ValueErrors
                raise SinkError(f"video file '{self.path}': cannot create it ({os_reason(exc)})") from exc
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

    def emit(self, result: FrameResult, image: np.ndarray | None) -> None:
        """Append the annotated frame (the :class:`Sink` interface)."""
        self.write(image if image is not None else result.frame.image)

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
            self._stop(os_reason(exc), exc)
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
            self.reason = f"cannot finish the file ({os_reason(close_error)})"
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
            with suppress_oserror():
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
