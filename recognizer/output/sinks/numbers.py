"""What every confirmed house number gains in a run: its evidence picture, the camera's position
and a check against the known numbers (``--evidence``, ``--gpx``/``--nmea``, ``--expect``,
``--geojson`` of ``recognizer run``; ``recognizer batch``).

:class:`NumbersSink` is a sink placed before the log: for each frame it keeps the crop of every
track whose best view (:class:`~recognizer.tracking.BestView`) is this frame, one crop per live
track, and for each ``confirmed``/``track_ended`` event works out the extra fields the log
writes into that event's record (:meth:`NumbersSink.fields`):

* ``evidence``: the picture, written when the number is confirmed and written again (same
  name) when the track ends with a better view of it;
* ``best_time`` -> ``time`` (UTC), ``lat``, ``lon``, ``fix_distance_m`` from the
  :class:`Placement` (the GPS track and the video's start time);
* ``known``, ``expected``, ``expected_share`` from the :class:`~recognizer.output.expect.KnownNumbers`.

At the end it writes the GeoJSON file asked for, from the same records.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recognizer.output.records import event_record
from recognizer.tracking import BestView, ConfirmedEvent, TrackEnded

if TYPE_CHECKING:
    from recognizer.output.evidence import EvidenceWriter
    from recognizer.output.expect import KnownNumbers
    from recognizer.output.geo import GeoTrack
    from recognizer.types import FrameResult

__all__ = ["NumbersSink", "Placement"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """How a video's times map onto the world: frame time ``t`` (seconds of video) was taken at
    ``start + t`` (seconds since the epoch, UTC; ``start`` includes ``--time-offset``), and the
    camera was where ``track`` says then (None: times only)."""

    start: float
    track: GeoTrack | None = None

    def fields(self, video_time: float) -> dict[str, Any]:
        from recognizer.output.geo import format_time

        when = self.start + video_time
        out: dict[str, Any] = {"time": format_time(when)}
        pos = self.track.position(when) if self.track is not None else None
        if pos is not None:
            out.update(lat=round(pos.lat, 7), lon=round(pos.lon, 7), fix_distance_m=round(pos.fix_distance_m, 2))
        return out


class NumbersSink:
    """Evidence pictures, positions and known-number checks of one source's confirmed numbers.

    Args:
        evidence: the writer of the pictures (None: none written).
        evidence_ref: how records name a picture: this folder path (relative to the log's
            folder) joined with the file name; default the writer's folder as given.
        placement: the video's start time and GPS track (None: no times or positions).
        known: the ``--expect`` numbers (None: no check).
        geojson: a GeoJSON file written at :meth:`close` (needs ``placement`` with a track).
        source: the source's name in a run of several sources (prefixes picture names).
        crop: ``crop(image, box) -> picture`` (default :func:`recognizer.output.evidence.crop_view`).
    """

    def __init__(self, *, evidence: EvidenceWriter | None = None, evidence_ref: str | None = None,
                 placement: Placement | None = None, known: KnownNumbers | None = None,
                 geojson: str | os.PathLike[str] | None = None, source: str | None = None, crop: Any = None) -> None:
        from recognizer.output.evidence import crop_view

        self.evidence = evidence
        self.evidence_ref = evidence_ref if evidence_ref is not None else (str(evidence.folder) if evidence else "")
        self.placement = placement
        self.known = known
        self.geojson = Path(geojson) if geojson is not None else None
        self.source = source
        self._crop = crop or crop_view
        self._views: dict[int, tuple[BestView, np.ndarray]] = {}  # track id -> its best view and crop
        self._written: dict[int, dict[str, int]] = {}  # track id -> text -> frame of the picture on disk
        self._fields: dict[int, dict[str, Any]] = {}  # id(event) -> fields, for this frame's events
        # The confirmed records and their tracks' ended records (a few per house number, not per
        # frame): the GeoJSON file and the status line are made from them.
        self._records: list[dict[str, Any]] = []
        self._announced: dict[int, set[str]] = {}  # live track id -> the numbers it announced
        self.geojson_features: int | None = None

    # -- the Sink interface ---------------------------------------------------------------

    def emit(self, result: FrameResult, image: np.ndarray | None = None) -> None:
        update = result.update
        self._fields = {}
        if update is None:
            return
        frame = result.frame
        if self.evidence is not None:
            for t in update.tracks:
                if t.seen and t.best is not None and t.best.frame == frame.index:
                    self._views[t.track_id] = (t.best, self._crop(frame.image, t.best.box))
        for ev in update.confirmed:
            self._announced.setdefault(ev.track_id, set()).add(ev.text)
            self._keep(ev, self._event(ev))
        self.finish(update.ended, keep=True)

    def finish(self, ended: tuple[TrackEnded, ...] | list[TrackEnded], *, keep: bool = False) -> None:
        """Handle tracks that ended (also those still open when the source ended, which the
        session passes here before it logs them); their crops are let go."""
        if not keep:
            self._fields = {}
        for ev in ended:
            texts = self._announced.pop(ev.track_id, None)
            if texts is not None:  # else it never announced a number: nothing to add
                out = self._event(ev) if ev.confirmed and ev.text in texts else {}
                # A number it announced but no longer reads ("350" of a plate that shows "1" as
                # it leaves): the --expect check again, with all the track's votes.
                later = {t: self._check(t, ev.tally) for t in sorted(texts - {ev.text})} if self.known is not None else {}
                if later:
                    out["announced"] = later
                self._keep(ev, out)
            self._views.pop(ev.track_id, None)
            self._written.pop(ev.track_id, None)

    def fields(self, event: ConfirmedEvent | TrackEnded) -> dict[str, Any]:
        """The extra fields of ``event``'s log record (empty for events it did not see)."""
        return self._fields.get(id(event), {})

    def close(self) -> None:
        """Write the queued pictures and the GeoJSON file; raises :class:`SinkError` when one
        cannot be written."""
        from recognizer.output.geo import write_geojson
        from recognizer.output.sinks.base import SinkError, os_reason

        self._views.clear()
        try:
            if self.evidence is not None:
                self.evidence.close()
        finally:
            if self.geojson is not None and self.geojson_features is None:
                numbers = self.numbers()
                if self.evidence is not None:  # the GeoJSON file names each picture relative to itself
                    for n in numbers:
                        if "evidence" in n:
                            n["evidence"] = Path(os.path.relpath(self.evidence.folder / Path(n["evidence"]).name,
                                                                 self.geojson.parent)).as_posix()
                try:
                    self.geojson_features = write_geojson(self.geojson, numbers)
                except OSError as exc:
                    raise SinkError(f"--geojson file '{self.geojson}': cannot write it ({os_reason(exc)})") from exc

    def numbers(self) -> list[dict[str, Any]]:
        """The confirmed numbers so far (:func:`recognizer.output.results.numbers_from_records`)."""
        from recognizer.output.results import numbers_from_records

        return numbers_from_records(self._records)

    def status_line(self) -> str:
        numbers = self.numbers()
        parts = []
        if self.evidence is not None:
            parts.append(self.evidence.status_line())
        if self.placement is not None and self.placement.track is not None:
            placed = sum("lat" in n for n in numbers)
            parts.append(f"positions: {placed} of {len(numbers)} numbers placed")
        if self.known is not None:
            unknown = sum(n.get("known") is False for n in numbers)
            near = sum("expected" in n for n in numbers)
            parts.append(f"expect: {unknown} of {len(numbers)} numbers not in '{self.known.path}'"
                         + (f", {near} one digit from a known number" if near else ""))
        if self.geojson is not None and self.geojson_features is not None:
            parts.append(f"geojson: {self.geojson_features} points written to {self.geojson}")
        return "; ".join(parts)

    # -- internals ------------------------------------------------------------------------

    def _event(self, ev: ConfirmedEvent | TrackEnded) -> dict[str, Any]:
        out: dict[str, Any] = {}
        confirmed = isinstance(ev, ConfirmedEvent)
        # The best view is of this number only when it read this number (the stable text can
        # be one no single reading had, or come back to an earlier one).
        best = ev.best if ev.best is not None and ev.best.text == ev.text else None
        view = self._views.get(ev.track_id)
        if self.evidence is not None and view is not None:
            shown, crop = view
            name = _name(ev.track_id, ev.text, self.source)
            done = self._written.setdefault(ev.track_id, {})
            if ev.text in done:  # a better view of a number already pictured replaces it
                if shown.text == ev.text and done[ev.text] != shown.frame:
                    self.evidence.write(name, crop)
                    done[ev.text] = shown.frame
            elif confirmed:  # the first picture: the track's best view, even of a near read
                self.evidence.write(name, crop)
                done[ev.text] = shown.frame
            if ev.text in done:
                out["evidence"] = f"{self.evidence_ref.rstrip('/')}/{name}" if self.evidence_ref else name
        # Placed at the best view, or where it was confirmed; a track's end without a view of
        # the number leaves the position it had.
        video_time = best.time if best is not None else ev.timestamp if confirmed else None
        if self.placement is not None and video_time is not None:
            out.update(self.placement.fields(video_time))
        if self.known is not None:
            out.update(self._check(ev.text, ev.tally))
        return out

    def _check(self, text: str, tally: Any) -> dict[str, Any]:
        assert self.known is not None
        out: dict[str, Any] = {"known": text in self.known}
        guess = self.known.expected(text, tally)
        if guess is not None:
            out["expected"], out["expected_share"] = guess[0], round(guess[1], 4)
        return out

    def _keep(self, ev: ConfirmedEvent | TrackEnded, out: dict[str, Any]) -> None:
        """``out`` goes into ``ev``'s log record; the record is kept for the GeoJSON file."""
        self._fields[id(ev)] = out
        self._records.append(event_record(ev, self.source, out))


