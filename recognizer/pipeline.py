"""The threaded capture -> inference -> (main thread) track + render loop.

::

    capture thread --frames--> inference worker(s) --batches--> main thread
         |  live: newest-frame slot, drops counted        reorder, track, render, window, sinks
         |  file: bounded queue, back-pressure, never drops

* Every queue is bounded and every ``get``/``put`` waits at most ``config.poll`` seconds before
  checking the stop event again, so no thread can hang on a queue.
* A stage that fails stores its exception and sets the stop event; iterating the pipeline on the
  main thread then raises :class:`PipelineError` naming the stage.
* Batching: file sources fill batches up to ``batch_size`` (throughput); live sources hand over
  whatever is ready (latency). A batch also ends early when its frames would hold more than
  ``batch_pixels`` pixels (the detector holds about 30 bytes per input pixel while it runs).
* Memory is bounded: in file mode the frames captured but not yet handed to the main thread
  hold at most ``max_frame_bytes`` (and at least one frame), whatever the queue sizes.
* ``workers`` inference threads may run at once (on a 2-core CPU two workers with one torch
  thread each beat one worker with two, see BENCHMARKS.md). Each batch gets a sequence number
  when it is taken, and the main thread puts results back in that order.
* The tracker is updated on the main thread, in frame order, and touched by no other thread.
* A source's capture side (its thread's loop and buffer) is a ``_Lane``; several sources
  sharing the model are :class:`recognizer.multiplex.MultiPipeline`, built on these pieces.

Usage (main thread)::

    with source, Pipeline(source, recognizer, tracker=Tracker(), config=cfg) as pipe:
        for result in pipe:
            show(draw(result))
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recognizer.sources import Source
from recognizer.tracking import Tracker, TrackUpdate
from recognizer.types import Frame, Reading

__all__ = [
    "FrameResult",
    "Pipeline",
    "PipelineConfig",
    "PipelineError",
    "PipelineStats",
    "RecognizerLike",
    "TimedRecognizerLike",
    "recognize_timed",
]

log = logging.getLogger(__name__)


class RecognizerLike(Protocol):
    """Anything with ``recognize(images) -> list[list[Reading]]`` (one list per image).

    The pipeline calls ``recognize_timed`` instead when the object has it
    (:class:`TimedRecognizerLike`, as :class:`recognizer.engine.Recognizer` does), and
    ``recognize`` otherwise; see :func:`recognize_timed`.
    """

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]: ...


@runtime_checkable
class TimedRecognizerLike(RecognizerLike, Protocol):
    """A recognizer that also reports how long each stage of a call took.

    ``recognize_timed(images)`` returns ``(readings, timings)``: the readings as
    ``recognize`` gives them and seconds per stage of this very call (for the engine
    ``{"detect", "classify", "compose"}``). The timings travel with the result, so threads
    sharing one recognizer each get their own call's.
    """

    def recognize_timed(self, images: Sequence[np.ndarray]) -> tuple[list[list[Reading]], dict[str, float]]: ...


def recognize_timed(
    recognizer: RecognizerLike, images: Sequence[np.ndarray]
) -> tuple[list[list[Reading]], dict[str, float]]:
    """``(readings, per-stage seconds)`` of one call: ``recognizer.recognize_timed(images)``
    when it has that method, else ``recognizer.recognize(images)`` with no timings ``{}``."""
    if isinstance(recognizer, TimedRecognizerLike):
        readings, timings = recognizer.recognize_timed(images)
        return readings, dict(timings or {})
    return recognizer.recognize(images), {}


class PipelineError(RuntimeError):
    """A pipeline stage failed; ``stage`` names it and ``__cause__`` is the original error."""

    def __init__(self, stage: str, error: BaseException) -> None:
        detail = str(error) or type(error).__name__
        super().__init__(f"{stage} failed: {detail}")
        self.stage = stage
        self.error = error


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of a run.

    Attributes:
        batch_size: most frames per ``recognize`` call (>= 1).
        workers: inference threads calling ``recognize`` concurrently (>= 1).
        live: True keeps only the newest frame (drops counted), False never drops; None takes
            the source's default (cameras and streams live, files and images not).
        realtime: pace a non-live source at its fps (a video file played like a camera). None
            means "when ``live`` is forced on a file".
        queue_size: capacity of the frame queue in file mode.
        live_buffer: frames kept in live mode (1 = only the newest).
        result_queue_size: batches waiting for the main thread (live mode uses at most 2, so a
            slow display makes capture drop frames instead of showing old ones).
        max_frames: stop after this many processed frames (None = until the source ends).
        batch_pixels: a batch takes no more frames once they would hold more pixels than this
            (a batch holds at least one frame). The default is one image at
            :data:`recognizer.sources.MAX_SIDE`, so four such images go one at a time while
            four 640x480 frames still go together.
        max_frame_bytes: file mode: bytes of frame images captured and not yet handed to the
            main thread (queued, waiting for or in inference, waiting for their turn); the
            capture thread waits while they would exceed it (one frame may always be in flight).
        poll: seconds a queue call waits before checking the stop event again.
        join_timeout: seconds to wait for each thread at shutdown before giving up on it.
    """

    batch_size: int = 1
    workers: int = 1
    live: bool | None = None
    realtime: bool | None = None
    queue_size: int = 16
    live_buffer: int = 1
    result_queue_size: int = 8
    max_frames: int | None = None
    batch_pixels: int = 4096 * 4096
    max_frame_bytes: int = 512 * 2**20
    poll: float = 0.05
    join_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}; expected an integer >= 1")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}; expected an integer >= 1")
        if self.queue_size < 1 or self.live_buffer < 1 or self.result_queue_size < 1:
            raise ValueError("queue sizes must be >= 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames={self.max_frames}; expected an integer >= 1 or None")
        if self.poll <= 0:
            raise ValueError(f"poll={self.poll}; expected seconds > 0")
        if self.batch_pixels < 1 or self.max_frame_bytes < 1:
            raise ValueError("batch_pixels and max_frame_bytes must be >= 1")


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, as the main thread receives it.

    Attributes:
        frame: the source frame (index, timestamp, BGR image).
        readings: house numbers read in it.
        update: the tracker's update for this frame (None when no tracker is used).
        captured_at: ``time.monotonic()`` when the capture thread got the frame.
        inferred_at: ``time.monotonic()`` when its batch finished inference.
        batch_size: frames in the batch it was processed with.
        infer_seconds: wall time of its batch's ``recognize`` call.
        timings: per-stage seconds of the batch, as reported by the recognizer's
            ``recognize_timed`` (empty for a recognizer without it).
        origin: ``frame.origin``: the file the frame came from, for sources made of several
            video files (else None).
        source: the name of the frame's source in a run of several sources
            (:class:`recognizer.multiplex.MultiPipeline`); None with one source.
        source_index: the position of that source in the run (0 with one source).
    """

    frame: Frame
    readings: list[Reading]
    update: TrackUpdate | None
    captured_at: float
    inferred_at: float
    batch_size: int
    infer_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    origin: str | None = None
    source: str | None = None
    source_index: int = 0


@dataclass
class PipelineStats:
    """Counters of a run (written by the pipeline threads; read them on the main thread).

    Attributes:
        captured: frames read from the source.
        dropped: frames discarded in live mode because a newer one arrived.
        processed: frames handed to the main thread.
        batches: ``recognize`` calls.
        infer_seconds: total time inside ``recognize`` (summed over workers).
        track_seconds: total time inside the tracker.
        started_at, finished_at: ``time.monotonic()`` at start and end of the run.
    """

    captured: int = 0
    dropped: int = 0
    processed: int = 0
    batches: int = 0
    infer_seconds: float = 0.0
    track_seconds: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def elapsed(self) -> float:
        end = self.finished_at or time.monotonic()
        return max(end - self.started_at, 0.0) if self.started_at else 0.0


class _Captured:
    __slots__ = ("frame", "captured_at", "lane")

    def __init__(self, frame: Frame, captured_at: float, lane: int = 0) -> None:
        self.frame = frame
        self.captured_at = captured_at
        self.lane = lane  # the index of the source it came from (several sources)


@dataclass
class _BatchOut:
    seq: int
    items: list[_Captured]
    outputs: list[list[Reading]]
    infer_seconds: float
    inferred_at: float
    timings: dict[str, float]
    ended: tuple[int, ...] = ()  # sources whose last frame was in this batch or before it


def _pixels(item: _Captured) -> int:
    shape = item.frame.image.shape
    return int(shape[0]) * int(shape[1])


class _ByteBudget:
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


class _LatestSlot:
    """A tiny buffer keeping the newest ``capacity`` items; older ones are dropped and counted."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[_Captured] = deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: _Captured) -> None:
        with self._cond:
            while len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def take(self, max_items: int, timeout: float, max_pixels: int | None = None) -> list[_Captured]:
        """Up to ``max_items`` of the newest items, oldest first, holding at most ``max_pixels``
        pixels (at least one item); [] after ``timeout`` s."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            out: list[_Captured] = []
            pixels = 0
            while self._items and len(out) < max_items:
                px = _pixels(self._items[0])
                if out and max_pixels is not None and pixels + px > max_pixels:
                    break
                out.append(self._items.popleft())
                pixels += px
            return out

    def take_one(self, max_pixels: int | None = None) -> _Captured | None:
        """The oldest item kept, without waiting, unless it holds more than ``max_pixels``."""
        with self._cond:
            if not self._items or (max_pixels is not None and _pixels(self._items[0]) > max_pixels):
                return None
            return self._items.popleft()

    def empty(self) -> bool:
        with self._cond:
            return not self._items


class _Either:
    """``is_set()`` of either of two events (the run's stop, the workers' "no more frames")."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


