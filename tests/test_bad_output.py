"""Bad outputs and hard stops (issue 11, second part): nothing lost, nothing hangs, no traceback.

A full disk (a small tmpfs where this machine lets the tests mount one, else a disk or writer
that fails on purpose), a log that cannot be written, a writer killed with SIGKILL, a second
Ctrl-C/SIGTERM right after the first, and images too large to hold at full size.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from procs import stop
from video_helpers import count_frames, frames_of

import recognizer.output.sinks as sinks
from recognizer.cli import main
from recognizer.synth.footage import ClipSpec, make_bench_clip
from recognizer.types import DigitBox, Reading

REPO = Path(__file__).resolve().parents[1]
SPEC = ClipSpec(width=160, height=120, fps=24.0, numbers=("12",))


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` for the block (skips the test where one cannot be mounted)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root; the 'simulated' variant of this test covers the rest")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def small_disk(tmp_path: Path, disk: str, size: str, simulate: Callable[[Path], None]) -> Iterator[Path]:
    """``tmp_path / "small"``: a real tmpfs of ``size`` when ``disk`` is "tmpfs", else a plain
    folder where ``simulate(folder)`` patches in a disk that fills up."""
    folder = tmp_path / "small"
    if disk == "tmpfs":
        with tmpfs(folder, size):
            yield folder
    else:
        folder.mkdir()
        simulate(folder)
        yield folder


def full_disk_after(calls: int, plenty: int = 8 * 2**20, left: int = 100 * 1024):
    """A stand-in for :func:`recognizer.output.sinks.free_bytes`: ``plenty`` bytes free for the first
    ``calls`` looks (not so many that the video would look only once a second), then ``left``."""
    seen = [0]

    def free(folder: object) -> int:
        seen[0] += 1
        return plenty if seen[0] <= calls else left

    return free


def noise_clip(path: Path, frames: int) -> Path:
    """Frames of noise: they compress badly, so a small disk fills after a few dozen."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, (160, 120))
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def jsonl(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the last line is cut"
    return [json.loads(line) for line in data.decode().splitlines()]


def last_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    return lines[-1]


# -- 1. a full disk while a video is written ---------------------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
def test_a_full_disk_ends_the_run_with_a_finalized_video(
    disk: str, tmp_path: Path, models: list[str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    clip = noise_clip(tmp_path / "noise.avi", 200)
    with small_disk(tmp_path, disk, "1m", lambda _: monkeypatch.setattr(sinks.video, "free_bytes", full_disk_after(40))) as small:
        out, log = small / "out.mp4", small / "run.jsonl"
        rc = main(["run", str(clip), *models, "--save", str(out), "--log", str(log), "--batch", "2"])
        stdout, err = capfd.readouterr()
        assert rc == 1, err
        last = last_line(err)
        m = re.fullmatch(rf"recognizer: error: video file '{re.escape(str(out))}': writing stopped after (\d+) frames: the disk is full \(.*\)", last)
        assert m, last
        n = int(m.group(1))
        assert 5 <= n < 200
        # The video is finalized and plays every frame it was given, at the input's rate.
        assert count_frames(out) == (n, pytest.approx(24.0, abs=0.01))
        assert re.search(rf"video: {n} frames written to {re.escape(str(out))} \(\w+\) and finalized, all of them play; writing stopped there: the disk is full", stdout), stdout
        # The log, on the same disk, holds whole lines: the frames of the video and a summary saying why it failed.
        records = jsonl(log)
        assert sum(r["type"] == "frame" for r in records) == n
        assert records[-1]["type"] == "summary" and records[-1]["status"] == "failed" and "the disk is full" in records[-1]["error"]
        assert stdout.startswith(f"failed: {n} frames")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_a_write_that_fails_is_one_line_and_the_file_keeps_what_was_written(
    disk: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the guard that stops before the disk is full (another program may fill it): the
    # failure itself must still be seen, and the file keep the frames that reached it.
    if disk == "simulated" and name == "out.avi":
        pytest.skip("OpenCV's writer cannot be made to fail on purpose; the tmpfs variant covers it")
    if name == "out.mp4" and sinks.video._h264_module() is None:
        pytest.skip("PyAV is not installed: .mp4 is written by OpenCV (the out.avi variant)")
    monkeypatch.setattr(sinks.video._SpaceGuard, "low", lambda self, frames: None)
    rng = np.random.default_rng(1)

    def writer_fails_after_40(small: Path) -> None:
        real = sinks.video._AvWriter.write

        def failing(self, image):
            if getattr(self, "_n", 0) >= 40:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(small / name))
            real(self, image)

        monkeypatch.setattr(sinks.video._AvWriter, "write", failing)

    with small_disk(tmp_path, disk, "1m", writer_fails_after_40) as small:
        path = small / name
        sink = sinks.VideoSink(path, 24.0)
        with pytest.raises(sinks.SinkError) as info:
            for _ in range(400):  # about 15 KB each: 1 MB is full after some 70
                sink.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
            sink.close()
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"video file '{path}': ")
        sink.close()  # finalized (a second close does nothing)
        assert sink.readable is not None and sink.readable > 0
        assert count_frames(path)[0] == sink.readable
        if name == "out.mp4":
            # H.264 in fragments: the frames up to the last complete one play.
            assert f"writing stopped after {sink.frames} frames: No space left on device" in message
            assert sink.frames - 24 <= sink.readable <= sink.frames
        else:
            assert f"only {sink.readable} of {sink.frames} frames play" in message
        assert f"the first {sink.readable} of them play" in sink.status_line() or "all of them play" in sink.status_line()


# -- 2. a log that cannot be written -------------------------------------------------------------


def _fail_writes_past(monkeypatch: pytest.MonkeyPatch, path: Path, capacity: int) -> None:
    """``os.write`` to ``path`` behaves like a disk with ``capacity`` bytes: short, then ENOSPC."""
    real = os.write

    def write(fd: int, data) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target != str(path):
            return real(fd, data)
        room = capacity - os.fstat(fd).st_size
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, bytes(data)[:room])

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
def test_a_log_on_a_full_disk_keeps_whole_lines_only(disk: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with small_disk(tmp_path, disk, "8k", lambda d: _fail_writes_past(monkeypatch, (d / "run.jsonl").resolve(), 8192)) as small:
        log = sinks.JsonlLog(small / "run.jsonl")
        log.open()
        with pytest.raises(sinks.SinkError) as info:
            for i in range(1000):
                log.write({"type": "frame", "frame": i, "pad": "x" * (60 + i % 50)})
        lines = log.lines
        assert str(info.value) == f"log file '{small / 'run.jsonl'}': cannot write (No space left on device); it holds {lines} whole lines"
        with pytest.raises(sinks.SinkError):
            log.write({"type": "summary"})  # refused again, nothing half written
        log.close()
        records = jsonl(small / "run.jsonl")
        assert [r["frame"] for r in records] == list(range(lines)) and lines > 10
        assert log.status_line().endswith("whole lines only; writing stopped there: cannot write (No space left on device)")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
def test_a_log_failing_mid_run_is_one_line_and_the_video_is_still_finalized(
    disk: str, tmp_path: Path, models: list[str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    clip = make_bench_clip(tmp_path / "clip.mp4", 150, SPEC)
    out = tmp_path / "out.mp4"
    with small_disk(tmp_path, disk, "8k", lambda d: _fail_writes_past(monkeypatch, (d / "run.jsonl").resolve(), 8192)) as small:
        log = small / "run.jsonl"
        rc = main(["run", str(clip), *models, "--save", str(out), "--log", str(log), "--batch", "2"])
        stdout, err = capfd.readouterr()
        records = jsonl(log)
    assert rc == 1, err
    m = re.fullmatch(rf"recognizer: error: log file '{re.escape(str(log))}': cannot write \(No space left on device\); it holds (\d+) whole lines", last_line(err))
    assert m, err
    assert len(records) == int(m.group(1)) and records[0]["type"] == "run"
    logged = sum(r["type"] == "frame" for r in records)
    assert 3 <= logged < 150
    # The video got every frame up to the one whose line did not fit, and is finalized.
    vm = re.search(r"video: (\d+) frames written to", stdout)
    assert vm, stdout
    assert count_frames(out)[0] == int(vm.group(1)) >= logged
    assert f"log: {len(records)} lines written to {log}, whole lines only" in stdout


# -- 3. a video killed with SIGKILL -------------------------------------------------------------


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)
    return env


def _start_run(tmp_path: Path, models: list[str], *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    clip = make_bench_clip(tmp_path / "long.mp4", 3000, SPEC)
    out, log = tmp_path / "out.mp4", tmp_path / "log.jsonl"
    cmd = [sys.executable, "-m", "recognizer", "run", str(clip), *models, "--save", str(out), "--log", str(log), "--batch", "2", *extra]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out, log


def _wait_for_frames(proc: subprocess.Popen, log: Path, frames: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b'"type":"frame"') >= frames:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    pytest.fail("the run did not get going")


@pytest.mark.timeout(120)
def test_a_video_killed_with_sigkill_plays_up_to_its_last_second(tmp_path: Path, models: list[str]) -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        pytest.skip("PyAV is not installed: .mp4 is written by OpenCV, which cannot survive SIGKILL")
    proc, out, log = _start_run(tmp_path, models)
    try:
        _wait_for_frames(proc, log, 80)
        proc.kill()  # no handler, no finalizing: like a power cut or the OOM killer
        proc.wait(timeout=30)
    finally:
        stop(proc)
    logged = log.read_bytes().count(b'"type":"frame"')
    n, fps = count_frames(out)
    assert fps == pytest.approx(24.0, abs=0.01)
    # A fragment per second (24 frames) reaches the disk as soon as it is complete.
    assert logged - 30 <= n <= logged + 8, (n, logged)


# -- 4. a second Ctrl-C or SIGTERM right after the first -----------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig, code, status", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_second_signal_right_after_the_first_changes_nothing(tmp_path: Path, models: list[str], sig: int, code: int, status: str) -> None:
    proc, out, log = _start_run(tmp_path, models)
    try:
        _wait_for_frames(proc, log, 20)
        proc.send_signal(sig)
        # More of the same every 20 ms until the process is gone: while it stops the pipeline,
        # finalizes the outputs, prints, and while the interpreter shuts down.
        deadline = time.monotonic() + 30
        sent = 1
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
                sent += 1
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert sent >= 2
    assert proc.returncode == code, (proc.returncode, stderr[-2000:])
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == f"recognizer: {status}; outputs finalized"
    records = jsonl(log)
    frames = sum(r["type"] == "frame" for r in records)
    assert records[-1]["type"] == "summary" and records[-1]["status"] == status
    assert count_frames(out)[0] == frames
    assert f"{status}: {frames} frames" in stdout


# -- 5. images too large to hold at full size ----------------------------------------------------

INK = (1500, 2400, 2700, 4200)  # x1, y1, x2, y2 of the "digit" in the 6000x6000 image


def _huge_image(path: Path) -> Path:
    """6000x6000, light with one dark block: a PNG of a few hundred KB."""
    image = np.full((6000, 6000, 3), 235, np.uint8)
    x1, y1, x2, y2 = INK
    image[y1:y2, x1:x2] = 20
    cv2.imwrite(str(path), image)
    return path


class InkReader:
    """Reads the dark block of each image as a "7" at the block's pixels; records what it was given."""

    device = None

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, ...]]] = []

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        self.batches.append([img.shape for img in images])
        out = []
        for img in images:
            ys, xs = np.nonzero(img[..., 0] < 100)
            if not len(xs):
                out.append([])
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            out.append([Reading("7", 0.9, box, (DigitBox(box, 7, 0.9, 0.9),))])
        return out


@pytest.fixture
def ink_reader(monkeypatch: pytest.MonkeyPatch) -> InkReader:
    import recognizer.cli.options

    reader = InkReader()
    monkeypatch.setattr(recognizer.cli.options, "load_recognizer", lambda args, **kw: reader)
    return reader


def _near(box: Sequence[float], expected: Sequence[float], tol: float) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(box, expected))


