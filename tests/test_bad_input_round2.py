"""Bad input, round 2 (issue 21): named sources, links in folders, transparent PNGs, option
ranges, names, messages, a damaged or truncated video, and the fragment interval of a saved video.

Real files throughout: clips written with OpenCV, PNGs written byte by byte or with OpenCV, the
tiny untrained checkpoints of ``conftest.py``; commands run in-process through
``recognizer.cli.main`` unless a kill or a hang needs a real process. The ``recognizer batch``
rows that need Ray are in ``tests/test_batch_round2.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from procs import stop
from shipped import needs_models
from video_helpers import count_frames

from recognizer.cli import main
from recognizer.synth.footage import ClipSpec, make_bench_clip

REPO = Path(__file__).resolve().parents[1]
SPEC = ClipSpec(width=96, height=64, fps=24.0, numbers=("12",))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _code(argv: list[str]) -> int:
    """``main(argv)``'s exit status, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- 1. a NAME=SOURCE input is compared as SOURCE ---------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("option, value, fragment", [
    ("--save", "O/{name}.mp4", "--save 'O/c.mp4' is the input"),
    ("--log", "O/c.mp4", "--log 'O/c.mp4' is the input"),
    ("--dump", "O/{name}.mp4", "--dump 'O/c.mp4' is the input"),
])
def test_a_named_source_is_never_an_output(option: str, value: str, fragment: str, tmp_path: Path, models: list[str],
                                           monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "O").mkdir()
    clip = make_bench_clip(tmp_path / "O" / "c.mp4", 60, SPEC)
    make_bench_clip(tmp_path / "other.avi", 6, SPEC, fourcc="MJPG")
    before = _sha(clip)
    rc = main(["run", "c=O/c.mp4", "d=other.avi", option, value, *models, "--no-progress"])
    err = capfd.readouterr().err
    assert rc == 2, err
    assert fragment in _one_line(err)
    assert _sha(clip) == before and count_frames(clip)[0] == 60


# -- 3. a link in a folder is the file it points to ------------------------------------------------


def test_a_link_in_a_folder_is_read_once_and_named(tmp_path: Path) -> None:
    from recognizer.batch.jobs import discover

    folder = tmp_path / "dashcam"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).write_bytes(os.urandom(64))
    (folder / "link.mp4").symlink_to("a.mp4")
    os.link(folder / "b.mp4", folder / "hard.mp4")
    jobs = discover([str(folder), str(folder / "a.mp4")])
    assert [(Path(j.path).name, j.name) for j in jobs] == [("a.mp4", "a"), ("b.mp4", "b")]
    assert [tuple(Path(p).name for p in j.aliases) for j in jobs] == [("link.mp4",), ("hard.mp4",)]


# -- 4. transparent PNGs: composited so that the digits stay visible -------------------------------


def _digits_mask() -> np.ndarray:
    mask = np.zeros((200, 300), np.uint8)
    cv2.putText(mask, "79", (60, 150), cv2.FONT_HERSHEY_SIMPLEX, 4, 255, 12)
    return mask