_END = object()


class _Lane:
    """One source's capture side: the capture thread's loop and the buffer it fills.

    Live: a newest-frame slot (older frames are dropped and counted). File: a bounded queue
    that never drops, with a byte budget holding the capture thread back. ``stats`` gets the
    ``captured``/``dropped`` counts; ``on_frame`` (if given) is called after each frame is
    buffered (a multiplexer waits on it).
    """

    def __init__(
        self,
        source: Source,
        config: PipelineConfig,
        stats: PipelineStats,
        *,
        live: bool,
        realtime: bool,
        index: int = 0,
        frame_bytes: int | None = None,
        on_frame: Any = None,
    ) -> None:
        self.source = source
        self.config = config
        self.stats = stats
        self.live = live
        self.realtime = realtime
        self.index = index
        self.slot = _LatestSlot(config.live_buffer) if live else None
        self.frames: queue.Queue[_Captured] = queue.Queue(maxsize=config.queue_size)
        self.budget = _ByteBudget(frame_bytes or config.max_frame_bytes) if not live else None
        self.done = threading.Event()  # the capture loop has ended
        self.stop = threading.Event()  # no more frames are wanted from this source
        self.held: _Captured | None = None  # a frame that did not fit in the last batch (file mode)
        self.error: BaseException | None = None  # what ended the capture loop, if it failed
        self._on_frame = on_frame

    def capture(self, run_stop: threading.Event) -> None:
        """The capture thread's loop: read frames into the buffer until the source ends or
        ``run_stop`` or :attr:`stop` is set."""
        cfg = self.config
        src = self.source
        stop = _Either(run_stop, self.stop)
        t0 = time.monotonic()
        first_ts: float | None = None
        try:
            while not stop.is_set():
                if cfg.max_frames is not None and not self.live and self.stats.captured >= cfg.max_frames:
                    break
                frame = src.read(stop.is_set)
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
                item = _Captured(frame, time.monotonic(), self.index)
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
                if self._on_frame is not None:
                    self._on_frame()
        except BaseException as exc:
            self.error = exc  # known before ``done`` is set
            raise
        finally:
            self.done.set()
            if self._on_frame is not None:
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

    def take(self, want: int, stop: threading.Event) -> list[_Captured] | None:
        """The next batch of this source alone, waiting for it; None when the source is
        exhausted or the run stops. Live: whatever is ready; file: up to ``want`` frames."""
        cfg = self.config
        if self.slot is not None:
            while not stop.is_set():
                items = self.slot.take(want, cfg.poll, cfg.batch_pixels)
                if items:
                    return items
                if self.done.is_set() and self.slot.empty():
                    return None
            return None
        batch: list[_Captured] = []
        pixels = 0
        if self.held is not None:
            batch.append(self.held)
            pixels = _pixels(self.held)
            self.held = None
        while not stop.is_set() and len(batch) < want:
            try:
                item = self.frames.get(timeout=cfg.poll)
            except queue.Empty:
                if self.done.is_set() and self.frames.empty():
                    break
                if batch and self.budget is not None and self.budget.waiting:
                    break  # no more frames come until these are done
                continue
            px = _pixels(item)
            if batch and pixels + px > cfg.batch_pixels:
                self.held = item  # it starts the next batch
                break
            batch.append(item)
            pixels += px
        if stop.is_set():
            return None
        return batch or None

    def take_ready(self, max_pixels: int | None) -> _Captured | None:
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
        if max_pixels is not None and _pixels(item) > max_pixels:
            self.held = item
            return None
        return item

    def release(self, cap: _Captured) -> None:
        """A frame reached the main thread: its bytes leave the budget."""
        if self.budget is not None:
            self.budget.give(cap.frame.image.nbytes)


