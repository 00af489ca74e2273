"""Sinks: video file (codec probing, frame count, fps), JSON Lines log, frame dump, window checks."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_helpers import count_frames

from recognizer.output.records import event_record, frame_record
from recognizer.output.sinks import CODECS_BY_EXTENSION, DumpSink, JsonlLog, SinkError, VideoSink, WindowSink
from recognizer.tracking import Tracker
from recognizer.types import DigitBox, Reading


def reading(text: str = "12") -> Reading:
    digits = tuple(DigitBox((10.0 + 10 * i, 5.0, 20.0 + 10 * i, 25.0), int(c), 0.9, 0.8) for i, c in enumerate(text))
    return Reading(text, 0.85, (10.0, 5.0, 10.0 + 10 * len(text), 25.0), digits)


def frames(n: int, w: int = 96, h: int = 64) -> list[np.ndarray]:
    return [np.full((h, w, 3), (i * 7) % 255, np.uint8) for i in range(n)]


@pytest.mark.parametrize("name", ["out.mp4", "out.avi", "out.mkv"])
def test_video_sink_writes_every_frame_at_the_given_fps(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with VideoSink(path, 12.5) as sink:
        for f in frames(17):
            sink.write(f)
    assert sink.frames == 17 and sink.codec in sink.codecs
    assert count_frames(path) == (17, pytest.approx(12.5, abs=0.01))
    assert [p.name for p in tmp_path.iterdir()] == [name], "no probe files left behind"


def test_video_sink_resizes_odd_frames_to_the_first_size(tmp_path: Path) -> None:
    path = tmp_path / "out.avi"
    with VideoSink(path, 10) as sink:
        sink.write(frames(1, 96, 64)[0])
        sink.write(frames(1, 50, 30)[0])
    cap = cv2.VideoCapture(str(path))
    sizes = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        sizes.append(img.shape[:2])
    assert sizes == [(64, 96), (64, 96)]


def test_video_codec_falls_back_to_one_that_works(tmp_path: Path) -> None:
    with VideoSink(tmp_path / "out.avi", 10, codecs=("ZZZZ", "MJPG")) as sink:
        sink.write(frames(1)[0])
    assert sink.codec == "MJPG"
    with pytest.raises(SinkError, match="none of the codecs ZZZZ can be written here"):
        VideoSink(tmp_path / "bad.avi", 10, codecs=("ZZZZ",))


@pytest.mark.parametrize(
    "path, fps, message",
    [
        ("missing/out.mp4", 30, "folder '.*missing' does not exist"),
        ("out.xyz", 30, "unknown extension '.xyz'"),
        ("out.mp4", 0, "fps=0 is not a frame rate"),
    ],
)
def test_video_sink_errors(tmp_path: Path, path: str, fps: float, message: str) -> None:
    with pytest.raises(SinkError, match=message):
        VideoSink(tmp_path / path, fps)


def test_log_lines_are_complete_and_flushed_as_they_go(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    tracker = Tracker()
    log = JsonlLog(path)
    log.open()
    try:
        for i in range(5):
            update = tracker.update(i, i / 10, [reading("47")])
            log.write_frame(i, i / 10, [reading("47")], update)
            # Readable while the log is still open: every line is whole and valid JSON.
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            assert sum(1 for rec in lines if rec["type"] == "frame") == i + 1
    finally:
        log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    confirmed = [r for r in records if r["type"] == "confirmed"]
    assert len(confirmed) == 1 and confirmed[0]["text"] == "47" and confirmed[0]["first_frame"] == 0
    assert log.frames == 5 and log.events == 1 and log.lines == len(records) == 6
    first = records[0]
    assert first["readings"][0]["text"] == "47" and first["readings"][0]["track_id"] == first["tracks"][0]["track_id"]


def test_log_path_errors(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="folder .* does not exist"):
        JsonlLog(tmp_path / "no" / "log.jsonl")
    with pytest.raises(SinkError, match="is a folder"):
        JsonlLog(tmp_path)


def test_dump_writes_frames_and_lines(tmp_path: Path) -> None:
    out = tmp_path / "dump"
    with DumpSink(out) as dump:
        for i, f in zip((3, 4, 9), frames(3)):
            dump.write(f, i, i / 30, [reading()] if i != 4 else [], None)
    assert dump.frames == 3 and dump.lines == 3
    names = sorted(p.name for p in (out / "frames").iterdir())
    assert names == ["000003.jpg", "000004.jpg", "000009.jpg"]
    records = [json.loads(line) for line in (out / "readings.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [3, 4, 9]
    assert [len(r["readings"]) for r in records] == [1, 0, 1]
    for r in records:
        assert cv2.imread(str(out / r["image"])) is not None


def test_dump_refuses_a_folder_in_use(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("precious")
    with pytest.raises(SinkError, match="is not empty"):
        DumpSink(used)
    assert (used / "keep.txt").read_text() == "precious"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SinkError, match="is a file"):
        DumpSink(afile)
    DumpSink(tmp_path / "empty_ok")  # a new folder is fine (created on open)


def test_window_without_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="--show needs a display but DISPLAY is not set"):
        WindowSink()


def test_records() -> None:
    rec = frame_record(7, 0.25, [reading("5")])
    assert rec == {"type": "frame", "frame": 7, "timestamp": 0.25, "readings": [reading("5").to_dict()]}
    tracker = Tracker()
    for i in range(4):
        tracker.update(i, i / 30, [reading("5")])
    ev = event_record(tracker.finish()[0])
    assert ev["type"] == "track_ended" and ev["text"] == "5" and ev["last_frame"] == 3


@pytest.mark.parametrize(
    "keys, paused, quit",
    [([ord("q")], False, True), ([27], False, True), ([ord("Q")], False, True), ([ord(" ")], True, False),
     ([ord(" "), ord(" ")], False, False), ([-1, ord("x")], False, False), ([ord(" "), 27], True, True)],
)
def test_window_keys(monkeypatch: pytest.MonkeyPatch, keys: list[int], paused: bool, quit: bool) -> None:
    monkeypatch.setenv("DISPLAY", ":12345")  # constructing the sink opens nothing yet
    win = WindowSink()
    for k in keys:
        win._handle_key(k)
    assert (win.paused, win.quit) == (paused, quit)


@pytest.mark.parametrize("name", ["out.mp4", "out.mov"])
def test_mp4_and_mov_are_h264_in_fragments_with_pyav_and_opencv_without(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import recognizer.output.sinks as sinks

    if sinks.video._h264_module() is None:
        pytest.skip("PyAV is not installed")
    path = tmp_path / name
    with VideoSink(path, 12.5) as sink:
        for f in frames(7, w=97, h=65):  # odd: H.264 4:2:0 gets one replicated column and row
            sink.write(f)
    assert sink.codec == "h264"
    assert count_frames(path) == (7, pytest.approx(12.5, abs=0.01))
    cap = cv2.VideoCapture(str(path))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (98, 66)
    cap.release()
    assert path.read_bytes()[4:8] == b"ftyp" and b"moof" in path.read_bytes()  # fragmented
    monkeypatch.setattr(sinks.video, "_h264_module", lambda: None)  # no PyAV: OpenCV's writer, as before
    with VideoSink(tmp_path / f"cv{name}", 12.5) as sink:
        for f in frames(3):
            sink.write(f)
    assert sink.codec in CODECS_BY_EXTENSION[path.suffix] and count_frames(tmp_path / f"cv{name}")[0] == 3