@pytest.mark.timeout(60)
def test_a_huge_image_is_downscaled_on_read_and_its_boxes_come_back_in_its_pixels(
    tmp_path: Path, ink_reader: InkReader, capsys: pytest.CaptureFixture
) -> None:
    from recognizer.io.sources import MAX_SIDE

    big = _huge_image(tmp_path / "big.png")
    small = tmp_path / "small.png"
    image = np.full((64, 96, 3), 235, np.uint8)
    image[10:50, 30:52] = 20
    cv2.imwrite(str(small), image)
    assert main(["image", "--json", str(big), str(small), str(big), "--batch", "4"]) == 0
    shapes = [s for batch in ink_reader.batches for s in batch]
    assert max(max(s[:2]) for s in shapes) == MAX_SIDE == 4096
    # A batch holds at most one image's worth of pixels at the largest size (and at least one image).
    assert all(sum(s[0] * s[1] for s in batch) <= 4096 * 4096 or len(batch) == 1 for batch in ink_reader.batches)
    assert len(ink_reader.batches) >= 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in lines] == ["big.png", "small.png", "big.png"]
    # Boxes in the file's pixels: one pixel of the 4096 image is 1.46 of the file.
    for r in (lines[0], lines[2]):
        assert r["readings"][0]["text"] == "7" and _near(r["readings"][0]["box"], INK, 3.0), r
        assert _near(r["readings"][0]["digits"][0]["box"], INK, 3.0)
    assert lines[1]["readings"][0]["box"] == [30.0, 10.0, 52.0, 50.0]