def _with_found(readings: Sequence[Reading], found: Sequence[Reading]) -> list[Reading]:
    """``readings`` plus the numbers the text detector found lately, except where the digit
    models read a number now (their reading is the same plate, a frame or two later)."""
    out = list(readings)
    for extra in found:
        ex1, ey1, ex2, ey2 = extra.box
        cx, cy = (ex1 + ex2) / 2, (ey1 + ey2) / 2
        if not any(r.box[0] <= cx <= r.box[2] and r.box[1] <= cy <= r.box[3] for r in readings):
            out.append(extra)
    return out


class _TrackStage:
    """A source's tracker, updated on the main thread in frame order.

    When a frame's ``origin`` (the file of a multi-file source) changes, the tracks of the last
    file are ended instead of continued: its numbers are not the new file's.
    """

    def __init__(self, tracker: Tracker | None, checker: Any = None) -> None:
        self.tracker = tracker
        self.checker = checker  # a recognizer.textworker.TextChecker, or None
        self.origin: str | None = None  # file of the last frame handed out

    def update(self, frame: Frame, readings: Sequence[Reading]) -> TrackUpdate:
        assert self.tracker is not None
        ended: tuple = ()
        if frame.origin != self.origin:
            ended = self.tracker.finish() if self.origin is not None else ()
            self.origin = frame.origin
        h, w = frame.image.shape[:2]
        if self.checker is not None:
            self.checker.apply(self.tracker)  # the text reader's reads that came back since
            readings = _with_found(readings, self.checker.found())
        update = self.tracker.update(frame.index, frame.timestamp, readings, (w, h))
        if self.checker is not None:
            self.checker.submit(frame.image, update, frame.timestamp)
        if ended:
            update = dataclasses.replace(update, ended=ended + update.ended)
        return update


