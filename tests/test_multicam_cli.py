"""``recognizer run SOURCE SOURCE ...`` end to end with tiny untrained checkpoints: per-source
outputs, one tagged log, a source lost for good, Ctrl-C, and the tiled window (under Xvfb)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from procs import stop
from test_show_window import REPO, display, wait_for, xdotool  # noqa: F401 - display is a fixture
from test_stream import MjpegServer
from video_helpers import count_frames

from recognizer.cli import main
from recognizer.synth.footage import ClipSpec, make_bench_clip


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    return {
        "a": make_bench_clip(tmp_path / "a.avi", 30, ClipSpec(width=160, height=120, fps=24.0, numbers=("12",)), fourcc="MJPG"),
        "b": make_bench_clip(tmp_path / "b.avi", 12, ClipSpec(width=128, height=96, fps=12.0, numbers=("7",)), fourcc="MJPG"),
    }


@pytest.mark.timeout(180)
def test_cli_two_files_and_a_stream_write_per_source_outputs(
    tmp_path: Path, clips: dict[str, Path], models: list[str], capsys: pytest.CaptureFixture
) -> None:
    server = MjpegServer().start()
    try:
        log = tmp_path / "log.jsonl"
        rc = main(["run", str(clips["a"]), str(clips["b"]), f"cam={server.url}", *models, "--max-frames", "24",
                   "--save", str(tmp_path / "out.avi"), "--dump", str(tmp_path / "{name}-frames"), "--log", str(log),
                   "--reconnect-timeout", "5", "--score-thresh", "0.3"])
    finally:
        server.stop()
    out = capsys.readouterr()
    assert rc == 0, out.err
    expected = {"a": 24, "b": 12, "cam": 24}
    # Per source: a video with its frames at its own frame rate, a dump folder.
    for name, n in expected.items():
        frames, fps = count_frames(tmp_path / f"out_{name}.avi")
        assert frames == n
        if name != "cam":
            assert fps == pytest.approx({"a": 24.0, "b": 12.0}[name], abs=0.01)
        assert len(list((tmp_path / f"{name}-frames" / "frames").iterdir())) == n
        lines = read_jsonl(tmp_path / f"{name}-frames" / "readings.jsonl")
        assert len(lines) == n and all(r["source"] == name for r in lines)
        if name != "cam":
            assert [r["frame"] for r in lines] == list(range(n))
        assert re.search(rf"^{name}: completed: {n} frames in .* latency p95 \d+ ms", out.out, re.M)
    assert re.search(r"^all 3 sources: completed: 60 frames", out.out, re.M)
    # One log: every line names its source, each source's summary when it ends, the run's last.
    records = read_jsonl(log)
    assert records[0]["type"] == "run" and set(records[0]["sources"]) == {"a", "b", "cam"}
    assert records[0]["sources"]["cam"]["live"] is True and records[0]["sources"]["a"]["live"] is False
    assert all("source" in r and list(r)[:2] == ["type", "source"] for r in records[1:-1])
    for name, n in expected.items():
        frames = [r for r in records if r["type"] == "frame" and r["source"] == name]
        assert len(frames) == n
        if name != "cam":
            assert [r["frame"] for r in frames] == list(range(n))
        (summary,) = [r for r in records if r["type"] == "summary" and r.get("source") == name]
        assert summary["status"] == "completed" and summary["frames"] == n and summary["latency_p95_ms"] > 0
        assert records.index(summary) > records.index(frames[-1])
    assert records[-1]["type"] == "summary" and "source" not in records[-1]
    assert records[-1]["status"] == "completed" and records[-1]["frames"] == 60


@pytest.mark.timeout(180)
def test_cli_a_source_lost_for_good_is_reported_and_the_others_finish(
    tmp_path: Path, models: list[str], capsys: pytest.CaptureFixture
) -> None:
    # A 4 s clip played in real time (--live) and a stream that goes away for good once it
    # has sent 20 frames.
    clip = make_bench_clip(tmp_path / "long.avi", 96, ClipSpec(width=160, height=120, fps=24.0, numbers=("12",)), fourcc="MJPG")
    server = MjpegServer().start()
    log = tmp_path / "log.jsonl"
    (tmp_path / "out").mkdir()

    def cut_after_20_frames() -> None:
        deadline = time.monotonic() + 60
        while server.frames_sent < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()

    threading.Thread(target=cut_after_20_frames, daemon=True).start()
    try:
        rc = main(["run", str(clip), server.url, *models, "--live", "--log", str(log), "--save", str(tmp_path / "out" / "{name}.avi"),
                   "--reconnect-timeout", "1"])
    finally:
        server.stop()
    out = capsys.readouterr()
    assert rc == 1
    assert re.search(r"source 'stream' failed: capture failed: stream '.*' was lost and did not come back within 1 s; the other sources go on",
                     out.err)
    assert out.err.strip().splitlines()[-1].startswith("recognizer: error: source 'stream': capture failed")
    records = read_jsonl(log)
    (lost,) = [r for r in records if r["type"] == "summary" and r.get("source") == "stream"]
    (done,) = [r for r in records if r["type"] == "summary" and r.get("source") == "long"]
    assert lost["status"] == "failed" and "did not come back" in lost["error"]
    assert done["status"] == "completed" and done["frames"] > 0
    later = [r for r in records[records.index(lost):] if r["type"] == "frame" and r["source"] == "long"]
    assert len(later) >= 10, "the clip went on after the stream was given up"
    assert records[-1]["status"] == "failed" and "source 'stream'" in records[-1]["error"]
    assert count_frames(tmp_path / "out" / "long.avi")[0] == done["frames"]
    assert count_frames(tmp_path / "out" / "stream.avi")[0] == lost["frames"] > 0, "the lost source's video is finalized"


@pytest.mark.timeout(120)
def test_cli_a_camera_that_cannot_open_is_reported_and_the_rest_runs(
    tmp_path: Path, clips: dict[str, Path], models: list[str], capsys: pytest.CaptureFixture
) -> None:
    log = tmp_path / "log.jsonl"
    rc = main(["run", str(clips["a"]), "97", *models, "--log", str(log)])
    out = capsys.readouterr()
    assert rc == 1
    assert "source 'cam97' failed: capture failed: cannot open camera 97" in out.err
    assert re.search(r"^a: completed: 30 frames", out.out, re.M)
    records = read_jsonl(log)
    assert len([r for r in records if r["type"] == "frame" and r["source"] == "a"]) == 30
    # Every source unusable: a usage error, as with one source.
    assert main(["run", "97", "98", *models]) == 2
    assert "cannot open camera 97" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_cli_refuses_per_source_outputs_that_collide(
    tmp_path: Path, clips: dict[str, Path], models: list[str], capsys: pytest.CaptureFixture
) -> None:
    # --save a.avi would give a_a.avi, not the input; {name} gives the input's own name back.
    rc = main(["run", str(clips["a"]), str(clips["b"]), *models, "--save", str(tmp_path / "{name}.avi")])
    assert rc == 2
    assert "is the input" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_one_source_logs_no_source_names(tmp_path: Path, clips: dict[str, Path], models: list[str]) -> None:
    log = tmp_path / "log.jsonl"
    assert main(["run", str(clips["b"]), *models, "--log", str(log)]) == 0
    records = read_jsonl(log)
    assert records[0]["source"]["name"] == str(clips["b"]) and records[0]["batch"] == 4
    assert not any("source" in r for r in records[1:]) and "sources" not in records[0]


# -- the tiled window --------------------------------------------------------------------------


class FakeWindow:
    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.quit = False
        self.closed = False

    def show(self, image: np.ndarray) -> bool:
        self.images.append(image.copy())
        return True

    def close(self) -> None:
        self.closed = True


def test_tiled_window_puts_each_source_in_its_tile() -> None:
    from recognizer.output.sinks import TiledWindow
    from recognizer.types import Frame, FrameResult

    window = FakeWindow()
    tiled = TiledWindow(["left", "right", "back"], window=window, max_fps=0)
    assert (tiled.cols, tiled.rows) == (2, 2)
    colours = [(0, 0, 200), (0, 200, 0), (200, 0, 0)]
    for i, colour in enumerate(colours):
        image = np.full((120, 160, 3), colour, np.uint8)
        result = FrameResult(Frame(0, 0.0, image), [], None, 0.0, 0.0, 1, 0.0, source=["left", "right", "back"][i], source_index=i)
        tiled.emit(result, None)
    canvas = window.images[-1]
    assert canvas.shape == (240, 320, 3)
    assert tuple(canvas[20, 80]) == colours[0] and tuple(canvas[20, 240]) == colours[1] and tuple(canvas[140, 80]) == colours[2]
    assert tuple(canvas[140, 240]) == (0, 0, 0), "the fourth tile is empty"
    assert not (canvas[110:119, 2:40] == colours[0]).all(), "a label along the tile's bottom"
    tiled.mark(1, "failed")
    assert len(window.images) == 4
    tiled.close()
    assert window.closed


@pytest.mark.timeout(150)
@pytest.mark.skipif(shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
                    reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run installs them)")
def test_show_tiles_the_sources_in_one_window(tmp_path: Path, display: str, tiny_checkpoints: dict[str, Path]) -> None:  # noqa: F811
    spec = ClipSpec(width=160, height=120, fps=30.0, numbers=("12",))
    left = make_bench_clip(tmp_path / "left.avi", 900, spec, fourcc="MJPG")
    right = make_bench_clip(tmp_path / "right.avi", 900, spec, fourcc="MJPG")
    log = tmp_path / "log.jsonl"
    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "recognizer", "run", str(left), str(right), "--show", "--live", "--log", str(log),
           "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"]), "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)

    def frames_of(name: str) -> int:
        return log.read_text().count(f'"type":"frame","source":"{name}"') if log.exists() else 0

    try:
        found: list[str] = []

        def window_found() -> bool:
            assert proc.poll() is None, proc.communicate()
            found[:] = xdotool(display, "search", "--name", "recognizer - left, right").split()
            return bool(found)

        wait_for(window_found, 60, "the tiled window")
        wait_for(lambda: frames_of("left") >= 10 and frames_of("right") >= 10, 30, "frames of both sources")
        # (the toolkit may give the title to more than one X window: one of them is the image's)
        sizes = [re.findall(r"Geometry: (\d+)x(\d+)", xdotool(display, "getwindowgeometry", w)) for w in found]
        assert [("320", "120")] in sizes, f"two 160x120 tiles side by side: {found} {sizes}"
        xdotool(display, "windowfocus", "--sync", found[0])
        xdotool(display, "key", "q")
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == 0, stderr
    assert re.search(r"^left: quit: \d+ frames", stdout, re.M) and re.search(r"^right: quit: \d+ frames", stdout, re.M)
    assert "all 2 sources: quit:" in stdout
    assert 10 <= frames_of("left") < 900


@pytest.mark.timeout(150)
def test_ctrl_c_finalizes_every_source_and_exits_130(tmp_path: Path, tiny_checkpoints: dict[str, Path]) -> None:
    spec = ClipSpec(width=160, height=120, fps=30.0, numbers=("12",))
    for name in ("left", "right"):
        make_bench_clip(tmp_path / f"{name}.avi", 900, spec, fourcc="MJPG")
    log = tmp_path / "log.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("DISPLAY", None)
    cmd = [sys.executable, "-m", "recognizer", "run", "left.avi", "right.avi", "--live", "--log", str(log), "--save", "out.mp4",
           "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"]), "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for(lambda: log.exists() and log.read_text().count('"type":"frame"') >= 20, 60, "frames of the run")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == 130, stderr
    assert "interrupted; outputs finalized" in stderr
    records = read_jsonl(log)
    assert records[-1]["type"] == "summary" and "source" not in records[-1] and records[-1]["status"] == "interrupted"
    for name in ("left", "right"):
        (summary,) = [r for r in records if r["type"] == "summary" and r.get("source") == name]
        frames = [r for r in records if r["type"] == "frame" and r["source"] == name]
        assert summary["status"] == "interrupted" and summary["frames"] == len(frames) > 0
        assert count_frames(tmp_path / f"out_{name}.mp4")[0] == len(frames), "each video finalized with its frames"
        assert re.search(rf"^{name}: interrupted: {len(frames)} frames", stdout, re.M)
