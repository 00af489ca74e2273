"""The threaded capture -> inference -> (main thread) track loop, for one source or many.

::

    capture thread per source --frames--> inference worker(s) --batches--> main thread
      live: newest-frame slot (drops counted)   one batch mixes sources    per source: track,
      file: bounded queue, never drops          (round robin)              then the session

* One source is a run of one: the same threads, batching and results as several. Each source
  keeps its own drop policy, frame index, timestamps, reconnects and tracker; only the model is
  shared (the anchor is DeepStream's stream multiplexer).
* Every queue is bounded and every wait lasts at most ``config.poll`` seconds before checking
  the stop event again, so no thread can hang on a queue.
* A stage that fails stores its exception and sets the stop event; iterating the pipeline on the
  main thread then raises :class:`PipelineError` naming the stage. A source that fails ends
  alone (:class:`SourceEnded` with its error) unless it is the only one.
* Batching (:meth:`Pipeline._claim`): file sources fill batches up to ``batch_size``
  (throughput); live sources hand over whatever is ready (latency), never waited for. A batch
  takes the sources round robin, starting after the source served last, so a busy source cannot
  starve another, and a source with nothing ready (stalled, reconnecting) never holds it up. A
  batch also ends early when its frames would hold more than ``batch_pixels`` pixels (the
  detector holds about 30 bytes per input pixel while it runs).
* Memory is bounded: in file mode the frames captured but not yet handed to the main thread
  hold at most ``max_frame_bytes`` (shared out between the file sources, at least one frame
  each), whatever the queue sizes.
* ``workers`` inference threads may run at once (on a 2-core CPU two workers with one torch
  thread each beat one worker with two, see BENCHMARKS.md). Each batch gets a sequence number
  when it is taken, and the main thread puts results back in that order.
* The trackers are updated on the main thread, in frame order, and touched by no other thread;
  a source's end carries the tracks it closed.

Usage (main thread)::

    with source, Pipeline(source, recognizer, trackers=Tracker(), config=cfg) as pipe:
        for item in pipe:
            if isinstance(item, FrameResult):
                show(draw(item))

    with Pipeline([cam0, cam1], recognizer, names=["gate1", "gate2"],
                  trackers=[Tracker(), Tracker()]) as pipe:
        for item in pipe:
            if isinstance(item, SourceEnded):
                print(item.name, "ended", item.error or "")
            else:
                print(item.source, item.frame.index, [r.text for r in item.readings])
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recognizer.io.sources import Source
from recognizer.live.lanes import Captured, Lane, TrackStage, pixels
from recognizer.tracking import Tracker, TrackUpdate
from recognizer.types import FrameResult, Reading, SourceEnded

__all__ = [
    "Pipeline",
    "PipelineConfig",
    "PipelineError",
    "PipelineStats",
    "RecognizerLike",
    "TextCheckerLike",
    "TimedRecognizerLike",
    "recognize_timed",
]

log = logging.getLogger(__name__)


class RecognizerLike(Protocol):
    """Anything with ``recognize(images) -> list[list[Reading]]`` (one list per image).

    The pipeline calls ``recognize_timed`` instead when the object has it
    (:class:`TimedRecognizerLike`, as :class:`recognizer.models.engine.Recognizer` does), and
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


class TextCheckerLike(Protocol):
    """What the pipeline asks of a source's text checker
    (:class:`recognizer.live.textworker.TextChecker`), on the main thread: the reads that came back
    go into the tracker, the numbers found lately join the frame's readings, the frame's tracks
    are offered for reading, and it is closed with the run."""

    def apply(self, tracker: Tracker) -> int: ...

    def found(self) -> list[Reading]: ...

    def submit(self, image: np.ndarray, update: TrackUpdate, timestamp: float | None = None) -> int: ...

    def close(self, timeout: float = 5.0) -> None: ...


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
            :data:`recognizer.io.sources.MAX_SIDE`, so four such images go one at a time while
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

    def live_for(self, source: Source) -> bool:
        """Whether ``source`` runs in live mode: :attr:`live` when set, else the source's own default."""
        return self.live if self.live is not None else bool(source.live)


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


@dataclass
class _BatchOut:
    seq: int
    items: list[Captured]
    outputs: list[list[Reading]]
    infer_seconds: float
    inferred_at: float
    timings: dict[str, float]
    ended: tuple[int, ...] = ()  # sources whose last frame was in this batch or before it


_END = object()