class Pipeline:
    """Runs a source through a recognizer on background threads; iterate it on the main thread.

    Args:
        source: an opened :class:`~recognizer.sources.Source`.
        recognizer: any object with ``recognize(images) -> list[list[Reading]]``
            (:class:`RecognizerLike`); its ``recognize_timed`` is called instead when it has
            one. With ``workers > 1`` it is called from several threads at once (torch
            modules in eval mode under ``inference_mode`` allow that).
        tracker: a :class:`~recognizer.tracking.Tracker` (or None to skip tracking).
        config: :class:`PipelineConfig`.
        text_checker: a :class:`~recognizer.textworker.TextChecker` that reads the tracks'
            regions with the text reader on its own thread (None: the digit models alone).
    """

    def __init__(
        self,
        source: Source,
        recognizer: RecognizerLike,
        *,
        tracker: Tracker | None = None,
        config: PipelineConfig | None = None,
        text_checker: Any = None,
    ) -> None:
        self.source = source
        self.tracker = tracker
        self.text_checker = text_checker
        config = config or PipelineConfig()
        self.live = config.live if config.live is not None else bool(source.live)
        realtime = config.realtime
        self.realtime = (self.live and not source.live) if realtime is None else bool(realtime and not source.live)
        self._setup(recognizer, config, live=self.live)
        self._lane = _Lane(source, self.config, self.stats, live=self.live, realtime=self.realtime)
        self._slot = self._lane.slot
        self._budget = self._lane.budget
        self._capture_done = self._lane.done
        self._capture_stop = self._lane.stop  # set when the workers need no more frames
        self._tracking = _TrackStage(tracker, text_checker)
        self._remaining = self.config.max_frames

    def _setup(self, recognizer: RecognizerLike, config: PipelineConfig, *, live: bool) -> None:
        """State shared by every kind of pipeline: threads, stop, errors, results, numbering."""
        self.recognizer = recognizer
        self.config = config
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._error: tuple[str, BaseException] | None = None
        self._error_lock = threading.Lock()
        results_size = min(config.result_queue_size, 2) if live else config.result_queue_size
        self._results: queue.Queue[Any] = queue.Queue(maxsize=results_size)
        self._take_lock = threading.Lock()  # taking a batch and numbering it is one step
        self._next_seq = 0
        self._workers_left = config.workers
        self._stats_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- public API --------------------------------------------------------------------------

    @property
    def error(self) -> tuple[str, BaseException] | None:
        """``(stage, exception)`` of the first failure, or None."""
        return self._error

    def start(self) -> Pipeline:
        """Start the capture and inference threads (idempotent)."""
        if self._started:
            return self
        self._started = True
        self.stats.started_at = time.monotonic()
        self._threads = self._capture_threads()
        for k in range(self.config.workers):
            name = "inference" if self.config.workers == 1 else f"inference-{k}"
            self._threads.append(threading.Thread(target=self._guard, args=("inference", self._infer_loop), name=name, daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Ask every thread to finish (returns at once; :meth:`close` also waits)."""
        self._stop.set()

    def close(self) -> None:
        """Stop and join the threads (each at most ``join_timeout`` seconds)."""
        self._stop.set()
        for t in self._threads:
            t.join(self.config.join_timeout)
            if t.is_alive():
                log.warning("thread %s did not stop within %.1f s; leaving it (daemon)", t.name, self.config.join_timeout)
        checker = getattr(self, "text_checker", None)
        if checker is not None:
            checker.close(self.config.join_timeout)
        if not self.stats.finished_at:
            self.stats.finished_at = time.monotonic()

    def fail(self, stage: str, error: BaseException) -> None:
        """Record ``error`` of ``stage`` (the first one wins) and stop the run."""
        with self._error_lock:
            if self._error is None:
                self._error = (stage, error)
                log.debug("stage %s failed", stage, exc_info=error)
        self._stop.set()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[FrameResult]:
        """Results in frame order; raises :class:`PipelineError` when a stage failed."""
        self.start()
        poll = self.config.poll
        pending: dict[int, _BatchOut] = {}
        next_seq = 0
        try:
            while True:
                if self._error is not None:
                    # Deliver the batches that finished before the failure, then raise.
                    while True:
                        try:
                            item = self._results.get_nowait()
                        except queue.Empty:
                            break
                        if item is not _END:
                            pending[item.seq] = item
                    while next_seq in pending:
                        out = pending.pop(next_seq)
                        next_seq += 1
                        yield from self._emit(out)
                    self._raise_if_failed()
                try:
                    item = self._results.get(timeout=poll)
                except queue.Empty:
                    if self._stop.is_set() or not any(t.is_alive() for t in self._threads):
                        self._raise_if_failed()
                        return
                    continue
                if item is _END:
                    self._raise_if_failed()
                    return
                pending[item.seq] = item
                while next_seq in pending:
                    out = pending.pop(next_seq)
                    next_seq += 1
                    yield from self._emit(out)
        finally:
            self.stats.finished_at = time.monotonic()

    # -- main-thread part --------------------------------------------------------------------

    def _emit(self, out: _BatchOut) -> Iterator[FrameResult]:
        for cap, readings in zip(out.items, out.outputs):
            yield self._result(cap, readings, out, self._lane, self._tracking)

    def _result(self, cap: _Captured, readings: list[Reading], out: _BatchOut, lane: _Lane, tracking: _TrackStage,
                **tags: Any) -> FrameResult:
        """A frame's result: its bytes leave the budget, its source's tracker is updated."""
        lane.release(cap)
        update = None
        if tracking.tracker is not None:
            t0 = time.perf_counter()
            try:
                update = tracking.update(cap.frame, readings)
            except Exception as exc:
                self.fail("tracking", exc)
                raise PipelineError("tracking", exc) from exc
            lane.stats.track_seconds += time.perf_counter() - t0
        lane.stats.processed += 1
        return FrameResult(
            frame=cap.frame,
            readings=list(readings),
            update=update,
            captured_at=cap.captured_at,
            inferred_at=out.inferred_at,
            batch_size=len(out.items),
            infer_seconds=out.infer_seconds,
            timings=out.timings,
            origin=cap.frame.origin,
            **tags,
        )

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            stage, exc = self._error
            raise PipelineError(stage, exc) from exc

    # -- threads -----------------------------------------------------------------------------

    def _guard(self, stage: str, loop: Any) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - carried to the main thread
            self.fail(stage, exc)

    def _capture_threads(self) -> list[threading.Thread]:
        return [threading.Thread(target=self._guard, args=("capture", self._capture_loop), name="capture", daemon=True)]

    def _capture_loop(self) -> None:
        self._lane.capture(self._stop)

    def _take_batch(self) -> list[_Captured] | None:
        """The next batch, or None when the source is exhausted or the run stops."""
        want = self.config.batch_size if self._remaining is None else min(self.config.batch_size, self._remaining)
        if want <= 0:
            return None
        return self._lane.take(want, self._stop)

    def _claim(self) -> tuple[int, list[_Captured], tuple[int, ...]] | None:
        """The next batch with its sequence number (one step, under the take lock), or None."""
        with self._take_lock:
            batch = self._take_batch()
            if batch is None:
                return None
            seq = self._next_seq
            self._next_seq += 1
            if self._remaining is not None:
                self._remaining -= len(batch)
            return seq, batch, ()

    def _stop_capture(self) -> None:
        """No more frames are needed (the workers stopped taking them)."""
        self._capture_stop.set()

    def _inferred(self) -> None:
        """A worker finished the inference of the batch it claimed (a hook)."""

    def _put_result(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._results.put(item, timeout=self.config.poll)
                return True
            except queue.Full:
                continue
        return False

    def _infer_loop(self) -> None:
        try:
            while not self._stop.is_set():
                claimed = self._claim()
                if claimed is None:
                    break
                seq, batch, ended = claimed
                outputs: list[list[Reading]] = []
                timings: dict[str, float] = {}
                infer_s = 0.0
                if batch:  # a batch of several sources may only announce the end of some
                    t0 = time.perf_counter()
                    outputs, timings = recognize_timed(self.recognizer, [c.frame.image for c in batch])
                    infer_s = time.perf_counter() - t0
                    if not isinstance(outputs, list) or len(outputs) != len(batch):
                        got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
                        raise ValueError(f"recognize() returned {got} results for {len(batch)} images; expected one list per image")
                    with self._stats_lock:
                        self.stats.batches += 1
                        self.stats.infer_seconds += infer_s
                    self._inferred()
                out = _BatchOut(seq, batch, outputs, infer_s, time.monotonic(), timings, ended)
                if not self._put_result(out):
                    return
        finally:
            # No more frames are needed once the workers stop taking them.
            self._stop_capture()
            with self._take_lock:
                self._workers_left -= 1
                last = self._workers_left == 0
            if last and not self._stop.is_set():
                self._put_result(_END)
