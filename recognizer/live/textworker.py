"""The text reader in video: each track's number region read on a budget, on a thread of its own.

Every frame still goes through the digit detector and SmallCNN (the fast path). Beside it,
:class:`TextChecker` picks, after each tracker update on the main thread, the tracks worth a
second opinion:

* a track that was never read by the text reader (it just started),
* a track whose vote is uncertain (its stable text holds less than ``uncertain_share`` of
  the vote, or it is not confirmed yet),

each at most once per ``track_interval`` seconds, and all of them together at most
``reads_per_second`` times a second. Their regions are cut from the frame's original pixels
(padded like the still-image fusion) and handed to a worker thread through a small bounded
queue: when the worker is busy the request is dropped, so capture, inference and display never
wait for it. Reads come back to the main thread, which enters them into the track's vote
(:meth:`recognizer.tracking.Tracker.text_vote`) before the next update: a number votes with
its own weight, letters block the track's confirmation.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recognizer.models.textreader import TextRead, overlap_of_smaller, pad_box
from recognizer.types import Reading

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextCheckConfig:
    """Budget and padding of the text reader in video (see the module docstring).

    Attributes:
        reads_per_second: at most this many regions read per second of wall time (all tracks).
        track_interval: seconds between two reads of the same track.
        uncertain_share: a confirmed track whose stable text holds at least this share of its
            vote is not read again.
        min_score: a read of a number below this score does not vote.
        max_reads_per_track: a track is read at most this many times.
        pad_x, pad_y: region padding, fractions of the region's height.
        queue_size: requests waiting for the worker; more are dropped.
        detect_interval: seconds of the source's time between two passes of the text
            detector over a whole frame (the ``accurate`` mode); 0 turns it off. A text line
            it finds away from every track and the text reader reads as a number with at
            least ``new_score`` enters the next frame's readings (source ``"text"``).
        detect_max_side: the text detector sees the frame with this longer side (pixels).
        new_score: see ``detect_interval``.
    """

    reads_per_second: float = 4.0
    track_interval: float = 0.5
    uncertain_share: float = 0.8
    max_reads_per_track: int = 6
    pad_x: float = 0.6
    pad_y: float = 0.25
    min_score: float = 0.5
    queue_size: int = 2
    detect_interval: float = 0.0
    detect_max_side: int = 960
    new_score: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 < self.reads_per_second <= 1000.0:
            raise ValueError(f"reads_per_second={self.reads_per_second!r}; expected a number in (0, 1000]")
        if self.track_interval < 0 or self.max_reads_per_track < 1 or self.queue_size < 1:
            raise ValueError("track_interval must be >= 0, max_reads_per_track and queue_size >= 1")
        if self.detect_interval < 0 or not 64 <= self.detect_max_side <= 8192 or not 0 <= self.new_score <= 1:
            raise ValueError("detect_interval must be >= 0, detect_max_side in 64..8192, new_score in [0, 1]")


@dataclass
class TextCheckStats:
    """What the text reader did in a run."""

    requested: int = 0
    dropped: int = 0
    reads: int = 0
    numbers: int = 0
    letters: int = 0
    seconds: float = 0.0
    detections: int = 0
    found: int = 0  # numbers the text detector found away from every track
    tracks: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "dropped": self.dropped, "reads": self.reads, "numbers": self.numbers,
                "letters": self.letters, "tracks_read": len(self.tracks), "detections": self.detections,
                "found": self.found, "seconds": round(self.seconds, 3)}


class TextChecker:
    """Reads tracks' regions with a :class:`recognizer.models.textreader.TextReader` off the frame loop.

    Call :meth:`apply` before and :meth:`submit` after each tracker update, on the thread that
    owns the tracker; :meth:`close` at the end. The reader runs on a daemon thread.
    """

    def __init__(self, reader: Any, config: TextCheckConfig | None = None, *, clock: Any = time.monotonic,
                 synchronous: bool = False) -> None:
        self.reader = reader
        self.config = config or TextCheckConfig()
        self.stats = TextCheckStats()
        self.synchronous = synchronous
        self._clock = clock
        self._requests: queue.Queue[Any] = queue.Queue(self.config.queue_size)
        self._results: queue.SimpleQueue[tuple[int, TextRead]] = queue.SimpleQueue()
        self._found: queue.SimpleQueue[Reading] = queue.SimpleQueue()
        self._last_detect: float | None = None
        self._warned = False
        self._last_read: dict[int, float] = {}
        self._reads: dict[int, int] = {}
        self._tokens = 1.0
        self._refilled: float | None = None
        self._thread = threading.Thread(target=self._work, name="text-reader", daemon=True)
        if not synchronous:
            self._thread.start()

    # -- main thread ---------------------------------------------------------------------------

    def apply(self, tracker: Any) -> int:
        """Enter the reads that came back into ``tracker``; returns how many were applied."""
        applied = 0
        while True:
            try:
                track_id, read = self._results.get_nowait()
            except queue.Empty:
                return applied
            if read.is_letters:
                ok = tracker.text_vote(track_id, "", read.score, letters=True)
            elif read.kind == "number" and read.score >= self.config.min_score:
                ok = tracker.text_vote(track_id, read.digits, read.score)
            else:
                ok = False
            applied += int(ok)

    def found(self) -> list[Reading]:
        """Numbers the text detector found since the last call (main thread): readings to add
        to the next frame's."""
        out = []
        while True:
            try:
                out.append(self._found.get_nowait())
            except queue.Empty:
                return out

    def submit(self, image: np.ndarray, update: Any, timestamp: float | None = None) -> int:
        """Ask for reads of the tracks of this update that need one (and, every
        ``detect_interval`` seconds of ``timestamp``, a text-detector pass over ``image``);
        returns how many requests were queued."""
        # Offline (synchronous), the budget runs on the source's own time: the same file gives
        # the same reads, however busy the machine is.
        now = timestamp if self.synchronous and timestamp is not None else self._clock()
        if self._refilled is None:
            self._refilled = now
        cfg = self.config
        if cfg.detect_interval > 0 and timestamp is not None and (
                self._last_detect is None or timestamp - self._last_detect >= cfg.detect_interval):
            boxes = np.array([t.box for t in getattr(update, "tracks", ())], np.float64).reshape(-1, 4)
            if self.synchronous:
                self._last_detect = timestamp
                self._process([("detect", image, boxes)])
            else:
                try:
                    self._requests.put_nowait(("detect", image.copy(), boxes))
                    self._last_detect = timestamp
                except queue.Full:
                    self.stats.dropped += 1
        self._tokens = min(1.0, self._tokens + (now - self._refilled) * cfg.reads_per_second)
        self._refilled = now
        queued = 0
        tracks = list(getattr(update, "tracks", ()))
        live = {t.track_id for t in tracks}
        # Tracks never read first (a new plate), then the one read longest ago.
        tracks.sort(key=lambda t: (self._reads.get(t.track_id, 0) > 0, self._last_read.get(t.track_id, -1e9)))
        pending: list[Any] = []
        for t in tracks:
            if not t.seen or self._tokens < 1.0:
                continue
            n = self._reads.get(t.track_id, 0)
            if n >= cfg.max_reads_per_track:
                continue
            if n and t.confirmed and t.support >= cfg.uncertain_share:
                continue
            if n and now - self._last_read.get(t.track_id, -1e9) < cfg.track_interval:
                continue
            a, b, c, d = pad_box(t.box, cfg.pad_x, cfg.pad_y, image.shape)
            crop = np.ascontiguousarray(image[b:d, a:c])
            self.stats.requested += 1
            if self.synchronous:
                pending.append(("read", t.track_id, crop))
                self._tokens -= 1.0
                self._reads[t.track_id] = n + 1
                self._last_read[t.track_id] = now
                queued += 1
                continue
            try:
                self._requests.put_nowait(("read", t.track_id, crop))
            except queue.Full:
                self.stats.dropped += 1
                break
            self._tokens -= 1.0
            self._reads[t.track_id] = n + 1
            self._last_read[t.track_id] = now
            queued += 1
        if pending:
            self._process(pending)  # synchronous: read now, entered at the next update
        for gone in [k for k in self._reads if k not in live]:
            self._reads.pop(gone, None)
            self._last_read.pop(gone, None)
        return queued

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (reads still queued are dropped)."""
        if not self._thread.is_alive():
            return
        while True:
            try:
                self._requests.get_nowait()
            except queue.Empty:
                break
        try:
            self._requests.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

    # -- worker thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._requests.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 8:
                try:
                    more = self._requests.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._requests.put(None)  # keep the stop for the outer loop
                    break
                batch.append(more)
            self._process(batch)

    def _process(self, batch: list[Any]) -> None:
        """Do the requests of ``batch`` (text-detector passes, then track reads in one call)."""
        t0 = time.perf_counter()
        try:
            for job in [b for b in batch if b[0] == "detect"]:
                self._detect(job[1], job[2])
            batch = [b for b in batch if b[0] == "read"]
            reads = self.reader.read([crop for _, _, crop in batch]) if batch else []
        except Exception as exc:  # noqa: BLE001 - the second reader must never stop the run
            if not self._warned:
                log.warning("text reader failed (%s); the digit models go on alone", exc)
                self._warned = True
            return
        finally:
            self.stats.seconds += time.perf_counter() - t0
        for (_, track_id, _), read in zip(batch, reads):
            self.stats.reads += 1
            self.stats.tracks.add(track_id)
            self.stats.letters += int(read.is_letters)
            self.stats.numbers += int(read.kind == "number")
            self._results.put((track_id, read))

    def _detect(self, image: np.ndarray, track_boxes: np.ndarray) -> None:
        """A text-detector pass over a frame: numbers away from every track become readings."""
        from recognizer.models.fusion import text_reading

        cfg = self.config
        self.stats.detections += 1
        boxes, _ = self.reader.detect(image, max_side=cfg.detect_max_side)
        if len(boxes) and len(track_boxes):
            boxes = boxes[overlap_of_smaller(boxes.astype(np.float64), track_boxes).max(axis=1) < 0.3]
        if not len(boxes):
            return
        reads = self.reader.read_regions(image, boxes, pad_x=cfg.pad_x, pad_y=cfg.pad_y)
        for box, read in zip(boxes, reads):
            if read.kind == "number" and read.score >= cfg.new_score:
                self.stats.found += 1
                self._found.put(text_reading(read, box))


DEFAULT_LIVE_MODE = "fast"
"""Cameras and streams: the text reader reads tracks, no text detector (real time first)."""
DEFAULT_OFFLINE_MODE = "accurate"
"""Files without a window (``recognizer run FILE``, ``recognizer batch``): no real-time limit,
so the text detector also looks at a frame every ``detect_interval`` seconds."""


def video_mode(requested: str | None, *, live: bool) -> str:
    """The reader mode a video run uses: ``requested`` (``--reader``), else the default for
    live or offline sources."""
    return requested or (DEFAULT_LIVE_MODE if live else DEFAULT_OFFLINE_MODE)


def make_checker(mode: str, reader: Any, *, detect_interval: float = 1.0, synchronous: bool = False) -> TextChecker | None:
    """The :class:`TextChecker` of a video run in ``mode`` (None for ``digits`` or no reader).

    ``synchronous``: for files read offline: reads happen on the calling thread when asked and
    the budget counts the video's own seconds, so a file gives the same result every run (a
    live run reads on a thread of its own and never waits)."""
    if mode == "digits" or reader is None:
        return None
    cfg = TextCheckConfig(detect_interval=detect_interval if mode == "accurate" else 0.0)
    return TextChecker(reader, cfg, synchronous=synchronous)
