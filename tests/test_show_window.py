"""``--show`` opens a real OpenCV window under Xvfb; space pauses, q quits."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import stop

from recognizer.synth.footage import ClipSpec, make_bench_clip

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run installs them)",
)


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb server; yields its DISPLAY value."""
    for number in range(87, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    else:
        pytest.skip("no free X display number")
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("Xvfb did not start")
            time.sleep(0.05)
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def frames_logged(log: Path) -> int:
    return log.read_text().count('"type":"frame"') if log.exists() else 0


def xdotool(display: str, *args: str) -> str:
    env = dict(os.environ, DISPLAY=display)
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=10).stdout.strip()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.timeout(120)
def test_show_opens_a_window_pauses_and_quits_on_q(tmp_path: Path, display: str, tiny_checkpoints: dict[str, Path]) -> None:
    # A 60 s clip played in real time (--live on a file): it would run long past this test.
    clip = make_bench_clip(tmp_path / "clip.avi", 1800, ClipSpec(width=160, height=120, fps=30.0), fourcc="MJPG")
    log = tmp_path / "log.jsonl"
    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable, "-m", "recognizer", "run", str(clip), "--show", "--live", "--log", str(log),
        "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"]), "--device", "cpu",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        window = ""

        def window_found() -> bool:
            nonlocal window
            assert proc.poll() is None, proc.communicate()
            ids = xdotool(display, "search", "--name", "recognizer - ").split()
            window = ids[0] if ids else ""
            return bool(window)

        wait_for(window_found, 60, "the window")
        wait_for(lambda: frames_logged(log) >= 10, 30, "frames to be shown")
        xdotool(display, "windowfocus", "--sync", window)

        # Space pauses: no new frames while paused.
        xdotool(display, "key", "space")
        time.sleep(0.5)  # the key is handled at the next frame
        paused_at = frames_logged(log)
        time.sleep(1.0)
        assert frames_logged(log) <= paused_at + 1, "frames kept coming while paused"
        xdotool(display, "key", "space")
        wait_for(lambda: frames_logged(log) > paused_at + 5, 20, "frames after resuming")

        xdotool(display, "key", "q")
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode == 0, stderr
    assert "quit:" in stdout
    shown = frames_logged(log)
    assert 10 < shown < 1800, "quit long before the clip's end"
