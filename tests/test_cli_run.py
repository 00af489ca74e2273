"""``recognizer run`` and ``recognizer bench`` end to end with tiny untrained checkpoints."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from procs import stop
from video_helpers import count_frames

from recognizer.cli import main
from recognizer.synth.footage import ClipSpec, make_bench_clip
from recognizer.types import DigitBox, Reading

REPO = Path(__file__).resolve().parents[1]
SPEC = ClipSpec(width=160, height=120, fps=24.0, numbers=("12",))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_bench_clip(tmp_path / "clip.mp4", 30, SPEC)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.timeout(120)
def test_file_run_writes_every_output(tmp_path: Path, clip: Path, models: list[str], capsys: pytest.CaptureFixture) -> None:
    out, log, dump = tmp_path / "out.mp4", tmp_path / "log.jsonl", tmp_path / "dump"
    rc = main(["run", str(clip), *models, "--save", str(out), "--log", str(log), "--dump", str(dump), "--batch", "3", "--score-thresh", "0.3"])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    # Same frame count and frame rate as the input: no frame dropped in file mode.
    assert count_frames(out) == (30, pytest.approx(24.0, abs=0.01))
    assert re.search(r"completed: 30 frames in [\d.]+ s \([\d.]+ FPS\), dropped 0, house numbers confirmed: \d+", stdout)
    records = read_jsonl(log)
    assert records[0]["type"] == "run" and records[0]["live"] is False
    frames = [r for r in records if r["type"] == "frame"]
    assert [r["frame"] for r in frames] == list(range(30))
    assert records[-1]["type"] == "summary" and records[-1]["frames"] == 30 and records[-1]["status"] == "completed"
    assert f"log: {len(records)} lines written" in stdout
    # --dump writes the frames and lines it says it wrote.
    m = re.search(r"dump: (\d+) frames and (\d+) lines written", stdout)
    assert m is not None
    images = sorted((dump / "frames").iterdir())
    lines = read_jsonl(dump / "readings.jsonl")
    assert int(m.group(1)) == len(images) == 30 and int(m.group(2)) == len(lines) == 30
    assert all((dump / rec["image"]).is_file() for rec in lines)
    assert cv2.imread(str(images[0])).shape == (120, 160, 3)


@pytest.mark.timeout(120)
def test_image_folder_run_with_max_frames(tmp_path: Path, models: list[str], capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((60, 80, 3), 40 * i, np.uint8))
    log = tmp_path / "log.jsonl"
    assert main(["run", str(folder), *models, "--log", str(log), "--max-frames", "4"]) == 0
    frames = [r for r in read_jsonl(log) if r["type"] == "frame"]
    assert [r["frame"] for r in frames] == [0, 1, 2, 3]
    assert "completed: 4 frames" in capsys.readouterr().out


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "MISSING"], "source '.*missing.mp4' not found: expected a camera index"),
        (["run", "CLIP", "--batch", "0"], "--batch 0: expected a positive number"),
        (["run", "CLIP", "--save", "NODIR/out.mp4"], "folder '.*nodir' does not exist"),
        (["run", "CLIP", "--save", "TMP/out.xyz"], "unknown extension '.xyz'"),
        (["run", "CLIP", "--dump", "TMP"], "is not empty; choose a new folder"),
        (["run", "97"], "cannot open camera 97"),
        (["run", "CLIP", "--detector", "TMP/none.pt"], "detector weights file .* does not exist"),
        (["run", "CLIP", "--score-thresh", "2"], "--score-thresh 2.0: expected a number in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, clip: Path, models: list[str], capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    argv = [
        a.replace("MISSING", str(tmp_path / "missing.mp4")).replace("CLIP", str(clip)).replace("NODIR", str(tmp_path / "nodir")).replace("TMP", str(tmp_path))
        for a in argv
    ]
    extra = [m for m in models if not (argv.count("--detector") and m in models[:2])]
    rc = main(argv + extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert re.search(message, err[-1]), err
    assert err[-1].startswith("recognizer: error: ")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.timeout(120)
def test_stage_failure_finalizes_outputs_and_exits_1(
    tmp_path: Path, clip: Path, models: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Failing:
        device = None

        def __init__(self) -> None:
            self.calls = 0

        def recognize(self, images):
            self.calls += 1
            if self.calls > 3:
                raise RuntimeError("out of memory (injected)")
            d = (DigitBox((5.0, 5.0, 15.0, 25.0), 3, 0.9, 0.9),)
            return [[Reading("3", 0.81, (5.0, 5.0, 15.0, 25.0), d)] for _ in images]

    import recognizer.cli.options

    monkeypatch.setattr(recognizer.cli.options, "load_recognizer", lambda args, **kw: Failing())
    out, log = tmp_path / "out.avi", tmp_path / "log.jsonl"
    t0 = time.monotonic()
    rc = main(["run", str(clip), "--save", str(out), "--log", str(log), "--batch", "2", "--workers", "1"])
    assert time.monotonic() - t0 < 30
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.err.strip().splitlines()[-1] == "recognizer: error: inference failed: out of memory (injected)"
    records = read_jsonl(log)
    frames = [r for r in records if r["type"] == "frame"]
    assert records[-1] == records[-1] | {"type": "summary", "status": "failed", "frames": len(frames)}
    n, _ = count_frames(out)
    assert n == len(frames) == 6, "what was processed before the failure is kept"


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)
    return env


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig, code, status", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signal_during_a_file_run_finalizes_outputs(tmp_path: Path, models: list[str], sig: int, code: int, status: str) -> None:
    clip = make_bench_clip(tmp_path / "long.mp4", 3000, SPEC)
    out, log = tmp_path / "out.mp4", tmp_path / "log.jsonl"
    cmd = [sys.executable, "-m", "recognizer", "run", str(clip), *models, "--save", str(out), "--log", str(log), "--batch", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and log.read_text().count('"type":"frame"') >= 20:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the run did not get going")
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == code, stderr
    assert f"{status}; outputs finalized" in stderr
    records = read_jsonl(log)  # every line whole and valid
    frames = [r for r in records if r["type"] == "frame"]
    assert 20 <= len(frames) < 3000
    assert records[-1]["type"] == "summary" and records[-1]["status"] == status
    # A playable video holding exactly the frames that were processed.
    assert count_frames(out)[0] == len(frames)
    assert f"{status}: {len(frames)} frames" in stdout


@pytest.mark.timeout(120)
def test_live_stream_run_through_the_cli(tmp_path: Path, models: list[str], capsys: pytest.CaptureFixture) -> None:
    from test_stream import MjpegServer

    server = MjpegServer().start()
    try:
        log = tmp_path / "log.jsonl"
        rc = main(["run", server.url, *models, "--log", str(log), "--max-frames", "15", "--reconnect-timeout", "5"])
    finally:
        server.stop()
    assert rc == 0
    records = read_jsonl(log)
    assert records[0]["live"] is True and records[0]["source"]["kind"] == "stream"
    frames = [r for r in records if r["type"] == "frame"]
    assert len(frames) == 15
    assert records[-1]["frames"] == 15


@pytest.mark.timeout(200)
def test_bench_runs_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--untrained", "--device", "cpu", "--frames", "8", "--batch", "2", "--settings", "1:1", "2:1", "--live-seconds", "1", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["sequential"]["frames"] == 8
    rows = [(r["extra"]["workers"], r["extra"]["batch"], r["frames"], r["extra"]["written"]) for r in report["runs"]
            if not r["extra"]["text_reader"]]
    assert rows == [(1, 2, 8, 8), (1, 1, 8, 8), (2, 2, 8, 8), (2, 1, 8, 8)]
    # the default reader for bench is fast: each setting also runs at --batch with the text reader on
    with_text = [(r["extra"]["workers"], r["extra"]["batch"], r["frames"]) for r in report["runs"] if r["extra"]["text_reader"]]
    assert with_text == [(1, 2, 8), (2, 2, 8)]
    live = report["live"]["extra"]
    assert live["captured"] == 30 and live["latency_p95_ms"] >= live["latency_p50_ms"] > 0
    assert report["live_text"]["extra"]["captured"] == 30
    assert "| sequential, batch 1" in text and "capture-to-display latency p50" in text and "text reader" in text


def test_bench_rejects_bad_settings(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--untrained", "--settings", "2x1"]) == 2
    assert "expected WORKERS:THREADS" in capsys.readouterr().err


@pytest.mark.parametrize(
    "device, workers, threads, cores, expected",
    [
        ("cpu", None, None, 2, (2, 1)),
        ("cpu", None, None, 8, (2, 4)),
        ("cpu", None, None, 1, (1, 1)),
        ("cpu", 1, None, 2, (1, 2)),
        ("cpu", 3, 5, 2, (3, 5)),
        ("cuda", None, None, 8, (1, None)),
        ("cuda", 2, 3, 8, (2, 3)),
    ],
)
def test_choose_parallelism(monkeypatch: pytest.MonkeyPatch, device, workers, threads, cores, expected) -> None:
    import recognizer.live.threads as run_threads

    monkeypatch.setattr(run_threads, "cpu_cores", lambda: cores)
    assert run_threads.choose_parallelism(device, workers, threads) == expected


@pytest.mark.timeout(120)
def test_folder_of_videos_run(tmp_path: Path, models: list[str], capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "footage"
    folder.mkdir()
    make_bench_clip(folder / "part1.mp4", 7, SPEC)
    make_bench_clip(folder / "part2.mp4", 5, SPEC)
    out, log = tmp_path / "all.mp4", tmp_path / "log.jsonl"
    assert main(["run", str(folder), *models, "--save", str(out), "--log", str(log)]) == 0
    frames = [r for r in read_jsonl(log) if r["type"] == "frame"]
    assert [Path(r["file"]).name for r in frames] == ["part1.mp4"] * 7 + ["part2.mp4"] * 5
    assert [r["frame"] for r in frames] == list(range(12))
    assert count_frames(out) == (12, pytest.approx(24.0, abs=0.01))
    assert "completed: 12 frames" in capsys.readouterr().out


@pytest.mark.parametrize("sig, exc_type", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, "Terminated")])
def test_a_signal_during_one_frames_writes_takes_effect_after_them(sig, exc_type) -> None:
    from recognizer.live import signals as session

    expected = session.Terminated if exc_type == "Terminated" else exc_type
    done = []
    with pytest.raises(expected):
        with session.deferred_interrupts():
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # the handler has run by now
            done.append("video")
            done.append("log")
    assert done == ["video", "log"]  # the block finished before the interrupt was raised
    # the handlers in force before are back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