def _name(track_id: int, text: str, source: str | None) -> str:
    from recognizer.output.evidence import evidence_name

    return evidence_name(track_id, text, source)


@dataclass(frozen=True)
class NumbersPlan:
    """What ``recognizer batch`` adds to every file's numbers (sent to the workers; picklable).

    Attributes:
        evidence: write each file's evidence pictures (``DIR/<name>.evidence/``).
        track: the GPS track of the whole run (None: no positions).
        starts: the start time of each video (its path -> seconds since the epoch, UTC,
            ``--time-offset`` included); a file not in it gets no time or position.
        known: the ``--expect`` numbers.
    """

    evidence: bool = True
    track: GeoTrack | None = None
    starts: dict[str, float] | None = None
    known: KnownNumbers | None = None

    def sink(self, path: str, evidence_dir: str | os.PathLike[str] | None, evidence_ref: str) -> NumbersSink | None:
        """The sink of the file at ``path`` (None when nothing is asked), writing its pictures
        into ``evidence_dir`` and naming them ``evidence_ref/NAME`` in the records."""
        from recognizer.output.evidence import EvidenceWriter

        start = (self.starts or {}).get(path)
        placement = Placement(start, self.track) if start is not None else None
        writer = EvidenceWriter(evidence_dir, what=f"evidence folder '{evidence_ref}'") if self.evidence and evidence_dir else None
        if writer is None and placement is None and self.known is None:
            return None
        return NumbersSink(evidence=writer, evidence_ref=evidence_ref, placement=placement, known=self.known)
