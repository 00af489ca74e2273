"""One source's side of a run: its capture thread's loop, the buffer it fills, its counters and
its tracking (:class:`Lane`); the :class:`~recognizer.live.pipeline.Pipeline` has one per source
and batches their frames.

Live sources fill a newest-frame slot (:class:`LatestSlot`: older frames are dropped and
counted); files fill a bounded queue that never drops, held back by a byte budget
(:class:`ByteBudget`) so the frames in flight stay within ``max_frame_bytes``.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from recognizer.io.sources import Source
from recognizer.tracking import TrackEnded, Tracker, TrackUpdate
from recognizer.types import Frame, Reading

if TYPE_CHECKING:
    from recognizer.live.pipeline import PipelineConfig, PipelineStats, TextCheckerLike

__all__ = ["ByteBudget", "Captured", "Lane", "LatestSlot", "TrackStage", "pixels", "with_found"]


class Captured:
    __slots__ = ("frame", "captured_at", "lane")

    def __init__(self, frame: Frame, captured_at: float, lane: int = 0) -> None:
        self.frame = frame
        self.captured_at = captured_at
        self.lane = lane  # the index of the source it came from


def pixels(item: Captured) -> int:
    shape = item.frame.image.shape
    return int(shape[0]) * int(shape[1])


class ByteBudget:
    """Bytes of frames in flight, from capture to the main thread; :meth:`take` waits for room.

    One frame is always let through (a frame larger than the whole budget must not block the
    run forever); every wait checks ``stop`` each ``poll`` seconds.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.waiting = False  # the capture thread waits for room: a batch must not wait for it
        self._cond = threading.Condition()

    def take(self, n: int, stop: Any, poll: float) -> bool:
        """Reserve ``n`` bytes; False when ``stop`` was set first."""
        with self._cond:
            try:
                while self.used > 0 and self.used + n > self.limit:
                    if stop.is_set():
                        return False
                    self.waiting = True
                    self._cond.wait(poll)
            finally:
                self.waiting = False
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def give(self, n: int) -> None:
        with self._cond:
            self.used = max(self.used - n, 0)
            self._cond.notify_all()


class LatestSlot:
    """The newest ``capacity`` frames of a live source; older ones are dropped and counted."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[Captured] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, item: Captured) -> None:
        with self._lock:
            while len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)

    def take_one(self, max_pixels: int | None = None) -> Captured | None:
        """The oldest frame kept, without waiting, unless it holds more than ``max_pixels``."""
        with self._lock:
            if not self._items or (max_pixels is not None and pixels(self._items[0]) > max_pixels):
                return None
            return self._items.popleft()

    def empty(self) -> bool:
        with self._lock:
            return not self._items


class AnyOf:
    """``is_set()`` of either of two events (the run's stop, one source's "no more frames")."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def with_found(readings: Sequence[Reading], found: Sequence[Reading]) -> list[Reading]:
    """``readings`` plus the numbers the text detector found lately, except where the digit
    models read a number now (their reading is the same plate, a frame or two later)."""
    out = list(readings)
    for extra in found:
        ex1, ey1, ex2, ey2 = extra.box
        cx, cy = (ex1 + ex2) / 2, (ey1 + ey2) / 2
        if not any(r.box[0] <= cx <= r.box[2] and r.box[1] <= cy <= r.box[3] for r in readings):
            out.append(extra)
    return out


class TrackStage:
    """A source's tracker (and its text checker), updated on the main thread in frame order.

    When a frame's ``origin`` (the file of a multi-file source) changes, the tracks of the last
    file are ended instead of continued: its numbers are not the new file's. :meth:`finish`
    ends the tracks still open when the source ends.
    """

    def __init__(self, tracker: Tracker | None, checker: TextCheckerLike | None = None) -> None:
        self.tracker = tracker
        self.checker = checker
        self.origin: str | None = None  # file of the last frame handed out

    def update(self, frame: Frame, readings: Sequence[Reading]) -> TrackUpdate:
        assert self.tracker is not None
        ended: tuple[TrackEnded, ...] = ()
        if frame.origin != self.origin:
            ended = self.tracker.finish() if self.origin is not None else ()
            self.origin = frame.origin
        h, w = frame.image.shape[:2]
        if self.checker is not None:
            self.checker.apply(self.tracker)  # the text reader's reads that came back since
            readings = with_found(readings, self.checker.found())
        update = self.tracker.update(frame.index, frame.timestamp, readings, (w, h))
        if self.checker is not None:
            self.checker.submit(frame.image, update, frame.timestamp)
        if ended:
            update = dataclasses.replace(update, ended=ended + update.ended)
        return update

    def finish(self) -> tuple[TrackEnded, ...]:
        return self.tracker.finish() if self.tracker is not None else ()


