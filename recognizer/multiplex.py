"""Several sources, one model: frames of every source go into shared inference batches.

::

    capture thread per source --frames--> inference worker(s) --batches--> main thread
      live: newest-frame slot (drops counted)   one batch mixes sources    per source: track,
      file: bounded queue, never drops          (round robin)              then sinks

The anchor is DeepStream's stream multiplexer. Each source keeps what it has with one source
(:class:`~recognizer.pipeline.Pipeline`): its own drop policy, frame index, timestamps,
reconnect and tracker; only the model is shared. A batch takes the newest ready frame of each
live source and the next frames of the files, one source after the other (round robin,
starting after the source served last), so a busy source cannot starve another; a source that
has nothing ready (stalled, reconnecting) is skipped, it never holds the batch up. With one
worker (CUDA's default) one batch takes the newest frame of every camera; with two CPU workers
the frames ready are shared out between the idle workers (see :meth:`MultiPipeline._claim`).

A source that fails (lost for good, a read error) ends alone: its frames so far are delivered,
then a :class:`SourceEnded` with the error, and the others go on. A failure of the model or a
tracker ends the whole run, as with one source (:class:`~recognizer.pipeline.PipelineError`).

Usage (main thread)::

    sources = [open_source(0), open_source("rtsp://gate-2/stream")]
    for s in sources:
        s.open()
    with MultiPipeline(sources, recognizer, names=["gate1", "gate2"],
                       trackers=[Tracker(), Tracker()]) as pipe:
        for item in pipe:
            if isinstance(item, SourceEnded):
                print(item.name, "ended", item.error or "")
            else:
                print(item.source, item.frame.index, [r.text for r in item.readings])
"""
from __future__ import annotations

import glob
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from recognizer.pipeline import (
    FrameResult,
    Pipeline,
    PipelineConfig,
    PipelineStats,
    RecognizerLike,
    _BatchOut,
    _Captured,
    _Lane,
    _pixels,
    _TrackStage,
)
from recognizer.sources import Source, SourceError
from recognizer.tracking import Tracker

__all__ = ["MultiPipeline", "SourceEnded", "UnopenedSource", "default_name", "name_sources"]


@dataclass(frozen=True)
class SourceEnded:
    """Yielded by :class:`MultiPipeline` after the last frame of a source.

    Attributes:
        name: the source's name; index: its position in the run.
        error: why it failed, one line (``"camera 'camera 2' was lost and did not come back
            within 30 s"``); None when it simply ended (end of file, ``max_frames``).
        exception: the exception behind ``error``.
    """

    name: str
    index: int
    error: str | None = None
    exception: BaseException | None = None


class UnopenedSource(Source):
    """Stands in for a source that could not be opened: its first read raises the error, so
    the run reports it like a source lost for good and goes on with the others."""

    def __init__(self, source: Source, error: BaseException) -> None:
        super().__init__(source.name)
        self.kind, self.live, self.fps = source.kind, source.live, source.fps
        self.error = error

    def open(self) -> None:
        pass

    def read(self, should_stop: Any = None) -> Any:
        raise self.error

    def close(self) -> None:
        pass


def default_name(spec: str, position: int) -> str:
    """A short name for a source spec, usable in file names: ``cam0`` for camera 0, the file's
    or folder's stem, the stream's last path part or host; ``src<position>`` otherwise."""
    text = str(spec).strip()
    if text.isdigit():
        return f"cam{int(text)}"
    if "://" in text:
        url = urlparse(text)
        base = os.path.splitext(os.path.basename(url.path.rstrip("/")))[0] or (url.hostname or "")
    else:
        base = os.path.splitext(os.path.basename(text.rstrip("/\\")))[0]
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-")
    return base or f"src{position}"


_NAMED = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,39})=(.+)$")
NAME_RULE = "a name starts with a letter and has at most 40 letters, digits, '_' or '-'"
"""What :func:`name_sources` accepts before ``=`` (names become parts of file names)."""


