"""The JSON Lines log schema: every record is built here, and read back here.

A log (``recognizer run --log``, ``--dump``'s ``readings.jsonl``, the demo's
``readings.jsonl``) is a sequence of JSON objects, one per line, each with a ``"type"``:

- ``"run"``: first line; what was read (:func:`run_record`).
- ``"frame"``: one per processed frame, its readings and live tracks (:func:`frame_record`).
- ``"confirmed"``: a house number confirmed by the tracker (:func:`event_record`).
- ``"track_ended"``: a track retired, with its final text and frame range (:func:`event_record`).
- ``"summary"``: last line; how the run ended (:func:`summary_record`).

``confirmed`` and ``track_ended`` records carry the track's best view so far (``best_frame``,
``best_time``: the frame where its reading of the number was most confident), and, when the run
was asked for them (:mod:`recognizer.output.sinks.numbers`): ``evidence`` (the JPEG of that view,
relative to the log's folder), ``lat``, ``lon`` and ``fix_distance_m`` (the camera's position
at the best view, metres to the nearest GPS fix), ``known`` (the number is in the ``--expect``
list), ``expected`` and ``expected_share`` (a known number one digit away and its share of the
track's votes). A track's ``track_ended`` record has the final best view, position and check
of the number it still reads; ``announced`` holds the check, with all the track's votes, of
numbers it announced earlier but reads differently at its end (``{"350": {"known": false,
"expected": "1350", ...}}``).

In a run of several sources (``recognizer run SOURCE SOURCE ...``) the first record lists them
all (``"sources"``: name -> description), and every other record names its source right after
its type (``{"type": "frame", "source": "left", ...}``); each source's summary comes when it
ends, and the last line is the summary of the whole run (without ``"source"``). A run of one
source writes no ``"source"`` name: its records are as they have always been.

Sinks (:mod:`recognizer.output.sinks`) write these records; :func:`read_log` and :func:`of_type`
read them back (the demo's scoring, tests, ``recognizer batch``'s table).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from recognizer.tracking import ConfirmedEvent, TrackEnded, TrackState, TrackUpdate
from recognizer.types import Reading

__all__ = [
    "CONFIRMED",
    "FRAME",
    "RUN",
    "SUMMARY",
    "TRACK_ENDED",
    "event_record",
    "frame_record",
    "of_type",
    "read_log",
    "rescale_reading",
    "run_record",
    "summary_record",
    "track_record",
]

log = logging.getLogger(__name__)

RUN = "run"
FRAME = "frame"
CONFIRMED = "confirmed"
TRACK_ENDED = "track_ended"
SUMMARY = "summary"


def _scale_box(box: Sequence[float], scale: tuple[float, float]) -> tuple[float, float, float, float]:
    sx, sy = scale
    x1, y1, x2, y2 = box
    return (float(x1) * sx, float(y1) * sy, float(x2) * sx, float(y2) * sy)


def rescale_reading(reading: Reading, scale: tuple[float, float]) -> Reading:
    """``reading`` with its boxes multiplied by ``scale`` = (x factor, y factor).

    Frames downscaled on read (see :data:`recognizer.io.sources.MAX_SIDE`) are read in their own
    pixels; this maps a reading back to the pixels of the file.
    """
    digits = tuple(dataclasses.replace(d, box=_scale_box(d.box, scale)) for d in reading.digits)
    return dataclasses.replace(reading, box=_scale_box(reading.box, scale), digits=digits)


def track_record(track: TrackState, scale: tuple[float, float] | None = None) -> dict[str, Any]:
    """One live track inside a frame record (``box`` in the file's pixels when ``scale`` is given)."""
    box = [round(v, 2) for v in track.box]
    if scale is not None:  # scaled from the rounded box, as the logs have always been written
        box = [round(v, 2) for v in _scale_box(box, scale)]
    return {
        "track_id": track.track_id,
        "box": box,
        "text": track.stable_text,
        "support": round(track.support, 4),
        "hits": track.hits,
        "first_frame": track.first_frame,
        "last_frame": track.last_frame,
        "seen": track.seen,
        "confirmed": track.confirmed,
    }


def _tagged(kind: str, source: str | None) -> dict[str, Any]:
    """The start of a record: its type, then its source's name in a run of several sources."""
    return {"type": kind} if source is None else {"type": kind, "source": source}


def frame_record(
    frame_index: int,
    timestamp: float,
    readings: Sequence[Reading],
    update: TrackUpdate | None = None,
    origin: str | None = None,
    scale: tuple[float, float] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The record of one frame: its readings and (if tracked) each reading's track and text.

    Args:
        scale: for a frame downscaled on read, (original width / frame width, original height
            / frame height); boxes are then written in the file's pixels and the record gains
            ``"scale"``, frame pixels per file pixel (multiply a box by it to draw it on the
            annotated frame of ``--save`` or ``--dump``).
        source: the name of the frame's source in a run of several sources (then written
            right after ``"type"``).

    Returns:
        ``{"type": "frame", "frame", "timestamp", "readings": [...], "tracks": [...]}``; each
        reading dict gains ``track_id`` when ``update`` is given; ``"file"`` is added when the
        frame came from one of several files (``origin``).
    """
    if scale is not None and scale == (1.0, 1.0):
        scale = None
    items = []
    for i, r in enumerate(readings):
        d = (rescale_reading(r, scale) if scale is not None else r).to_dict()
        if update is not None and i < len(update.assignments):
            d["track_id"] = update.assignments[i]
        items.append(d)
    rec = _tagged(FRAME, source)
    rec.update({"frame": int(frame_index), "timestamp": round(float(timestamp), 4), "readings": items})
    if update is not None:
        rec["tracks"] = [track_record(t, scale) for t in update.tracks if t.seen]
    if origin is not None:
        rec["file"] = origin
    if scale is not None:
        rec["scale"] = round(1.0 / max(scale), 6)
    return rec


def _best_fields(event: ConfirmedEvent | TrackEnded) -> dict[str, Any]:
    best = getattr(event, "best", None)
    if best is None or best.text != event.text:  # no view of this very number (yet)
        return {}
    return {"best_frame": best.frame, "best_time": round(best.time, 4)}


def event_record(event: ConfirmedEvent | TrackEnded, source: str | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a tracker event (``type`` is ``"confirmed"`` or ``"track_ended"``), of
    source ``source`` in a run of several sources, with ``extra`` fields at its end (evidence,
    position, expected number: see the module docstring)."""
    return _event_record(event, source) | _best_fields(event) | (extra or {})


def _event_record(event: ConfirmedEvent | TrackEnded, source: str | None) -> dict[str, Any]:
    if isinstance(event, ConfirmedEvent):
        return _tagged(CONFIRMED, source) | {
            "track_id": event.track_id,
            "text": event.text,
            "confidence": round(event.confidence, 4),
            "frame": event.frame,
            "timestamp": round(event.timestamp, 4),
            "first_frame": event.first_frame,
            "last_frame": event.last_frame,
            "first_time": round(event.first_time, 4),
            "last_time": round(event.last_time, 4),
        }
    return _tagged(TRACK_ENDED, source) | {
        "track_id": event.track_id,
        "text": event.text,
        "confirmed": event.confirmed,
        "hits": event.hits,
        "first_frame": event.first_frame,
        "last_frame": event.last_frame,
        "first_time": round(event.first_time, 4),
        "last_time": round(event.last_time, 4),
    }


def run_record(source: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """The first record of a log: the source's description plus what the caller adds
    (``live``, ``batch``, ``workers`` for ``recognizer run``; ``demo`` for the demo).

    A run of several sources passes ``source=None`` and ``sources={name: description}``
    (each description with the ``live`` mode it runs in)."""
    if source is None:
        return {"type": RUN, **fields}
    return {"type": RUN, "source": source, **fields}


def summary_record(
    *,
    status: str,
    frames: int,
    captured: int,
    dropped: int,
    seconds: float,
    fps: float,
    confirmed: Iterable[str],
    error: str | None = None,
    source: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The last record of a log: how the run ended (see :class:`recognizer.live.summary.RunSummary`).

    In a run of several sources, each source's summary names it (``source``) and may carry
    ``extra`` figures (``latency_p95_ms``); the whole run's summary names none."""
    d = _tagged(SUMMARY, source)
    d.update({
        "status": status,
        "frames": frames,
        "captured": captured,
        "dropped": dropped,
        "seconds": round(seconds, 3),
        "fps": round(fps, 2),
        "confirmed": list(confirmed),
        **extra,
    })
    if error is not None:
        d["error"] = error
    return d


def iter_log(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a log, one at a time; a line that is not JSON (a last line cut short by a
    kill, in a log written by something else) is skipped with a warning."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: skipping a line that is not JSON", path)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a log (see :func:`iter_log`)."""
    return list(iter_log(path))


def of_type(records: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of one ``type`` (:data:`FRAME`, :data:`CONFIRMED`, ...), in order."""
    return [r for r in records if r.get("type") == kind]
