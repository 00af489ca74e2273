"""``--dump DIR``: annotated frames as image files plus ``readings.jsonl``."""
from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from recognizer.output.records import frame_record
from recognizer.output.sinks.base import SinkError, check_parent, os_reason, result_scale, suppress_oserror
from recognizer.output.sinks.jsonl import JsonlWriter
from recognizer.tracking import TrackUpdate
from recognizer.types import Reading

if TYPE_CHECKING:
    from recognizer.types import FrameResult

log = logging.getLogger(__name__)


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
        check_parent(self.directory.absolute(), "dump folder")
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
                raise SinkError(f"dump folder '{self.directory}': cannot create it ({os_reason(exc)})") from exc
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
            with suppress_oserror():
                path.unlink()
            raise
        os.close(fd)

    def emit(self, result: FrameResult, image: np.ndarray | None) -> None:
        """The annotated frame and its record (the :class:`Sink` interface)."""
        frame = result.frame
        self.write(image if image is not None else frame.image, frame.index, frame.timestamp, result.readings,
                   result.update, result.origin, scale=result_scale(result), source=getattr(result, "source", None))

    def write(
        self,
        image_bgr: np.ndarray,
        frame_index: int,
        timestamp: float,
        readings: Sequence[Reading],
        update: TrackUpdate | None = None,
        origin: str | None = None,
        scale: tuple[float, float] | None = None,
        source: str | None = None,
    ) -> None:
        """Write the annotated image of a frame, then its line (naming ``source`` in a run of
        several sources)."""
        if self.error is not None:
            raise SinkError(self.error)
        self.open()
        name = f"{frame_index:06d}{self.image_ext}"
        path = self.frames_dir / name
        try:
            self._write_image(path, image_bgr)
        except OSError as exc:
            self.reason = f"cannot write frame image '{path}' ({os_reason(exc)})"
            self.error = f"dump folder '{self.directory}': {self.reason}; it holds {self.frames} frames"
            raise SinkError(self.error) from exc
        self.frames += 1
        rec = frame_record(frame_index, timestamp, readings, update, origin, scale, source)
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
