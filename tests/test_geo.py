"""Positions: GPX and NMEA tracks, a video's start time, interpolation, GeoJSON; and end to end,
``recognizer run CLIP --gpx/--nmea --geojson`` on a generated drive whose every position is known.

The drive (``mapping_helpers``): the bench footage as an H.264 clip with ``creation_time``, the
camera going round a 150 m circle at 12 m/s, sampled once a second into a GPX file and an NMEA
log. Each confirmed number must be placed where the camera was at its best view's time:
within :data:`TOLERANCE_M` (linear interpolation between 1 s fixes on that curve is off by at
most 0.12 m; NMEA's minutes carry 6 decimals, 0.002 m).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from mapping_helpers import START, distance_m, fix_times, true_position, write_clip, write_gpx, write_nmea
from shipped import needs_models

from recognizer.cli import main
from recognizer.output.geo import (
    MAX_FIX_GAP,
    GeoError,
    GeoTrack,
    geojson,
    load_track,
    parse_time,
    read_gpx,
    read_nmea,
    video_start_time,
)
from recognizer.output.records import CONFIRMED, read_log

TOLERANCE_M = 0.5
"""How far a number's position may be from the camera's true position at its best view."""

T0 = START.timestamp()
FRAMES = 75  # 5 s at 15 fps: the shipped models confirm 3-4 numbers of the bench footage




# --------------------------------------------------------------------------- interpolation


def _line(n: int = 11, step: float = 1.0) -> GeoTrack:
    """A straight drive north-east: lat and lon grow linearly with time."""
    t = T0 + step * np.arange(n)
    return GeoTrack(t, 52.5 + 1e-4 * np.arange(n), 13.4 + 2e-4 * np.arange(n), ["line"])


def test_interpolation_is_linear_in_time_between_fixes() -> None:
    track = _line()
    for k, f in [(0, 0.0), (3, 0.25), (3, 0.5), (7, 0.9)]:
        pos = track.position(T0 + k + f)
        assert pos is not None
        assert pos.lat == pytest.approx(52.5 + 1e-4 * (k + f), abs=1e-10)
        assert pos.lon == pytest.approx(13.4 + 2e-4 * (k + f), abs=1e-10)
    assert track.position(T0 + 4).fix_distance_m == pytest.approx(0.0, abs=1e-6)
    # Half way, the nearer fix is half a step away (about 8.4 m for this step).
    half = track.position(T0 + 4.5)
    step_m = distance_m((52.5 + 4e-4, 13.4 + 8e-4), (52.5 + 5e-4, 13.4 + 10e-4))
    assert half.fix_distance_m == pytest.approx(step_m / 2, rel=1e-3)


def test_no_position_outside_the_track_or_across_a_gap() -> None:
    track = _line()
    assert track.position(T0 - 0.01) is None  # before the first fix: no guess
    assert track.position(T0 + 10.01) is None
    assert track.position(T0 + 10).lat == pytest.approx(52.5 + 1e-3)  # on the last fix
    times = np.array([T0, T0 + 1, T0 + 2 + MAX_FIX_GAP + 1, T0 + 4 + MAX_FIX_GAP])
    gappy = GeoTrack(times, [50, 50.001, 50.002, 50.003], [8, 8, 8, 8])
    assert gappy.position(T0 + 0.5) is not None
    assert gappy.position(T0 + 5) is None  # 11 s without a fix: a tunnel, no guess


def test_circle_error_is_within_the_stated_tolerance() -> None:
    times = fix_times(T0, T0 + 20)
    track = GeoTrack(times, *zip(*(true_position(t) for t in times)))
    errors = [distance_m((p.lat, p.lon), true_position(t)) for t in np.linspace(T0, T0 + 20, 401) if (p := track.position(t))]
    assert len(errors) == 401 and max(errors) < 0.2 < TOLERANCE_M


def test_antimeridian_and_order() -> None:
    track = GeoTrack([T0 + 1, T0, T0 + 1], [-17.0, -17.0, -17.5], [-179.9998, 179.9998, 0.0])
    assert len(track) == 2 and track.start == T0  # sorted, one fix per moment
    mid = track.position(T0 + 0.5)
    assert abs(abs(mid.lon) - 180.0) < 1e-9 and mid.lat == pytest.approx(-17.0)


def test_overlap_and_merge() -> None:
    a, b = _line(5), GeoTrack(T0 + 20 + np.arange(3), [1, 2, 3], [1, 2, 3], ["b"])
    both = GeoTrack.merge([a, b])
    assert len(both) == 8 and both.files == ("line", "b")
    assert both.overlap(T0 - 10, T0 - 5) == 0.0
    assert both.overlap(T0 + 2, T0 + 3) == pytest.approx(1.0)


# --------------------------------------------------------------------------- reading


def test_gpx_and_nmea_give_the_same_fixes(tmp_path: Path) -> None:
    times = fix_times(T0 - 2, T0 + 6)
    gpx = read_gpx(write_gpx(tmp_path / "t.gpx", times))
    nmea = read_nmea(write_nmea(tmp_path / "t.nmea", times))  # with a camera's own sentence and a cut last line
    assert list(gpx.times) == list(nmea.times) == list(times)
    for k, t in enumerate(times):
        assert distance_m((gpx.lat[k], gpx.lon[k]), true_position(t)) < 0.01
        assert distance_m((nmea.lat[k], nmea.lon[k]), true_position(t)) < 0.01
    # Told apart by content, not by name.
    (tmp_path / "really_nmea.gpx").write_bytes((tmp_path / "t.nmea").read_bytes())
    assert list(load_track(tmp_path / "really_nmea.gpx").times) == list(times)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('<?xml version="1.0"?>\n<gpx version="1.1">\n<trk><trkseg>\n<trkpt lat="52.5" lon="13.4">\n</trkseg></trk></gpx>\n',
         r"GPX file '.*bad.gpx': not valid GPX \(mismatched tag: line 5, column"),
        ('<gpx version="1.1"><trk><trkseg><trkpt lat="52.5" lon="13.4"/><trkpt lat="52.6" lon="13.4"/></trkseg></trk></gpx>',
         r"2 track points but 0 with a time"),
        ('<gpx version="1.1"></gpx>', r"no track points in it"),
        ("$GPRMC,garbage*00\n$GPGGA,also,garbage\n", r"NMEA file '.*bad.gpx': 0 position fixes .*; line 1: checksum does not match"),
        ("time,lat,lon\n1,2,3\n", r"neither GPX \(XML\) nor NMEA"),
        ("", r"is empty"),
    ],
)
def test_bad_tracks_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.gpx"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GeoError, match=message) as err:
        load_track(path)
    assert "\n" not in str(err.value)


def test_times(tmp_path: Path) -> None:
    assert parse_time("2024-05-04T10:20:30Z") == T0
    assert parse_time("2024-05-04 12:20:30+02:00") == T0
    assert parse_time("2024-05-04T10:20:30") == T0  # no zone: UTC
    with pytest.raises(GeoError, match="--start-time 'yesterday': not an ISO 8601 time"):
        parse_time("yesterday")
    with_meta = write_clip(tmp_path / "a.mp4", 3)
    without = write_clip(tmp_path / "b.mp4", 3, creation_time=None)
    unset = write_clip(tmp_path / "c.mp4", 3, creation_time="1980-01-01T00:00:00.000000Z")  # a FAT clock never set
    assert video_start_time(with_meta) == (T0, "creation_time 2024-05-04T10:20:30.000000Z")
    assert video_start_time(without) == (None, "it has no creation_time")
    assert video_start_time(unset)[0] is None and "unset clock" in video_start_time(unset)[1]


def test_geojson_is_rfc7946_lon_lat() -> None:
    numbers = [{"number": "47", "lat": 52.52, "lon": 13.40, "best_time": 1.5, "evidence": "ev/1.jpg", "known": True},
               {"number": "12", "best_time": 2.0}]  # no position: not a point
    data = geojson(numbers)
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 1
    feature = data["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"] == {"type": "Point", "coordinates": [13.4, 52.52]}
    assert feature["properties"] == {"number": "47", "best_time": 1.5, "evidence": "ev/1.jpg", "known": True}


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("drive")
    times = fix_times(T0 - 3, T0 + FRAMES / 15 + 3)
    return {
        "root": root,
        "clip": write_clip(root / "clip.mp4", FRAMES),
        "bare": write_clip(root / "bare.mp4", FRAMES, creation_time=None),
        "local": write_clip(root / "local.mp4", FRAMES, creation_time="2024-05-04T12:20:30Z"),  # a clock on UTC+2
        "gpx": write_gpx(root / "drive.gpx", times),
        "nmea": write_nmea(root / "drive.nmea", times),
        "late": write_gpx(root / "late.gpx", times + 3600),
    }


def _run(tmp_path: Path, clip: Path, *extra: str) -> tuple[int, list[dict], Path]:
    log = tmp_path / "run.jsonl"
    rc = main(["run", str(clip), "--log", str(log), "--device", "cpu", "--no-progress", *extra])
    return rc, read_log(log) if log.exists() else [], log


def _check_positions(records: list[dict]) -> float:
    """Every confirmed number is placed where the camera was at its best view; the worst error (m)."""
    confirmed = [r for r in records if r["type"] == CONFIRMED]
    assert len(confirmed) >= 2, "the shipped models should confirm the bench footage's plates"
    worst = 0.0
    for r in confirmed:
        # Placed at its best view (or where it was confirmed, when no single reading read it).
        assert r["first_frame"] <= r.get("best_frame", r["frame"]) <= r["frame"]
        truth = true_position(T0 + r.get("best_time", r["timestamp"]))
        error = distance_m((r["lat"], r["lon"]), truth)
        assert error < TOLERANCE_M, (r, truth, error)
        assert r["time"].startswith("2024-05-04T10:20:3") and 0 <= r["fix_distance_m"] <= 12.0 / 2 + TOLERANCE_M
        worst = max(worst, error)
    return worst


@needs_models
@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ["gpx", "nmea"])
def test_numbers_get_the_cameras_position(tmp_path: Path, drive: dict[str, Path], kind: str, capsys: pytest.CaptureFixture) -> None:
    geo = tmp_path / "numbers.geojson"
    rc, records, _ = _run(tmp_path, drive["clip"], f"--{kind}", str(drive[kind]), "--geojson", str(geo))
    out = capsys.readouterr().out
    assert rc == 0, out
    worst = _check_positions(records)
    print(f"{kind}: worst position error {worst:.3f} m")
    confirmed = [r for r in records if r["type"] == CONFIRMED]
    assert f"positions: {len(confirmed)} of {len(confirmed)} numbers placed" in out
    data = json.loads(geo.read_text())
    assert data["type"] == "FeatureCollection" and len(data["features"]) == len(confirmed)
    ends = {r["track_id"]: r for r in records if r["type"] == "track_ended" and r.get("lat") is not None}
    for feature, rec in zip(data["features"], confirmed):
        lon, lat = feature["geometry"]["coordinates"]
        final = ends.get(rec["track_id"], rec) if ends.get(rec["track_id"], {}).get("text") == rec["text"] else rec
        assert (lat, lon) == (final["lat"], final["lon"]) and feature["properties"]["number"] == rec["text"]
        assert distance_m((lat, lon), true_position(T0 + final.get("best_time", final.get("timestamp", 0.0)))) < TOLERANCE_M


@needs_models
@pytest.mark.timeout(180)
def test_a_camera_clock_is_corrected_with_time_offset(tmp_path: Path, drive: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    # The clip says 12:20:30 (local time written as UTC): the track misses it altogether.
    rc, records, log = _run(tmp_path, drive["local"], "--gpx", str(drive["gpx"]))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not log.exists()
    assert len(err) == 1 and "drive.gpx' covers 2024-05-04T10:20:27.000Z to" in err[0]
    assert "video '" in err[0] and "runs 2024-05-04T12:20:30.000Z" in err[0] and "--time-offset" in err[0]
    rc, records, _ = _run(tmp_path, drive["local"], "--gpx", str(drive["gpx"]), "--time-offset", "-7200")
    assert rc == 0
    _check_positions(records)


@needs_models
@pytest.mark.timeout(180)
def test_without_a_start_time_no_position_is_given(tmp_path: Path, drive: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    geo = tmp_path / "numbers.geojson"
    rc, records, _ = _run(tmp_path, drive["bare"], "--gpx", str(drive["gpx"]), "--geojson", str(geo))
    captured = capsys.readouterr()
    assert rc == 0
    notes = [line for line in captured.err.splitlines() if "positions:" in line]
    assert len(notes) == 1 and "has no usable start time (it has no creation_time)" in notes[0]
    assert "no --start-time was given" in notes[0] and "no position" in notes[0]
    confirmed = [r for r in records if r["type"] == CONFIRMED]
    assert confirmed and not any("lat" in r or "time" in r for r in records if r["type"] in (CONFIRMED, "track_ended"))
    assert json.loads(geo.read_text()) == {"type": "FeatureCollection", "features": []}
    # --start-time supplies what the file lacks.
    rc, records, _ = _run(tmp_path, drive["bare"], "--gpx", str(drive["gpx"]), "--start-time", "2024-05-04T12:20:30+02:00")
    assert rc == 0
    _check_positions(records)


@pytest.mark.parametrize(
    ("track", "extra", "message"),
    [
        ("corrupt", [], r"GPX file '.*corrupt.gpx': not valid GPX \(.*line \d+, column \d+\)"),
        ("late", [], r"late.gpx' covers 2024-05-04T11:20:27.000Z to .* but video '.*clip.mp4' runs 2024-05-04T10:20:30.000Z"),
        ("gpx", ["--start-time", "noon"], r"--start-time 'noon': not an ISO 8601 time"),
        ("none", ["--geojson", "x.geojson"], r"--geojson needs positions: give the drive's track with --gpx"),
        ("gpx", ["--geojson", "{log}"], r"--geojson '.*run.jsonl' is also"),
    ],
)
def test_bad_position_input_exits_2_before_anything_is_written(tmp_path: Path, drive: dict[str, Path], track: str, extra: list[str],
                                                              message: str, capsys: pytest.CaptureFixture) -> None:
    if track == "corrupt":
        path = tmp_path / "corrupt.gpx"
        path.write_text(drive["gpx"].read_text()[:700], encoding="utf-8")  # cut off mid-file
        args = ["--gpx", str(path)]
    else:
        args = [] if track == "none" else ["--gpx", str(drive[track])]
    log, geo, evidence = tmp_path / "run.jsonl", tmp_path / "x.geojson", tmp_path / "ev"
    extra = [e.replace("{log}", str(log)).replace("x.geojson", str(geo)) for e in extra]
    rc = main(["run", str(drive["clip"]), "--log", str(log), "--evidence", str(evidence), "--device", "cpu", *args, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert re.search(message, err[0]), err[0]
    assert not log.exists() and not geo.exists() and not evidence.exists()


def test_positions_need_one_recorded_video(tmp_path: Path, drive: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    rc = main(["run", str(drive["clip"]), str(drive["bare"]), "--gpx", str(drive["gpx"]), "--device", "cpu"])
    assert rc == 2 and "works with one SOURCE" in capsys.readouterr().err
    rc = main(["run", "0", "--gpx", str(drive["gpx"]), "--device", "cpu"])
    assert rc == 2 and "positions need a recorded video" in capsys.readouterr().err


def test_circle_helper_is_a_circle() -> None:
    # The test drive itself: 12 m/s round a 150 m circle.
    a, b = true_position(T0), true_position(T0 + 1)
    assert distance_m(a, b) == pytest.approx(2 * 150 * math.sin(12 / 150 / 2), rel=1e-3)


def test_track_files_may_be_a_quoted_glob(tmp_path: Path) -> None:
    import argparse

    from recognizer.cli.mapping import _track
    from recognizer.errors import CLIError

    write_gpx(tmp_path / "a.gpx", fix_times(T0, T0 + 4))
    write_nmea(tmp_path / "b.nmea", fix_times(T0 + 5, T0 + 9))
    track, files = _track(argparse.Namespace(gpx=[str(tmp_path / "*.gpx")], nmea=[str(tmp_path / "*.nmea")]))
    assert len(track) == 10 and [Path(f).name for f in files] == ["a.gpx", "b.nmea"]
    with pytest.raises(CLIError, match="matches no file"):
        _track(argparse.Namespace(gpx=[str(tmp_path / "*.kml")], nmea=None))


@needs_models
@pytest.mark.timeout(180)
def test_a_track_covering_part_of_the_video_places_only_what_it_covers(tmp_path: Path, drive: dict[str, Path],
                                                                     capsys: pytest.CaptureFixture) -> None:
    part = write_gpx(tmp_path / "part.gpx", fix_times(T0 + 2, T0 + 9))  # the clip runs 0-5 s
    rc, records, _ = _run(tmp_path, drive["clip"], "--gpx", str(part))
    err = capsys.readouterr().err
    assert rc == 0
    notes = [line for line in err.splitlines() if "positions:" in line]
    assert len(notes) == 1 and "numbers outside it get no position" in notes[0]
    confirmed = [r for r in records if r["type"] == CONFIRMED]
    for r in confirmed:
        t = r.get("best_time", r["timestamp"])
        assert ("lat" in r) == (t >= 2.0), r
        if "lat" in r:
            assert distance_m((r["lat"], r["lon"]), true_position(T0 + t)) < TOLERANCE_M
    assert any("lat" not in r for r in confirmed), "the bench footage confirms numbers in its first 2 s"
