"""Where the camera was: GPS tracks (GPX, NMEA sentence logs), a video's start time, positions
interpolated in time, and GeoJSON out.

* :func:`load_track` reads a GPX file (with ``gpxpy``) or an NMEA log (with ``pynmea2``, the
  ``$GPRMC``/``$GPGGA`` sentences many dashcams write), chosen by the file's content, as a
  :class:`GeoTrack`: fix times (UTC) and positions.
* :func:`video_start_time` reads a video's ``creation_time`` (PyAV); :func:`parse_time` reads
  ``--start-time``. A frame at video time ``t`` was taken at ``start + offset + t`` (UTC).
* :meth:`GeoTrack.position` interpolates linearly between the two fixes around a time and says
  how far the position is from the nearer of them (metres): a measure of how much was guessed.
  No position is given before the first fix, after the last one, or across a gap of more than
  :data:`MAX_FIX_GAP` seconds without fixes (a tunnel): no position rather than a wrong one.
* :func:`geojson` / :func:`write_geojson`: one Point feature per placed number (RFC 7946:
  WGS 84, ``[lon, lat]`` order), which QGIS and JOSM open as it is.

Every error is a :class:`GeoError`: one line naming the file (and the line, where the parser
tells it).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_FIX_GAP",
    "GeoError",
    "GeoTrack",
    "Position",
    "format_time",
    "geojson",
    "haversine_m",
    "load_track",
    "load_tracks",
    "parse_time",
    "read_gpx",
    "read_nmea",
    "video_span",
    "video_start_time",
    "write_geojson",
]

MAX_FIX_GAP = 10.0
"""Seconds between two fixes beyond which nothing is interpolated between them."""

EARTH_RADIUS_M = 6_371_008.8


class GeoError(ValueError):
    """A track, time or position input that cannot be used (one user-facing line)."""


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in metres (degrees in; floats or numpy arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def format_time(epoch: float) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z`` (``2024-05-04T10:20:31.500Z``)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Position:
    """The camera's position at one moment.

    Attributes:
        lat, lon: WGS 84 degrees.
        fix_distance_m: metres from this position to the nearer of the two fixes it was
            interpolated between (0 on a fix).
        time: the moment, seconds since the Unix epoch (UTC).
    """

    lat: float
    lon: float
    fix_distance_m: float
    time: float


class GeoTrack:
    """GPS fixes in time order: ``times`` (seconds since the Unix epoch, UTC), ``lat``, ``lon``
    (degrees), each ``(N,)`` float64, ``N >= 2``, times strictly increasing."""

    def __init__(self, times: Sequence[float], lat: Sequence[float], lon: Sequence[float], files: Sequence[str] = ()) -> None:
        t = np.asarray(times, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        t, la, lo = t[order], np.asarray(lat, dtype=np.float64)[order], np.asarray(lon, dtype=np.float64)[order]
        keep = np.concatenate([[True], np.diff(t) > 0]) if len(t) else np.zeros(0, bool)  # one fix per moment
        self.times, self.lat, self.lon = t[keep], la[keep], lo[keep]
        self.files = tuple(files)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def name(self) -> str:
        return ", ".join(f"'{f}'" for f in self.files) or "the track"

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    @classmethod
    def merge(cls, tracks: Iterable[GeoTrack]) -> GeoTrack:
        """One track of all fixes of ``tracks`` (several GPX files, an NMEA log per clip)."""
        tracks = list(tracks)
        return cls(
            np.concatenate([t.times for t in tracks]), np.concatenate([t.lat for t in tracks]),
            np.concatenate([t.lon for t in tracks]), [f for t in tracks for f in t.files],
        )

    def covers(self, when: float) -> bool:
        """``when`` lies between the first and the last fix."""
        return bool(len(self.times)) and self.start <= when <= self.end

    def overlap(self, start: float, end: float) -> float:
        """Seconds of ``[start, end]`` that the track covers (from its first to its last fix)."""
        return max(0.0, min(end, self.end) - max(start, self.start))

    def position(self, when: float) -> Position | None:
        """The position at ``when`` (seconds since the epoch, UTC), interpolated linearly between
        the fixes around it; None outside the track or inside a gap longer than
        :data:`MAX_FIX_GAP` s."""
        t = self.times
        if not self.covers(when):
            return None
        i = int(np.searchsorted(t, when, side="right"))
        if i == len(t):  # on the last fix
            return Position(float(self.lat[-1]), float(self.lon[-1]), 0.0, when)
        a, b = i - 1, i
        if t[b] - t[a] > MAX_FIX_GAP:
            return None
        f = (when - t[a]) / (t[b] - t[a])
        dlon = self.lon[b] - self.lon[a]
        if abs(dlon) > 180.0:  # across the antimeridian
            dlon -= math.copysign(360.0, dlon)
        lat = float(self.lat[a] + f * (self.lat[b] - self.lat[a]))
        lon = float((self.lon[a] + f * dlon + 180.0) % 360.0 - 180.0)
        near = a if f <= 0.5 else b
        return Position(lat, lon, float(haversine_m(lat, lon, self.lat[near], self.lon[near])), when)


# --------------------------------------------------------------------------- reading tracks


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch; a time without a zone is UTC (GPX and NMEA times are)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_gpx(path: str | os.PathLike[str]) -> GeoTrack:
    """The track points of a GPX file (all tracks and segments; route points as well when
    they carry times)."""
    import gpxpy
    import gpxpy.gpx

    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            gpx = gpxpy.parse(fh)
    except OSError as exc:
        raise GeoError(f"GPX file '{path}': cannot read it ({exc.strerror or exc})") from exc
    except gpxpy.gpx.GPXException as exc:  # the XML parser's message names the line and column
        reason = str(exc).replace("Error parsing XML: ", "").strip().splitlines()[0]
        raise GeoError(f"GPX file '{path}': not valid GPX ({reason})") from exc
    points = [p for trk in gpx.tracks for seg in trk.segments for p in seg.points]
    points += [p for route in gpx.routes for p in route.points if p.time is not None]
    timed = [p for p in points if p.time is not None]
    if not points:
        raise GeoError(f"GPX file '{path}': no track points in it")
    if len(timed) < 2:
        raise GeoError(f"GPX file '{path}': {len(points)} track points but {len(timed)} with a time; positions need timed points")
    return GeoTrack([_epoch(p.time) for p in timed], [p.latitude for p in timed], [p.longitude for p in timed], [str(path)])


def read_nmea(path: str | os.PathLike[str]) -> GeoTrack:
    """The fixes of an NMEA sentence log: ``RMC`` with status A and ``GGA`` with a fix (its
    date from the nearest earlier ``RMC``/``ZDA``). Lines that do not parse (a cut last line,
    a camera's own sentences) are skipped; a log without a single fix is an error naming its
    first bad line."""
    import pynmea2

    fixes: list[tuple[float, float, float]] = []
    pending: list[tuple[Any, float, float]] = []  # GGA before any date: (time of day, lat, lon)
    date = None
    first_bad: tuple[int, str] | None = None
    try:
        fh = open(path, encoding="ascii", errors="replace")
    except OSError as exc:
        raise GeoError(f"NMEA file '{path}': cannot read it ({exc.strerror or exc})") from exc
    with fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                msg = pynmea2.parse(line, check=True)
            except (pynmea2.ParseError, ValueError, AttributeError, TypeError) as exc:
                if first_bad is None:
                    first_bad = (number, _reason(exc))
                continue
            try:
                kind = msg.sentence_type
                if kind == "RMC" and msg.status == "A" and msg.datestamp and msg.timestamp and msg.lat:
                    date = msg.datestamp
                    fixes.append((_epoch(datetime.combine(date, msg.timestamp)), msg.latitude, msg.longitude))
                elif kind == "ZDA" and msg.datestamp:
                    date = msg.datestamp
                elif kind == "GGA" and msg.gps_qual and int(msg.gps_qual) > 0 and msg.timestamp and msg.lat:
                    if date is None:
                        pending.append((msg.timestamp, msg.latitude, msg.longitude))
                    else:
                        fixes.append((_epoch(datetime.combine(date, msg.timestamp)), msg.latitude, msg.longitude))
            except (ValueError, TypeError, AttributeError) as exc:  # a sentence with a malformed field
                if first_bad is None:
                    first_bad = (number, str(exc))
    if date is not None:
        fixes += [(_epoch(datetime.combine(date, t)), la, lo) for t, la, lo in pending]
    if len(fixes) < 2:
        where = f"; line {first_bad[0]}: {first_bad[1]}" if first_bad else ""
        raise GeoError(f"NMEA file '{path}': {len(fixes)} position fixes (RMC/GGA sentences with a fix and a date){where}")
    t, la, lo = zip(*fixes)
    return GeoTrack(t, la, lo, [str(path)])


def _reason(exc: BaseException) -> str:
    """pynmea2's message (its errors carry ``(message, data)`` tuples)."""
    arg = exc.args[0] if exc.args else type(exc).__name__
    while isinstance(arg, tuple) and arg:
        arg = arg[0]
    return str(arg)


def load_track(path: str | os.PathLike[str]) -> GeoTrack:
    """A GPX file or an NMEA log, told apart by content (XML or ``$``-sentences)."""
    p = Path(path)
    if not p.is_file():
        raise GeoError(f"track file '{path}' not found" if not p.exists() else f"track file '{path}' is not a file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise GeoError(f"track file '{path}': cannot read it ({exc.strerror or exc})") from exc
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return read_gpx(p)
    if any(line.strip().startswith((b"$", b"!")) for line in text.splitlines()[:20]):
        return read_nmea(p)
    if not text:
        raise GeoError(f"track file '{path}' is empty")
    raise GeoError(f"track file '{path}': neither GPX (XML) nor NMEA sentences ($GPRMC, $GPGGA)")


def load_tracks(paths: Sequence[str | os.PathLike[str]]) -> GeoTrack:
    """All of ``paths`` as one track (:meth:`GeoTrack.merge`)."""
    return GeoTrack.merge(load_track(p) for p in paths)


# --------------------------------------------------------------------------- times


def parse_time(text: str, what: str = "--start-time") -> float:
    """An ISO 8601 moment (``2024-05-04T10:20:30Z``, ``2024-05-04 12:20:30+02:00``) as seconds
    since the epoch; without a zone it is UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise GeoError(f"{what} '{text}': not an ISO 8601 time such as 2024-05-04T10:20:30Z") from None
    return _epoch(moment)


def video_start_time(path: str | os.PathLike[str]) -> tuple[float | None, str]:
    """The moment a video's first frame was taken, from its ``creation_time`` metadata (the
    container's, else its video stream's); ``(None, why)`` when it has none or an unset clock's
    (before 2000). Returns ``(seconds since the epoch, where it came from)``."""
    import av

    try:
        with av.open(str(path)) as container:
            tags = [dict(container.metadata or {})] + [dict(s.metadata or {}) for s in container.streams.video]
    except (OSError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
        return None, f"cannot read its metadata ({exc})"
    for found in tags:
        text = found.get("creation_time")
        if not text:
            continue
        try:
            when = parse_time(text, "creation_time")
        except GeoError:
            return None, f"its creation_time '{text}' is not a time"
        if when < datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp():
            return None, f"its creation_time {text} looks like an unset clock"
        return when, f"creation_time {text}"
    return None, "it has no creation_time"


def video_span(path: str | os.PathLike[str]) -> float | None:
    """A video's duration in seconds from its metadata (None when unknown)."""
    import av

    try:
        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (OSError, av.error.FFmpegError, IndexError):  # type: ignore[attr-defined]
        return None
    return None


# --------------------------------------------------------------------------- GeoJSON

GEOJSON_PROPERTIES = (
    "number", "file", "time", "best_time", "first_time", "last_time", "best_frame", "confidence", "track_id",
    "fix_distance_m", "evidence", "known", "expected",
)
"""Properties of each GeoJSON feature, in order (those a number has)."""


def geojson(numbers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A FeatureCollection of one Point per number that has ``lat``/``lon`` (see
    :func:`recognizer.output.results.numbers_from_records` for the number dicts)."""
    features = []
    for n in numbers:
        if n.get("lat") is None or n.get("lon") is None:
            continue
        props = {k: n[k] for k in GEOJSON_PROPERTIES if n.get(k) is not None}
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(float(n["lon"]), 7), round(float(n["lat"]), 7)]},
            "properties": props,
        })
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: str | os.PathLike[str], numbers: Iterable[dict[str, Any]]) -> int:
    """Write :func:`geojson` of ``numbers`` to ``path`` atomically (a temporary file renamed);
    returns the features written."""
    from recognizer.output.results import replace_atomically

    data = geojson(numbers)
    replace_atomically(Path(path), lambda fh: fh.write(json.dumps(data, indent=1) + "\n"))
    return len(data["features"])
