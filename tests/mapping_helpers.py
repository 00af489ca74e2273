"""Generated drives for the evidence/position/report tests: a clip of the synthetic bench footage
with ``creation_time`` metadata (written with PyAV), and the camera's GPS track as GPX (gpxpy)
and as an NMEA log (pynmea2), both sampled from one known path.

Import with ``from mapping_helpers import ...`` (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

START = datetime(2024, 5, 4, 10, 20, 30, tzinfo=timezone.utc)
"""When the generated clips say their first frame was taken."""

CENTRE = (52.520008, 13.404954)
RADIUS_M = 150.0
SPEED_MPS = 12.0
EARTH_M_PER_DEG = 6_371_008.8 * math.pi / 180  # the radius recognizer.output.geo measures with


def true_position(epoch: float) -> tuple[float, float]:
    """Where the camera was at ``epoch`` (seconds, UTC): driving round a circle of
    :data:`RADIUS_M` metres at :data:`SPEED_MPS` from :data:`START` (a curve, so linear
    interpolation between 1 s fixes is not exact)."""
    angle = SPEED_MPS / RADIUS_M * (epoch - START.timestamp())
    lat0, lon0 = CENTRE
    dn, de = RADIUS_M * math.sin(angle), RADIUS_M * math.cos(angle)
    return lat0 + dn / EARTH_M_PER_DEG, lon0 + de / (EARTH_M_PER_DEG * math.cos(math.radians(lat0)))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    from recognizer.output.geo import haversine_m

    return float(haversine_m(a[0], a[1], b[0], b[1]))


def write_clip(path: Path, frames: int, *, fps: float = 15.0, creation_time: str | None = START.isoformat().replace("+00:00", "Z"),
               speed: float = 6.0) -> Path:
    """``frames`` frames of :func:`recognizer.synth.footage.synthetic_frame` as H.264 MP4, with
    ``creation_time`` in the container's metadata (None: none)."""
    import av

    from recognizer.synth.footage import ClipSpec, synthetic_frame

    spec = ClipSpec(fps=fps, speed=speed)
    with av.open(str(path), "w") as container:
        if creation_time is not None:
            container.metadata["creation_time"] = creation_time
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        for i in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(synthetic_frame(i, spec), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def fix_times(first: float, last: float, step: float = 1.0) -> np.ndarray:
    """Fix times every ``step`` seconds from ``first`` to ``last`` (epoch seconds)."""
    return first + step * np.arange(int(round((last - first) / step)) + 1)


def write_gpx(path: Path, times: np.ndarray) -> Path:
    import gpxpy.gpx

    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack()
    segment = gpxpy.gpx.GPXTrackSegment()
    gpx.tracks.append(track)
    track.segments.append(segment)
    for t in times:
        lat, lon = true_position(float(t))
        when = datetime.fromtimestamp(float(t), tz=timezone.utc)
        segment.points.append(gpxpy.gpx.GPXTrackPoint(round(lat, 8), round(lon, 8), elevation=34.0, time=when))
    path.write_text(gpx.to_xml(), encoding="utf-8")
    return path


def _nmea_angle(value: float, positive: str, negative: str, degree_digits: int) -> tuple[str, str]:
    hemi = positive if value >= 0 else negative
    value = abs(value)
    deg = int(value)
    minutes = (value - deg) * 60.0
    return f"{deg:0{degree_digits}d}{minutes:09.6f}", hemi


def write_nmea(path: Path, times: np.ndarray, *, junk: bool = True) -> Path:
    """An NMEA log as dashcams write it: a GGA and an RMC sentence per fix (the first GGA before
    any date), plus, with ``junk``, a camera's own sentence and a last line cut short."""
    import pynmea2

    lines = []
    for k, t in enumerate(times):
        when = datetime.fromtimestamp(float(t), tz=timezone.utc)
        lat, lon = true_position(float(t))
        la, ns = _nmea_angle(lat, "N", "S", 2)
        lo, ew = _nmea_angle(lon, "E", "W", 3)
        hms = when.strftime("%H%M%S.") + f"{when.microsecond // 10000:02d}"
        gga = pynmea2.GGA("GP", "GGA", (hms, la, ns, lo, ew, "1", "09", "0.9", "34.0", "M", "46.9", "M", "", ""))
        rmc = pynmea2.RMC("GP", "RMC", (hms, "A", la, ns, lo, ew, "023.3", "090.0", when.strftime("%d%m%y"), "", ""))
        lines += [str(gga), str(rmc)]
        if junk and k == 1:
            lines.append("$GSENSOR,0.01,-0.98,0.12")
    if junk:
        lines.append(lines[-1][: len(lines[-1]) // 2])  # the camera lost power mid-line
    path.write_text("\r\n".join(lines) + "\r\n", encoding="ascii")
    return path