class Lane:
    """One source's side of a run: its capture thread's loop, the buffer it fills, its counters
    and its tracking.

    Live: a newest-frame slot (older frames are dropped and counted). File: a bounded queue
    that never drops, with a byte budget holding the capture thread back. ``on_frame`` is
    called after each frame is buffered (the batcher waits on it).
    """

    def __init__(
        self,
        source: Source,
        name: str,
        index: int,
        config: PipelineConfig,
        stats: PipelineStats,
        *,
        live: bool,
        realtime: bool,
        frame_bytes: int,
        tracking: TrackStage,
        on_frame: Callable[[], None],
    ) -> None:
        self.source = source
        self.name = name
        self.index = index
        self.config = config
        self.stats = stats  # captured, dropped, processed, track seconds of this source
        self.live = live
        self.realtime = realtime
        self.tracking = tracking
        self.slot = LatestSlot(config.live_buffer) if live else None
        self.frames: queue.Queue[Captured] = queue.Queue(maxsize=config.queue_size)
        self.budget = ByteBudget(frame_bytes) if not live else None
        self.done = threading.Event()  # the capture loop has ended
        self.stop = threading.Event()  # no more frames are wanted from this source
        self.held: Captured | None = None  # a frame that did not fit in the last batch (file mode)
        self.error: BaseException | None = None  # what ended the capture loop, if it failed
        self._on_frame = on_frame

    def capture(self, run_stop: threading.Event) -> None:
        """The capture thread's loop: read frames into the buffer until the source ends or
        ``run_stop`` or :attr:`stop` is set. A failure is kept in :attr:`error` (before
        :attr:`done` is set) and announced after the source's last frame."""
        try:
            self._capture(AnyOf(run_stop, self.stop))
        except BaseException as exc:  # noqa: BLE001 - reported through SourceEnded
            self.error = exc
        finally:
            self.done.set()
            self._on_frame()

    def _capture(self, stop: AnyOf) -> None:
        cfg = self.config
        t0 = time.monotonic()
        first_ts: float | None = None
        while not stop.is_set():
            if cfg.max_frames is not None and not self.live and self.stats.captured >= cfg.max_frames:
                break
            frame = self.source.read(stop.is_set)
            if frame is None:
                break
            if self.realtime:
                # Play a file like a camera: wait until the frame's moment has come.
                if first_ts is None:
                    first_ts = frame.timestamp
                due = t0 + (frame.timestamp - first_ts)
                while not stop.is_set() and time.monotonic() < due:
                    time.sleep(min(cfg.poll, due - time.monotonic()))
            if self.budget is not None and not self.budget.take(frame.image.nbytes, stop, cfg.poll):
                break
            item = Captured(frame, time.monotonic(), self.index)
            self.stats.captured += 1
            if self.slot is not None:
                self.slot.put(item)
                self.stats.dropped = self.slot.dropped
            else:
                while not stop.is_set():
                    try:
                        self.frames.put(item, timeout=cfg.poll)
                        break
                    except queue.Full:
                        continue
            self._on_frame()

    def ready(self) -> bool:
        """A frame is waiting to be taken."""
        if self.slot is not None:
            return not self.slot.empty()
        return self.held is not None or not self.frames.empty()

    def exhausted(self) -> bool:
        """The capture loop ended and every frame it buffered was taken."""
        if not self.done.is_set():  # checked first: after it is set, nothing more is buffered
            return False
        if self.slot is not None:
            return self.slot.empty()
        return self.held is None and self.frames.empty()

    def take_ready(self, max_pixels: int | None) -> Captured | None:
        """One frame that is ready now, without waiting (live: the oldest kept, which is the
        newest with the default ``live_buffer`` of 1; file: the next); None when there is none
        or it would hold more than ``max_pixels`` pixels (it then waits for the next batch)."""
        if self.slot is not None:
            return self.slot.take_one(max_pixels)
        item = self.held
        self.held = None
        if item is None:
            try:
                item = self.frames.get_nowait()
            except queue.Empty:
                return None
        if max_pixels is not None and pixels(item) > max_pixels:
            self.held = item
            return None
        return item

    def release(self, cap: Captured) -> None:
        """A frame reached the main thread: its bytes leave the budget."""
        if self.budget is not None:
            self.budget.give(cap.frame.image.nbytes)
