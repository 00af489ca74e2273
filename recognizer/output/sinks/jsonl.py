"""JSON Lines files written one whole line per ``os.write``: valid up to their last line at
any moment (``--log``; the dump's ``readings.jsonl``).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recognizer.output.records import event_record, frame_record
from recognizer.output.sinks.base import SinkError, check_parent, os_reason, result_scale
from recognizer.tracking import TrackUpdate
from recognizer.types import Reading

if TYPE_CHECKING:
    from recognizer.types import FrameResult

log = logging.getLogger(__name__)


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
        check_parent(self.path, what)
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
            raise SinkError(f"{self.what} '{self.path}': cannot create it ({os_reason(exc)})") from exc

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
            self._failed(f"cannot write ({os_reason(exc)})", exc)
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
                self._failed(f"cannot finish the file ({os_reason(exc)})", exc)

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
        # Extra fields of an event's record (evidence, position, expected number), from the
        # sink that works them out before this one: recognizer.output.sinks.numbers.NumbersSink.fields.
        self.annotate: Callable[[Any], dict[str, Any]] | None = None

    def write_event(self, event: Any, source: str | None = None) -> None:
        """The record of a tracker event (``confirmed``, ``track_ended``)."""
        self.write(event_record(event, source, self.annotate(event) if self.annotate is not None else None))
        self.events += 1

    def write_frame(
        self,
        frame_index: int,
        timestamp: float,
        readings: Sequence[Reading],
        update: TrackUpdate | None,
        origin: str | None = None,
        scale: tuple[float, float] | None = None,
        source: str | None = None,
    ) -> None:
        self.write(frame_record(frame_index, timestamp, readings, update, origin, scale, source))
        self.frames += 1
        if update is not None:
            for ev in (*update.confirmed, *update.ended):
                self.write_event(ev, source)

    def emit(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        """The frame's record and its tracker events (the :class:`Sink` interface); in a run of
        several sources each names the frame's source."""
        frame = result.frame
        self.write_frame(frame.index, frame.timestamp, result.readings, result.update, result.origin,
                         scale=result_scale(result), source=getattr(result, "source", None))

    def status_line(self) -> str:
        """What the file holds, for the end of a run."""
        line = f"log: {self.lines} lines written to {self.path}"
        if self.reason is not None:
            line += f", whole lines only; writing stopped there: {self.reason}"
        return line