def _per_source(value: Any, n: int, what: str) -> list[Any]:
    """``value`` as one entry per source: None for none, one object for a single source, or a
    sequence of ``n``."""
    if value is None:
        return [None] * n
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{len(value)} {what}s for {n} sources; expected one per source")
        return list(value)
    if n != 1:
        raise ValueError(f"one {what} for {n} sources; expected a list with one per source")
    return [value]


class Pipeline:
    """Runs one or more sources through one recognizer on background threads; iterate it on
    the main thread.

    Yields, in each source's frame order, a :class:`FrameResult` per frame and one
    :class:`SourceEnded` per source after its last frame, carrying the tracks its end closed;
    the iteration ends when every source has ended. One source is a run of one: the same
    threads, batches and results. With several, a batch mixes their frames, each source keeping
    its own drop policy, frame index, reconnects and tracker (see the module's docstring).

    A source that fails (lost for good, a read error) ends alone: its frames so far are
    delivered, then its :class:`SourceEnded` with the error, and the others go on. When it is
    the run's only source, its failure is the run's: iteration then raises
    :class:`PipelineError` (stage "capture"). A failure of the model or a tracker ends the whole
    run with :class:`PipelineError`.

    Args:
        sources: an opened :class:`~recognizer.io.sources.Source`, or a list of them (cameras,
            streams, files, ... mixed).
        recognizer: any object with ``recognize(images) -> list[list[Reading]]``
            (:class:`RecognizerLike`); its ``recognize_timed`` is called instead when it has
            one. With ``workers > 1`` it is called from several threads at once (torch
            modules in eval mode under ``inference_mode`` allow that).
        names: one unique name per source (default ``src0``, ``src1``, ...); a frame's
            ``FrameResult.source`` when there are several.
        trackers: a :class:`~recognizer.tracking.Tracker` per source (one, or a list; None
            skips tracking).
        text_checkers: a :class:`~recognizer.live.textworker.TextChecker` per source that reads its
            tracks' regions with the text reader (one, or a list; None: the digit models alone).
        config: :class:`PipelineConfig`; per source: ``live`` (None: each source's own
            default), ``max_frames`` (frames of each source), ``queue_size``, ``live_buffer``;
            ``max_frame_bytes`` is shared out between the file sources; ``batch_size`` is the
            most frames of a batch, all sources together.
    """

    def __init__(
        self,
        sources: Source | Sequence[Source],
        recognizer: RecognizerLike,
        *,
        names: Sequence[str] | None = None,
        trackers: Tracker | Sequence[Tracker | None] | None = None,
        text_checkers: TextCheckerLike | Sequence[TextCheckerLike | None] | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        srcs: list[Source] = list(sources) if isinstance(sources, (list, tuple)) else [sources]
        if not srcs:
            raise ValueError("a pipeline needs at least one source")
        n = len(srcs)
        names = list(names) if names is not None else [f"src{i}" for i in range(n)]
        if len(names) != n or len(set(names)) != n:
            raise ValueError(f"names {names}: expected one unique name per source ({n})")
        tracker_list = _per_source(trackers, n, "tracker")
        checker_list = _per_source(text_checkers, n, "text checker")
        config = config or PipelineConfig()
        self.recognizer = recognizer
        self.config = config
        self.sources = srcs
        self.names = names
        lives = [config.live_for(s) for s in srcs]
        self.live = any(lives)
        self._arrived = threading.Event()  # set by a capture thread after each frame
        files = max(sum(1 for live in lives if not live), 1)
        self.lanes: list[Lane] = []
        for i, (src, live) in enumerate(zip(srcs, lives)):
            realtime = (live and not src.live) if config.realtime is None else bool(config.realtime and not src.live)
            self.lanes.append(Lane(src, names[i], i, config, PipelineStats(), live=live, realtime=realtime,
                                    frame_bytes=max(config.max_frame_bytes // files, 1),
                                    tracking=TrackStage(tracker_list[i], checker_list[i]), on_frame=self._arrived.set))
        self._run = PipelineStats()  # the shared counters: batches, inference time, start and end
        self._stop = threading.Event()
        self._error: tuple[str, BaseException] | None = None
        self._error_lock = threading.Lock()
        results_size = min(config.result_queue_size, 2) if self.live else config.result_queue_size
        self._results: queue.Queue[Any] = queue.Queue(maxsize=results_size)
        self._take_lock = threading.Lock()  # taking a batch and numbering it is one step
        self._next_seq = 0
        self._workers_left = config.workers
        self._stats_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._remaining = [config.max_frames] * n  # frames each source may still give
        self._ended = [False] * n  # taken as ended by a worker
        self._announced = [False] * n  # its SourceEnded was handed out (main thread)
        self._next = 0  # round robin: the source served first in the next batch
        self._busy = 0  # workers inferring a batch they claimed
        self._busy_lock = threading.Lock()

    # -- public API --------------------------------------------------------------------------

    @property
    def error(self) -> tuple[str, BaseException] | None:
        """``(stage, exception)`` of the first failure, or None."""
        return self._error

    @property
    def stats(self) -> PipelineStats:
        """Counters of the whole run (a snapshot): the sources' summed, plus the shared batches."""
        out = dataclasses.replace(self._run)
        for lane in self.lanes:
            out.captured += lane.stats.captured
            out.dropped += lane.stats.dropped
            out.processed += lane.stats.processed
            out.track_seconds += lane.stats.track_seconds
        return out

    def source_stats(self, index: int) -> PipelineStats:
        """Counters of one source (captured, dropped, processed, track seconds)."""
        return self.lanes[index].stats

    @property
    def realtime(self) -> bool:
        """A file source is played at its frame rate, like a camera (``live`` forced on a file)."""
        return any(lane.realtime for lane in self.lanes)

    def source_live(self, index: int) -> bool:
        """Source ``index`` runs in live mode (newest frame wins)."""
        return self.lanes[index].live

    def start(self) -> Pipeline:
        """Start the capture and inference threads (idempotent)."""
        if self._started:
            return self
        self._started = True
        self._run.started_at = time.monotonic()
        several = len(self.lanes) > 1
        self._threads = [
            threading.Thread(target=lane.capture, args=(self._stop,), daemon=True,
                             name=f"capture-{lane.name}" if several else "capture")
            for lane in self.lanes
        ]
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
        for lane in self.lanes:
            if lane.tracking.checker is not None:
                lane.tracking.checker.close(self.config.join_timeout)
        if not self._run.finished_at:
            self._run.finished_at = time.monotonic()

    def fail(self, stage: str, error: BaseException) -> None:
        """Record ``error`` of ``stage`` (the first one wins) and stop the run."""
        with self._error_lock:
            if self._error is None:
                self._error = (stage, error)
                log.debug("stage %s failed", stage, exc_info=error)
        self._stop.set()

    def end_remaining(self) -> list[SourceEnded]:
        """End the sources whose end was not handed out yet (the run stopped before: quit,
        Ctrl-C, a failure): their :class:`SourceEnded`, with the tracks still open. Main thread."""
        return [self._source_end(lane.index) for lane in self.lanes if not self._announced[lane.index]]

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[FrameResult | SourceEnded]:
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
            self._run.finished_at = time.monotonic()

    # -- main-thread part --------------------------------------------------------------------

    def _emit(self, out: _BatchOut) -> Iterator[FrameResult | SourceEnded]:
        several = len(self.lanes) > 1
        for cap, readings in zip(out.items, out.outputs):
            lane = self.lanes[cap.lane]
            yield self._result(cap, readings, out, lane, source=lane.name if several else None, source_index=lane.index)
        for i in out.ended:
            end = self._source_end(i)
            yield end
            if not several and end.exception is not None:  # the only source's failure is the run's
                self.fail("capture", end.exception)
                self._raise_if_failed()

    def _source_end(self, index: int) -> SourceEnded:
        """Source ``index`` has ended: its tracks are finished, its end described."""
        lane = self.lanes[index]
        self._announced[index] = True
        try:
            tracks = lane.tracking.finish()
        except Exception as exc:
            self.fail("tracking", exc)
            raise PipelineError("tracking", exc) from exc
        exc = lane.error
        error = None if exc is None else (str(exc) or type(exc).__name__)
        return SourceEnded(lane.name, index, error, exc, tracks)

    def _result(self, cap: Captured, readings: list[Reading], out: _BatchOut, lane: Lane, **tags: Any) -> FrameResult:
        """A frame's result: its bytes leave the budget, its source's tracker is updated."""
        lane.release(cap)
        update = None
        if lane.tracking.tracker is not None:
            t0 = time.perf_counter()
            try:
                update = lane.tracking.update(cap.frame, readings)
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

    def _guard(self, stage: str, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001 - carried to the main thread
            self.fail(stage, exc)

    def _claim(self) -> tuple[int, list[Captured], tuple[int, ...]] | None:
        """The next batch (or the end of some sources) with its sequence number; None once
        every source has ended or the run stops.

        File sources fill the batch up to ``batch_size`` (throughput); live sources give what
        is ready, never waited for (latency). With live sources and several idle workers, the
        ready frames are shared out between them (two idle workers and four ready cameras: two
        batches of two, run at the same time) instead of one worker taking all while the other
        waits: on a CPU, where each worker has its own cores, that halves the latency. With one
        worker (CUDA's default) one batch takes the newest frame of every camera."""
        cfg = self.config
        with self._take_lock:
            batch: list[Captured] = []
            ended: list[int] = []
            while not self._stop.is_set():
                self._arrived.clear()  # before looking: a frame put after the look sets it again
                before = len(batch)
                limit = self._share(before)
                self._collect(batch, ended, limit)
                grew = len(batch) > before
                if len(batch) >= limit or (ended and not batch):
                    break
                if batch and (not grew or not self._files_fill()):
                    break
                if not batch and all(self._ended):
                    return None
                self._arrived.wait(cfg.poll)
            if self._stop.is_set():
                return None
            seq = self._next_seq
            self._next_seq += 1
            if batch:
                with self._busy_lock:
                    self._busy += 1
            return seq, batch, tuple(ended)

    def _share(self, taken: int) -> int:
        """How many frames this batch may hold: ``batch_size``, or with live sources this
        worker's share of the frames ready now among the idle workers."""
        cfg = self.config
        idle = cfg.workers - self._busy
        if idle <= 1 or not any(lane.live and not self._ended[lane.index] for lane in self.lanes):
            return cfg.batch_size
        ready = taken + sum(1 for lane in self.lanes if not self._ended[lane.index] and lane.ready())
        return max(min(-(-ready // idle), cfg.batch_size), 1)

    def _files_fill(self) -> bool:
        """Worth waiting for more frames to fill the batch: only file sources are left, and one
        of them is still reading with room in its byte budget. Live frames never wait."""
        open_lanes = [lane for lane in self.lanes if not self._ended[lane.index]]
        if any(lane.live for lane in open_lanes):
            return False
        return any(not lane.done.is_set() and not (lane.budget is not None and lane.budget.waiting) for lane in open_lanes)

    def _collect(self, batch: list[Captured], ended: list[int], limit: int) -> None:
        """Add ready frames to ``batch``, round robin: one frame per source per round (at most
        ``live_buffer`` per live source per batch), until it holds ``limit`` frames or nothing
        is ready; sources found exhausted are added to ``ended``."""
        cfg = self.config
        n = len(self.lanes)
        held = sum(pixels(c) for c in batch)
        live_taken = [0] * n
        for c in batch:
            live_taken[c.lane] += 1
        progress = True
        while progress and len(batch) < limit:
            progress = False
            start = self._next
            for k in range(n):
                if len(batch) >= limit:
                    break
                i = (start + k) % n
                lane = self.lanes[i]
                if self._ended[i] or (lane.live and live_taken[i] >= cfg.live_buffer):
                    continue
                if self._remaining[i] == 0 or lane.exhausted():
                    self._end(i, ended)
                    continue
                item = lane.take_ready(cfg.batch_pixels - held if batch else None)
                if item is None:
                    continue
                batch.append(item)
                held += pixels(item)
                self._next = (i + 1) % n
                progress = True
                live_taken[i] += 1
                if self._remaining[i] is not None:
                    self._remaining[i] -= 1
                    if self._remaining[i] == 0:
                        self._end(i, ended)

    def _end(self, i: int, ended: list[int]) -> None:
        self._ended[i] = True
        self.lanes[i].stop.set()  # its capture thread may stop reading
        ended.append(i)

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
                if batch:  # a batch may only announce the end of some sources
                    try:
                        t0 = time.perf_counter()
                        outputs, timings = recognize_timed(self.recognizer, [c.frame.image for c in batch])
                        infer_s = time.perf_counter() - t0
                    finally:
                        with self._busy_lock:
                            self._busy -= 1
                    if not isinstance(outputs, list) or len(outputs) != len(batch):
                        got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
                        raise ValueError(f"recognize() returned {got} results for {len(batch)} images; expected one list per image")
                    with self._stats_lock:
                        self._run.batches += 1
                        self._run.infer_seconds += infer_s
                out = _BatchOut(seq, batch, outputs, infer_s, time.monotonic(), timings, ended)
                if not self._put_result(out):
                    return
        finally:
            # No more frames are needed once the workers stop taking them.
            for lane in self.lanes:
                lane.stop.set()
            with self._take_lock:
                self._workers_left -= 1
                last = self._workers_left == 0
            if last and not self._stop.is_set():
                self._put_result(_END)