def _png(path: Path, grey: np.ndarray, trns_key: int) -> Path:
    """A real 8-bit greyscale PNG (colour type 0) whose ``tRNS`` chunk makes ``trns_key`` transparent."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = grey.shape
    rows = b"".join(b"\x00" + grey[y].tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"tRNS", struct.pack(">H", trns_key)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def _transparent_pngs(folder: Path) -> dict[str, tuple[Path, int]]:
    """Each file with the background it must be read on (digits where the mask is set)."""
    mask = _digits_mask()
    dark_on_black = np.zeros((200, 300, 4), np.uint8)  # black RGB everywhere, the digits only in alpha
    dark_on_black[..., 3] = mask
    light = np.full((200, 300, 4), 255, np.uint8)  # white digits on a transparent plate
    light[..., 3] = mask
    cv2.imwrite(str(folder / "alpha_dark.png"), dark_on_black)
    cv2.imwrite(str(folder / "alpha_light.png"), light)
    key = _png(folder / "grey_key.png", np.where(mask > 0, 20, 0).astype(np.uint8), trns_key=0)
    return {"alpha_dark": (folder / "alpha_dark.png", 255), "alpha_light": (folder / "alpha_light.png", 0), "grey_key": (key, 255)}


@pytest.mark.parametrize("name", ["alpha_dark", "alpha_light", "grey_key"])
def test_transparent_png_keeps_its_digits_visible(name: str, tmp_path: Path) -> None:
    from recognizer.io.imageio import read_image_file

    path, background = _transparent_pngs(tmp_path)[name]
    image, why = read_image_file(path)
    assert why == "" and image.shape == (200, 300, 3)
    mask = _digits_mask() == 255
    assert (image[~_grow(mask)] == background).all()
    assert np.abs(image[mask].astype(int) - background).min() > 200  # the digits stand out from it


def _grow(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


@needs_models
@pytest.mark.timeout(120)
def test_recognizer_image_reads_transparent_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("RECOGNIZER_WEIGHTS", raising=False)
    files = _transparent_pngs(tmp_path)
    paths = [str(files[k][0]) for k in ("alpha_dark", "alpha_light", "grey_key")]
    assert main(["image", *paths, "--device", "cpu"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{p}: 79" for p in paths]


# -- 6, 8, 16. options out of range and damaged models: one line, exit 2, before anything starts ----


@pytest.fixture
def no_ray_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """``recognizer batch`` must refuse before it starts Ray."""
    import recognizer.batch.cluster

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(recognizer.batch.cluster, "_start_ray", refuse)


BAD_VALUES = [
    (["batch", "CLIP", "--out", "OUT", "--workers", "1000000000000000"], "--workers 1000000000000000: expected a number from 1 to 4096"),
    (["batch", "CLIP", "--out", "OUT", "--batch", "300"], "--batch 300: expected a number from 1 to 64"),
    (["batch", "CLIP", "--out", "OUT", "--retries", "1000"], "--retries 1000: expected a number from 0 to 100"),
    (["batch", "CLIP", "--out", "OUT", "--gpus-per-worker", "1.5"], "--gpus-per-worker 1.5: expected 0, a share of one GPU"),
    (["batch", "CLIP", "--out", "OUT", "--gpus-per-worker", "0.00001"], "--gpus-per-worker 1e-05: expected 0, a share of one GPU"),
    (["batch", "CLIP", "--out", "OUT", "--connect-timeout", "0"], "--connect-timeout 0.0: expected a number from 1 to 3600"),
    (["run", "CLIP", "--workers", "1000000000000000"], "--workers 1000000000000000: expected a number from 1 to 64"),
    (["run", "CLIP", "--threads", "1000000000000000"], "--threads 1000000000000000: expected a number from 1 to 256"),
    (["run", "CLIP", "--batch", "300"], "--batch 300: expected a number from 1 to 64"),
    (["run", "CLIP", "--fragment-seconds", "0"], "--fragment-seconds 0.0: expected a number from 0.1 to 60"),
    (["bench", "--batch", "300"], "--batch 300: expected a number from 1 to 64"),
    (["image", "CLIP", "--batch", "300"], "--batch 300: expected a number from 1 to 64"),
    (["demo", "--batch", "300"], "--batch 300: expected a number from 1 to 64"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv, fragment", BAD_VALUES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_VALUES])
def test_out_of_range_options_are_usage_errors(argv: list[str], fragment: str, tmp_path: Path, models: list[str],
                                               no_ray_start: None, capfd: pytest.CaptureFixture) -> None:
    if argv[0] == "batch":
        pytest.importorskip("ray")  # without it, batch says how to install it (exit 3)
    clip = make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    argv = [str(clip) if a == "CLIP" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    extra = ["--out", str(tmp_path / "demo")] if argv[0] == "demo" else []
    rc = _code([*argv[:1], *models, *extra, *argv[1:]])
    err = capfd.readouterr().err
    assert rc == 2, err
    assert fragment in _one_line(err)


@pytest.mark.timeout(60)
def test_batch_refuses_a_damaged_classifier_before_starting_ray(tmp_path: Path, tiny_checkpoints: dict[str, Path],
                                                               no_ray_start: None, capfd: pytest.CaptureFixture) -> None:
    pytest.importorskip("ray")
    clip = make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    damaged = tmp_path / "classifier.pt"
    damaged.write_bytes(tiny_checkpoints["classifier"].read_bytes()[:3000])
    rc = main(["batch", str(clip), "--out", str(tmp_path / "out"), "--detector", str(tiny_checkpoints["detector"]),
               "--classifier", str(damaged), "--no-progress"])
    err = capfd.readouterr().err
    assert rc == 2, err
    assert f"{damaged}: not a recognizer checkpoint" in _one_line(err)
    assert not (tmp_path / "out").exists()


# -- 9. --out that is an input folder -----------------------------------------------------------------


def test_the_output_folder_is_said_to_be_skipped_as_an_input(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from recognizer.batch.jobs import BatchInputError, discover

    folder = tmp_path / "dashcam"
    folder.mkdir()
    make_bench_clip(folder / "a.mp4", 3, SPEC)
    with pytest.raises(BatchInputError, match="folder '.*dashcam' is the output folder \\(--out\\)"):
        discover([str(folder)], exclude=folder)
    only_results = tmp_path / "only_results"
    (only_results / "results").mkdir(parents=True)
    make_bench_clip(only_results / "results" / "a.mp4", 3, SPEC)
    with pytest.raises(BatchInputError, match="no video files or images outside the output folder"):
        discover([str(only_results)], exclude=only_results / "results")
    pytest.importorskip("ray")
    assert main(["batch", str(folder), "--out", str(folder), "--no-progress"]) == 2
    assert "is the output folder (--out)" in _one_line(capfd.readouterr().err)


# -- 10, 11. {name} in --log, invalid source names ---------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sources", [["clip.mp4"], ["clip.mp4", "other.avi"]])
def test_name_placeholder_in_the_log_is_refused(sources: list[str], tmp_path: Path, models: list[str],
                                                monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    make_bench_clip(tmp_path / "other.avi", 6, SPEC, fourcc="MJPG")
    rc = main(["run", *sources, "--log", "log_{name}.jsonl", *models, "--no-progress"])
    assert rc == 2
    assert "--log 'log_{name}.jsonl': there is one log for all sources" in _one_line(capfd.readouterr().err)
    assert not list(tmp_path.glob("log_*"))


@pytest.mark.timeout(60)
def test_name_placeholder_with_one_source_is_its_name(tmp_path: Path, models: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    assert main(["run", "left=clip.mp4", "--save", "s_{name}.mp4", *models, "--no-progress"]) == 0
    assert count_frames(tmp_path / "s_left.mp4")[0] == 6 and not (tmp_path / "s_{name}.mp4").exists()


@pytest.mark.parametrize("spec, shown", [("../x=clip.mp4", "source name '../x'"), ("a/b=clip.mp4", "source name 'a/b'"),
                                         ("=clip.mp4", "empty source name"), ("1cam=0", "source name '1cam'")])
def test_an_invalid_source_name_says_what_a_name_may_hold(spec: str, shown: str, tmp_path: Path, models: list[str],
                                                          monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    for argv in ([spec, "clip.mp4"], [spec]):
        assert main(["run", *argv, *models, "--no-progress"]) == 2
        line = _one_line(capfd.readouterr().err)
        assert f"{shown} (in '{spec}') is not valid: a name starts with a letter and has at most 40 letters, digits" in line


def test_a_path_with_an_equals_sign_is_still_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recognizer.io.names import name_sources

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run=3").mkdir()
    make_bench_clip(tmp_path / "run=3" / "a.mp4", 2, SPEC)
    assert name_sources(["run=3/a.mp4", "run=3/*.mp4", "rtsp://cam/live?user=a"]) == [
        ("a", "run=3/a.mp4"), ("src1", "run=3/*.mp4"), ("live", "rtsp://cam/live?user=a")]


# -- 12. "reading camera 97", once -------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_camera_is_named_once(tmp_path: Path, models: list[str], capfd: pytest.CaptureFixture) -> None:
    clip = make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    assert main(["run", "97", str(clip), *models, "--no-progress", "--reconnect-timeout", "1"]) == 1
    err = capfd.readouterr().err
    assert "reading camera 97 as 'cam97'" in err and "camera camera" not in err


# -- 13. a failed batch file names the output asked for, not its temporary name ---------------------


@pytest.mark.timeout(90)
def test_a_full_disk_in_a_batch_file_names_the_output(tmp_path: Path, tiny_checkpoints: dict[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from recognizer.batch.jobs import discover, run_job
    from recognizer.models.engine import Recognizer
    from recognizer.output import sinks

    clip = make_bench_clip(tmp_path / "drive.avi", 60, ClipSpec(width=160, height=120, fps=24.0), fourcc="MJPG")
    looks = [0]

    def free(folder: object) -> int:  # plenty for a dozen looks, then the disk is full
        looks[0] += 1
        return 8 * 2**20 if looks[0] <= 12 else 100 * 1024

    monkeypatch.setattr(sinks.video, "free_bytes", free)
    rec = Recognizer.from_checkpoints(tiny_checkpoints["detector"], tiny_checkpoints["classifier"], device="cpu", tta=False)
    out = tmp_path / "out"
    out.mkdir()
    result = run_job(discover([str(clip)])[0], out, rec, save_video=True, batch=2)
    assert result.status == "failed", result
    assert f"video file '{out / 'drive.mp4'}': writing stopped after" in result.error
    assert "the disk is full" in result.error and ".part" not in result.error
    assert not list(out.iterdir())


# -- 14. a video that decodes far less than it declares ----------------------------------------------


def _truncated_avi(path: Path, frames: int = 60) -> Path:
    """An MJPG AVI of ``frames`` frames cut right after its first frame (its header still says ``frames``)."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24.0, (96, 64))
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    first = data.index(b"00dc", data.index(b"movi"))
    size = int.from_bytes(data[first + 4 : first + 8], "little")
    path.write_bytes(data[: first + 8 + size + (size & 1)])
    return path