def _meant_as_name(spec: str) -> str | None:
    """The text before ``=`` when ``spec`` reads as ``NAME=SOURCE`` with a name that is not
    valid (``../x=clip.mp4``, ``a/b=0``, ``=clip.mp4``): what follows ``=`` is a source that
    exists (a path, a camera index, a URL, a glob that matches) and the whole is none."""
    prefix, sep, rest = spec.partition("=")
    if not sep or "://" in prefix or os.path.exists(spec) or glob.glob(spec):
        return None
    rest = rest.strip()
    plausible = rest.isdigit() or "://" in rest or os.path.exists(rest) or bool(rest and glob.glob(rest))
    return prefix if plausible else None


def name_sources(specs: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, spec)`` for each spec: ``NAME=SPEC`` names it (unless the whole text is an
    existing path or a glob that matches), otherwise :func:`default_name`; names made unique
    with ``-2``, ``-3``.

    Raises:
        SourceError: a spec that names a source with an invalid name (:data:`NAME_RULE`).
    """
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for i, spec in enumerate(specs):
        m = _NAMED.match(spec)
        if m and not os.path.exists(spec) and not glob.glob(spec):
            name, spec = m.group(1), m.group(2)
        elif (bad := _meant_as_name(spec)) is not None:
            what = f"source name '{bad}'" if bad else "empty source name"
            raise SourceError(f"{what} (in '{spec}') is not valid: {NAME_RULE}")
        else:
            name = default_name(spec, i)
        unique, k = name, 2
        while unique.lower() in used:
            unique, k = f"{name}-{k}", k + 1
        used.add(unique.lower())
        out.append((unique, spec))
    return out


class MultiPipeline(Pipeline):
    """Several opened sources through one recognizer; iterate it on the main thread.

    Yields :class:`~recognizer.pipeline.FrameResult` (``source``/``source_index`` name the
    frame's source; frames of one source come in their order) and one :class:`SourceEnded`
    per source after its last frame. The iteration ends when every source has ended.

    Args:
        sources: opened sources (cameras, streams, files, ... mixed).
        recognizer: as for :class:`~recognizer.pipeline.Pipeline`.
        names: one name per source (default ``src0``, ``src1``, ...).
        trackers: one tracker per source (or None for no tracking).
        config: as for one source; per source: ``live`` (None: each source's own default),
            ``max_frames`` (frames of each source), ``queue_size``, ``live_buffer``;
            ``max_frame_bytes`` is shared out between the file sources. ``batch_size`` is
            the most frames of a batch, all sources together.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        recognizer: RecognizerLike,
        *,
        names: Sequence[str] | None = None,
        trackers: Sequence[Tracker | None] | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        if not sources:
            raise ValueError("MultiPipeline needs at least one source")
        config = config or PipelineConfig()
        names = list(names) if names is not None else [f"src{i}" for i in range(len(sources))]
        trackers = list(trackers) if trackers is not None else [None] * len(sources)
        if len(names) != len(sources) or len(trackers) != len(sources) or len(set(names)) != len(names):
            raise ValueError("expected one unique name and one tracker per source")
        lives = [config.live if config.live is not None else bool(s.live) for s in sources]
        self.sources = list(sources)
        self.source = self.sources[0]
        self.names = names
        self.live = any(lives)
        self._setup(recognizer, config, live=self.live)
        self._arrived = threading.Event()  # set by a capture thread after each frame
        files = max(sum(1 for live in lives if not live), 1)
        self.lanes: list[_Lane] = []
        for i, (src, live) in enumerate(zip(self.sources, lives)):
            realtime = (live and not src.live) if config.realtime is None else bool(config.realtime and not src.live)
            lane = _Lane(src, config, PipelineStats(), live=live, realtime=realtime, index=i,
                         frame_bytes=max(config.max_frame_bytes // files, 1), on_frame=self._arrived.set)
            self.lanes.append(lane)
        self.trackers = trackers
        self._tracking = [_TrackStage(t) for t in trackers]
        self._remaining = [config.max_frames] * len(sources)  # frames each source may still give
        self._ended = [False] * len(sources)  # announced as ended
        self._next = 0  # round robin: the source served first in the next batch
        self._busy = 0  # workers inferring a batch they claimed
        self._busy_lock = threading.Lock()

    # -- figures -----------------------------------------------------------------------------

    def source_stats(self, index: int) -> PipelineStats:
        """Counters of one source (captured, dropped, processed, track seconds)."""
        return self.lanes[index].stats

    def totals(self) -> PipelineStats:
        """Counters of the whole run: the sources' summed, plus the shared batches."""
        out = PipelineStats(batches=self.stats.batches, infer_seconds=self.stats.infer_seconds,
                            started_at=self.stats.started_at, finished_at=self.stats.finished_at)
        for lane in self.lanes:
            out.captured += lane.stats.captured
            out.dropped += lane.stats.dropped
            out.processed += lane.stats.processed
            out.track_seconds += lane.stats.track_seconds
        return out

    # -- threads -----------------------------------------------------------------------------

    def _capture_threads(self) -> list[threading.Thread]:
        return [
            threading.Thread(target=self._capture_one, args=(lane,), name=f"capture-{self.names[lane.index]}", daemon=True)
            for lane in self.lanes
        ]

    def _capture_one(self, lane: _Lane) -> None:
        # A source's failure is its own: kept in ``lane.error`` (before ``lane.done`` is set),
        # announced after its last frame; the other sources go on.
        try:
            lane.capture(self._stop)
        except BaseException:  # noqa: BLE001, S110 - reported through SourceEnded
            pass

    def _stop_capture(self) -> None:
        for lane in self.lanes:
            lane.stop.set()

    def _inferred(self) -> None:
        with self._busy_lock:
            self._busy -= 1

    def _claim(self) -> tuple[int, list[_Captured], tuple[int, ...]] | None:
        """The next batch (or the end of some sources) with its sequence number; None once
        every source has ended or the run stops.

        With live sources and several idle workers, the ready frames are shared out between
        them (two idle workers and four ready cameras: two batches of two, run at the same
        time) instead of one worker taking all while the other waits: on a CPU, where each
        worker has its own cores, that halves the latency. With one worker (CUDA's default)
        one batch takes the newest frame of every camera."""
        cfg = self.config
        with self._take_lock:
            batch: list[_Captured] = []
            ended: list[int] = []
            grew = True
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

    def _collect(self, batch: list[_Captured], ended: list[int], limit: int) -> None:
        """Add ready frames to ``batch``, round robin: one frame per source per round (at most
        one per live source per batch), until it holds ``limit`` frames or nothing is ready;
        sources found exhausted are added to ``ended``."""
        cfg = self.config
        n = len(self.lanes)
        pixels = sum(_pixels(c) for c in batch)
        served_live = {c.lane for c in batch if self.lanes[c.lane].live}
        progress = True
        while progress and len(batch) < limit:
            progress = False
            start = self._next
            for k in range(n):
                if len(batch) >= limit:
                    break
                i = (start + k) % n
                lane = self.lanes[i]
                if self._ended[i] or i in served_live:
                    continue
                if self._remaining[i] == 0 or lane.exhausted():
                    self._end(i, ended)
                    continue
                item = lane.take_ready(cfg.batch_pixels - pixels if batch else None)
                if item is None:
                    continue
                batch.append(item)
                pixels += _pixels(item)
                self._next = (i + 1) % n
                progress = True
                if lane.live:
                    served_live.add(i)
                if self._remaining[i] is not None:
                    self._remaining[i] -= 1
                    if self._remaining[i] == 0:
                        self._end(i, ended)

    def _end(self, i: int, ended: list[int]) -> None:
        self._ended[i] = True
        self.lanes[i].stop.set()  # its capture thread may stop reading
        ended.append(i)

    # -- main-thread part --------------------------------------------------------------------

    def _emit(self, out: _BatchOut) -> Iterator[Any]:
        for cap, readings in zip(out.items, out.outputs):
            lane = self.lanes[cap.lane]
            result: FrameResult = self._result(cap, readings, out, lane, self._tracking[cap.lane],
                                               source=self.names[cap.lane], source_index=cap.lane)
            self.stats.processed += 1
            yield result
        for i in out.ended:
            exc = self.lanes[i].error
            error = None if exc is None else (str(exc) or type(exc).__name__)
            yield SourceEnded(self.names[i], i, error, exc)
