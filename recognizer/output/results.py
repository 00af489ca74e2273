"""The confirmed house numbers of a run, one dict each, built from its log records.

A number is announced by a ``confirmed`` record; its track's ``track_ended`` record (written
when the track is retired, or at the end of the run) has the track's final frame range and,
when the track still reads the same number, its final best view, evidence picture, position
and expected number. :func:`numbers_from_records` merges the two; ``numbers.csv``, the GeoJSON
files and ``recognizer report`` are all made from its output.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from recognizer.output.records import CONFIRMED, RUN, TRACK_ENDED

__all__ = ["BEST_FIELDS", "numbers_from_records", "replace_atomically"]

BEST_FIELDS = ("best_frame", "best_time", "time", "evidence", "lat", "lon", "fix_distance_m", "known", "expected", "expected_share")
"""Fields a number takes from its track's end when the track still read it then."""


def numbers_from_records(records: Iterable[dict[str, Any]], file: str | None = None) -> list[dict[str, Any]]:
    """One dict per ``confirmed`` record, in log order.

    Each has ``number``, ``file`` (the run's source, or ``file``), ``source`` (in a run of
    several sources), ``track_id``, ``first_time``/``first_frame`` (the track's start),
    ``last_time``/``last_frame`` (the track's end when it was logged), ``confidence`` (the share
    of the vote at confirmation) and, where known, the :data:`BEST_FIELDS` (``time`` is the best
    view's UTC time, when the video's start time was known).
    """
    confirmed: list[dict[str, Any]] = []
    ended: dict[tuple[Any, Any], dict[str, Any]] = {}
    for rec in records:
        kind = rec.get("type")
        if kind == RUN and file is None:
            src = rec.get("source")
            file = src.get("name") if isinstance(src, dict) else None
        elif kind == CONFIRMED:
            confirmed.append(rec)
        elif kind == TRACK_ENDED:
            ended[(rec.get("source"), rec.get("track_id"))] = rec
    out = []
    for rec in confirmed:
        end = ended.get((rec.get("source"), rec.get("track_id")))
        last = rec if end is None or end.get("last_frame", -1) < rec.get("last_frame", -1) else end
        number = {
            "number": rec["text"], "file": rec.get("file") or file, "track_id": rec.get("track_id"),
            "first_time": rec.get("first_time"), "last_time": last.get("last_time"),
            "first_frame": rec.get("first_frame"), "last_frame": last.get("last_frame"), "confidence": rec.get("confidence"),
        }
        if rec.get("source") is not None:
            number["source"] = rec["source"]
        final = end if end is not None and end.get("text") == rec["text"] and end.get("confirmed", True) else rec
        for key in BEST_FIELDS:
            value = final.get(key, rec.get(key))
            if value is not None:
                number[key] = value
        later = (end or {}).get("announced", {}).get(rec["text"]) if final is rec else None
        if isinstance(later, dict):  # the --expect check with the track's final votes
            number.pop("expected", None), number.pop("expected_share", None)
            number.update({k: later[k] for k in ("known", "expected", "expected_share") if k in later})
        out.append(number)
    return out


def replace_atomically(path: Path, write: Callable[[Any], Any], *, binary: bool = False) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file next to it, then rename it
    into place: readers see the old file or the whole new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp")
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