@pytest.mark.timeout(90)
def test_a_video_that_stops_decoding_early_is_reported(tmp_path: Path, models: list[str], caplog: pytest.LogCaptureFixture) -> None:
    cut = _truncated_avi(tmp_path / "cut.avi")
    cap = cv2.VideoCapture(str(cut))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 60  # what the container still declares
    cap.release()
    log = tmp_path / "cut.jsonl"
    done = subprocess.run([sys.executable, "-m", "recognizer", "run", str(cut), "--log", str(log), *models, "--no-progress"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=80)
    assert done.returncode == 0, done.stderr
    assert "completed: 1 frames" in done.stdout
    warning = f"video '{cut}': decoding stopped after 1 of the 60 frames its container declares"
    assert any(warning in line for line in done.stderr.splitlines()), done.stderr
    summary = json.loads(log.read_text().splitlines()[-1])
    assert summary["type"] == "summary" and any(warning in w for w in summary["warnings"])
    # A whole file says nothing: no log record, no warnings in its summary.
    whole = make_bench_clip(tmp_path / "whole.mp4", 12, SPEC)
    with caplog.at_level("WARNING"):
        assert main(["run", str(whole), "--log", str(tmp_path / "whole.jsonl"), *models, "--no-progress"]) == 0
    assert not [r for r in caplog.records if "decoding stopped" in r.getMessage()]
    assert "warnings" not in json.loads((tmp_path / "whole.jsonl").read_text().splitlines()[-1])
    # The record itself, as a library user sees it.
    from recognizer.io.sources import VideoFileSource

    with caplog.at_level("WARNING"), VideoFileSource(cut) as source:
        assert len(list(source)) == 1
    assert [r.levelname for r in caplog.records if warning in r.getMessage()] == ["WARNING"]
    assert source.warnings and warning in source.warnings[0]


# -- 17. --fragment-seconds: a keyframe and a fragment every S seconds ------------------------------


def _keyframes(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [k for k, packet in enumerate(p for p in container.demux(video=0) if p.size) if packet.is_keyframe]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seconds, expected", [(None, [0, 24]), ("0.25", [0, 6, 12, 18, 24, 30, 36, 42])])
def test_fragment_seconds_sets_the_keyframe_interval(seconds: str | None, expected: list[int], tmp_path: Path, models: list[str]) -> None:
    pytest.importorskip("av")
    clip = make_bench_clip(tmp_path / "clip.avi", 48, SPEC, fourcc="MJPG")  # 24 fps
    out = tmp_path / "out.mp4"
    extra = ["--fragment-seconds", seconds] if seconds else []
    assert main(["run", str(clip), "--save", str(out), *extra, *models, "--no-progress"]) == 0
    assert _keyframes(out) == expected


@pytest.mark.timeout(120)
def test_after_kill_9_the_log_is_ahead_of_the_video_by_at_most_one_fragment(tmp_path: Path, models: list[str]) -> None:
    pytest.importorskip("av")
    clip = make_bench_clip(tmp_path / "long.avi", 2000, SPEC, fourcc="MJPG")
    video, log = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "recognizer", "run", str(clip), "--save", str(video), "--log", str(log),
           "--fragment-seconds", "0.25", *models, "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.read_bytes().count(b'"type": "frame"') + log.read_bytes().count(b'"type":"frame"') >= 100:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    logged = sum(1 for line in log.read_text().splitlines() if json.loads(line)["type"] == "frame")
    playable = count_frames(video)[0]
    assert logged >= 100 and playable <= logged
    assert logged - playable <= 6, (logged, playable)  # one fragment: 0.25 s of a 24 fps video


# -- 5. an --address where something listens that is not Ray ---------------------------------------


class FakeServer:
    """A TCP server on 127.0.0.1 that accepts and sends ``reply`` (garbage, or an HTTP/2 SETTINGS
    frame as a gRPC server would), then stays silent until the test ends."""

    def __init__(self, reply: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                conn.sendall(self.reply)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _batch_process(tmp_path: Path, port: int, models: list[str], *extra: str) -> subprocess.Popen:
    clip = make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    cmd = [sys.executable, "-m", "recognizer", "batch", str(clip), "--out", str(tmp_path / f"out{port}"),
           "--address", f"127.0.0.1:{port}", *models, "--no-progress", *extra]
    return subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
def test_an_address_that_is_not_ray_is_refused_quickly(tmp_path: Path, models: list[str]) -> None:
    pytest.importorskip("ray")
    garbage, silent = FakeServer(b"HELLO, this is not Ray\r\n" * 8), FakeServer(SETTINGS_FRAME)
    try:
        procs = [_batch_process(tmp_path, garbage.port, models), _batch_process(tmp_path, silent.port, models, "--connect-timeout", "2")]
        try:
            results = [p.communicate(timeout=60) for p in procs]
        finally:
            for p in procs:
                stop(p)
    finally:
        garbage.close()
        silent.close()
    (_, err_garbage), (_, err_silent) = results
    assert procs[0].returncode == 2 and procs[1].returncode == 2, results
    assert err_garbage.strip().splitlines()[-1].endswith("something answers there but it is not Ray (no gRPC reply); "
                                                         "check the host and port ('ray start --head' prints them)")
    assert f"cannot join the Ray cluster at '127.0.0.1:{silent.port}': no answer from Ray within 2 s" in err_silent.strip().splitlines()[-1]
    assert "Traceback" not in err_garbage + err_silent


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_wait_for_a_cluster(signum: int, code: int, tmp_path: Path, models: list[str]) -> None:
    pytest.importorskip("ray")
    silent = FakeServer(SETTINGS_FRAME)  # passes the protocol check, then never answers: Ray would wait for minutes
    proc = _batch_process(tmp_path, silent.port, models)
    try:
        lines: list[str] = []
        assert proc.stderr is not None
        while not any("file(s) to" in line for line in lines):  # the command is past its checks, into Ray
            line = proc.stderr.readline()
            assert line, proc.communicate()
            lines.append(line)
        time.sleep(1.5)
        t0 = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        waited = time.monotonic() - t0
    finally:
        stop(proc)
        silent.close()
    assert proc.returncode == code, (out, err)
    assert waited < 10, waited