@pytest.mark.timeout(60)
def test_run_reads_a_huge_image_downscaled_and_logs_boxes_in_its_pixels(tmp_path: Path, ink_reader: InkReader) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    _huge_image(folder / "big.png")
    log, dump = tmp_path / "log.jsonl", tmp_path / "dump"
    assert main(["run", str(folder), "--log", str(log), "--dump", str(dump)]) == 0
    assert ink_reader.batches == [[(4096, 4096, 3)]]
    frame = next(r for r in jsonl(log) if r["type"] == "frame")
    assert frame["scale"] == round(4096 / 6000, 6)
    assert _near(frame["readings"][0]["box"], INK, 3.0) and _near(frame["tracks"][0]["box"], INK, 3.0)
    line = jsonl(dump / "readings.jsonl")[0]
    assert line["scale"] == frame["scale"] and _near(line["readings"][0]["box"], INK, 3.0)
    assert cv2.imread(str(dump / line["image"])).shape == (4096, 4096, 3)  # drawn at the size it was read


@pytest.mark.timeout(30)
def test_the_pipeline_bounds_the_pixels_of_a_batch_and_the_frames_in_flight() -> None:
    from recognizer.io.sources import Source
    from recognizer.live.pipeline import Pipeline, PipelineConfig
    from recognizer.types import Frame

    class BigFrames(Source):
        kind = "images"

        def __init__(self, n: int) -> None:
            super().__init__("big frames")
            self.n = n

        def open(self) -> None:
            self._index = 0

        def read(self, should_stop=None):
            if self._index >= self.n:
                return None
            self._index += 1
            return Frame(self._index - 1, self._index / 30, np.zeros((1000, 1500, 3), np.uint8))

        def close(self) -> None:
            pass

    class Slow:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def recognize(self, images):
            self.batches.append(len(images))
            time.sleep(0.01)
            return [[] for _ in images]

    frame_bytes = 1000 * 1500 * 3
    rec = Slow()
    cfg = PipelineConfig(batch_size=4, workers=2, batch_pixels=2 * 1000 * 1500, max_frame_bytes=3 * frame_bytes, queue_size=16)
    with BigFrames(20) as src, Pipeline(src, rec, config=cfg) as pipe:
        indices = [r.frame.index for r in frames_of(pipe)]
    assert indices == list(range(20))
    assert max(rec.batches) == 2 and sum(rec.batches) == 20
    assert pipe.lanes[0].budget is not None and pipe.lanes[0].budget.peak <= 3 * frame_bytes


@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
def test_a_dump_on_a_full_disk_keeps_whole_images_and_lines(disk: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)

    def images_fail_after_5(small: Path) -> None:
        real = sinks.DumpSink._write_image

        def failing(self, path, image):
            if self.frames >= 5:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(self, path, image)

        monkeypatch.setattr(sinks.DumpSink, "_write_image", failing)

    with small_disk(tmp_path, disk, "256k", images_fail_after_5) as small:
        dump = sinks.DumpSink(small / "dump")
        dump.open()
        with pytest.raises(sinks.SinkError) as info:
            for i in range(500):
                dump.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), i, i / 24, [])
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"dump folder '{small / 'dump'}': ")
        assert "No space left on device" in message
        dump.close()
        images = sorted(p.name for p in (small / "dump" / "frames").iterdir())
        lines = jsonl(small / "dump" / "readings.jsonl")
        # Every image is whole (no partly written one is left) and has its line, or the line did not fit.
        assert images[: len(lines)] == [r["image"].split("/")[1] for r in lines]
        assert len(images) - len(lines) in (0, 1) and images
        assert all(cv2.imread(str(small / "dump" / "frames" / name)) is not None for name in images)
        assert "writing stopped there: " in dump.status_line()
