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

from recognizer.textreader import TextRead, pad_box

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextCheckConfig:
    """Budget and padding of the text reader in video (see the module docstring).

    Attributes:
        reads_per_second: at most this many regions read per second of wall time (all tracks).
        track_interval: seconds between two reads of the same track.
        uncertain_share: a confirmed track whose stable text holds at least this share of its
            vote is not read again.
        max_reads_per_track: a track is read at most this many times.
        pad_x, pad_y: region padding, fractions of the region's height.
        queue_size: requests waiting for the worker; more are dropped.
    """

    reads_per_second: float = 4.0
    track_interval: float = 0.5
    uncertain_share: float = 0.8
    max_reads_per_track: int = 6
    pad_x: float = 0.35
    pad_y: float = 0.15
    queue_size: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.reads_per_second <= 1000.0:
            raise ValueError(f"reads_per_second={self.reads_per_second!r}; expected a number in (0, 1000]")
        if self.track_interval < 0 or self.max_reads_per_track < 1 or self.queue_size < 1:
            raise ValueError("track_interval must be >= 0, max_reads_per_track and queue_size >= 1")


@dataclass
class TextCheckStats:
    """What the text reader did in a run."""

    requested: int = 0
    dropped: int = 0
    reads: int = 0
    numbers: int = 0
    letters: int = 0
    seconds: float = 0.0
    tracks: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "dropped": self.dropped, "reads": self.reads, "numbers": self.numbers,
                "letters": self.letters, "tracks_read": len(self.tracks), "seconds": round(self.seconds, 3)}


class TextChecker:
    """Reads tracks' regions with a :class:`recognizer.textreader.TextReader` off the frame loop.

    Call :meth:`apply` before and :meth:`submit` after each tracker update, on the thread that
    owns the tracker; :meth:`close` at the end. The reader runs on a daemon thread.
    """

    def __init__(self, reader: Any, config: TextCheckConfig | None = None, *, clock: Any = time.monotonic) -> None:
        self.reader = reader
        self.config = config or TextCheckConfig()
        self.stats = TextCheckStats()
        self._clock = clock
        self._requests: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(self.config.queue_size)
        self._results: queue.SimpleQueue[tuple[int, TextRead]] = queue.SimpleQueue()
        self._last_read: dict[int, float] = {}
        self._reads: dict[int, int] = {}
        self._tokens = 1.0
        self._refilled = clock()
        self._thread = threading.Thread(target=self._work, name="text-reader", daemon=True)
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
            elif read.kind == "number":
                ok = tracker.text_vote(track_id, read.digits, read.score)
            else:
                ok = False
            applied += int(ok)

    def submit(self, image: np.ndarray, update: Any) -> int:
        """Ask for reads of the tracks of this update that need one; returns how many were queued."""
        now = self._clock()
        cfg = self.config
        self._tokens = min(1.0, self._tokens + (now - self._refilled) * cfg.reads_per_second)
        self._refilled = now
        queued = 0
        live = set()
        for t in getattr(update, "tracks", ()):
            live.add(t.track_id)
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
            try:
                self._requests.put_nowait((t.track_id, crop))
            except queue.Full:
                self.stats.dropped += 1
                break
            self._tokens -= 1.0
            self._reads[t.track_id] = n + 1
            self._last_read[t.track_id] = now
            queued += 1
        for gone in [k for k in self._reads if k not in live]:
            self._reads.pop(gone, None)
            self._last_read.pop(gone, None)
        return queued

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (reads still queued are dropped)."""
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
            t0 = time.perf_counter()
            try:
                reads = self.reader.read([crop for _, crop in batch])
            except Exception as exc:  # noqa: BLE001 - the second reader must never stop the run
                log.warning("text reader failed (%s); the digit models go on alone", exc)
                continue
            self.stats.seconds += time.perf_counter() - t0
            for (track_id, _), read in zip(batch, reads):
                self.stats.reads += 1
                self.stats.tracks.add(track_id)
                self.stats.letters += int(read.is_letters)
                self.stats.numbers += int(read.kind == "number")
                self._results.put((track_id, read))
