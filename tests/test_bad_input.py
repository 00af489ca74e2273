"""Bad inputs (issue 11): nothing lost, nothing hangs, no traceback.

Most cases are rows of :data:`CASES`: the command, its exit status, a fragment of the last line
it prints on stderr, and what must still be valid on disk afterwards. Placeholders such as
``{clip}`` name the files made by the ``world`` fixture. Cases that need more than a row (a
FIFO that could block, damaged checkpoints, reading functions) follow the table.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import pickle
import random
import shutil
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recognizer.cli import build_parser, main
from recognizer.synth.footage import ClipSpec, make_bench_clip

SPEC = ClipSpec(width=96, height=64, fps=24.0, numbers=("12",))


class RunsCode:
    """Pickles as a call to os.system: a checkpoint that would run a command if unpickled freely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _digit_image() -> np.ndarray:
    img = np.full((64, 96, 3), 235, np.uint8)
    cv2.putText(img, "79", (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 20), 4)
    return img


@pytest.fixture
def world(tmp_path: Path, tiny_checkpoints: dict[str, Path]) -> dict[str, str]:
    """The files the rows refer to, by placeholder name."""
    w: dict[str, Path] = {"tmp": tmp_path}
    w["clip"] = make_bench_clip(tmp_path / "clip.mp4", 6, SPEC)
    w["link"] = tmp_path / "link.mp4"
    w["link"].symlink_to(w["clip"])
    w["hard"] = tmp_path / "hard.mp4"
    os.link(w["clip"], w["hard"])
    (tmp_path / "sub").mkdir()
    frames = w["frames"] = tmp_path / "frames"
    frames.mkdir()
    for i in (1, 2):
        cv2.imwrite(str(frames / f"f{i}.png"), _digit_image())
    # Copies of the tiny models: a row may try to overwrite them.
    w["det"] = Path(shutil.copy(tiny_checkpoints["detector"], tmp_path / "det.pt"))
    w["clf"] = Path(shutil.copy(tiny_checkpoints["classifier"], tmp_path / "clf.pt"))
    w["img"] = tmp_path / "img.png"
    cv2.imwrite(str(w["img"]), _digit_image())
    for folder, ext in (("a", ".png"), ("b", ".jpg")):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / f"photo{ext}"), _digit_image())
    imgs = w["imgs"] = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), _digit_image())
    cv2.imwrite(str(imgs / "a_read.png"), np.zeros((30, 40, 3), np.uint8))  # an input, not a result
    jpeg = cv2.imencode(".jpg", _digit_image())[1].tobytes()
    w["trunc"] = tmp_path / "trunc.jpg"
    w["trunc"].write_bytes(jpeg[: len(jpeg) * 2 // 3])
    w["empty"] = tmp_path / "empty.avi"
    cv2.VideoWriter(str(w["empty"]), cv2.VideoWriter_fourcc(*"MJPG"), 24, (96, 64)).release()
    w["hello"] = tmp_path / "hello.pt"
    w["hello"].write_text("hello\n")
    w["t"] = tmp_path / "t.pt"
    w["t"].write_text("this is a text file\n")
    w["marker"] = tmp_path / "code-ran"
    w["evil"] = tmp_path / "evil.pt"
    torch.save({"format": "recognizer-checkpoint", "x": RunsCode(w["marker"])}, w["evil"])
    w["pipes"] = tmp_path / "pipes"
    w["pipes"].mkdir()
    w["fifo"] = w["pipes"] / "frame.png"
    os.mkfifo(w["fifo"])
    w["weights_empty"] = tmp_path / "weights_empty"
    w["weights_empty"].mkdir()
    return {k: str(v) for k, v in w.items()}


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    fragment: str  # in the last line on stderr
    intact: tuple[str, ...] = ()  # byte-identical afterwards
    absent: tuple[str, ...] = ()  # must not exist afterwards
    exists: tuple[str, ...] = ()  # must exist afterwards
    stdout: str = ""  # in stdout
    env: tuple[tuple[str, str], ...] = ()
    models: bool = True  # pass the tiny --detector/--classifier


CASES = [
    # 1. No output may be an input, another output, or inside --dump: refused before anything opens.
    Case("save-is-input", ("run", "{clip}", "--save", "{clip}"), 2, "is the input", intact=("{clip}",)),
    Case("log-is-input", ("run", "{clip}", "--log", "{clip}"), 2, "is the input", intact=("{clip}",)),
    Case("save-is-input-via-dotdot", ("run", "{clip}", "--save", "{tmp}/sub/../clip.mp4"), 2, "is the input", intact=("{clip}",)),
    Case("save-is-symlink-to-input", ("run", "{clip}", "--save", "{link}"), 2, "is the input", intact=("{clip}",)),
    Case("log-is-hard-link-of-input", ("run", "{clip}", "--log", "{hard}"), 2, "is the input", intact=("{clip}", "{hard}")),
    Case("input-is-symlink-save-is-target", ("run", "{link}", "--save", "{clip}"), 2, "is the input", intact=("{clip}",)),
    Case("save-and-log-same", ("run", "{clip}", "--save", "{tmp}/s.mp4", "--log", "{tmp}/s.mp4"), 2, "are the same file",
         intact=("{clip}",), absent=("{tmp}/s.mp4",)),
    Case("log-inside-dump", ("run", "{clip}", "--dump", "{tmp}/d", "--log", "{tmp}/d/log.jsonl"), 2, "inside the --dump folder",
         absent=("{tmp}/d",)),
    Case("save-inside-dump", ("run", "{clip}", "--dump", "{tmp}/d", "--save", "{tmp}/d/frames/v.avi"), 2, "inside the --dump folder",
         absent=("{tmp}/d",)),
    Case("log-is-a-file-of-input-folder", ("run", "{frames}", "--log", "{frames}/f1.png"), 2, "is the input",
         intact=("{frames}/f1.png",)),
    Case("log-is-the-checkpoint", ("run", "{clip}", "--log", "{clf}"), 2, "is the classifier checkpoint", intact=("{clf}",)),
    # 2. Two inputs with one stem, or a result named like an input: never overwritten.
    Case("same-stem", ("image", "{tmp}/a/photo.png", "{tmp}/b/photo.jpg", "--save-dir", "{tmp}/out"), 0, "saved as",
         exists=("{tmp}/out/photo_read.png", "{tmp}/out/photo_read-2.png")),
    Case("result-named-like-an-input", ("image", "{imgs}", "--save-dir", "{imgs}"), 0, "saved as",
         intact=("{imgs}/a_read.png",), exists=("{imgs}/a_read-2.png", "{imgs}/a_read_read.png")),
    # 3. Only regular files are read (a FIFO given directly to run: no hang, a clear error).
    Case("run-fifo", ("run", "{fifo}"), 2, "is not a regular file"),
    # 5. Damaged weights and code-running pickles: one line naming the file.
    Case("weights-text-hello", ("image", "{img}", "--detector", "{hello}"), 2, "hello.pt: not a recognizer checkpoint"),
    Case("weights-text-t", ("image", "{img}", "--detector", "{t}"), 2, "t.pt: not a recognizer checkpoint"),
    Case("weights-run-code", ("image", "{img}", "--classifier", "{evil}"), 2, "not loaded because it could run code",
         absent=("{marker}",)),
    # 7. --save-dir that is a file or cannot be made, an unavailable device.
    Case("save-dir-is-a-file", ("image", "{img}", "--save-dir", "{img}"), 2, "is a file; expected a folder", intact=("{img}",)),
    Case("save-dir-under-proc", ("image", "{img}", "--save-dir", "/proc/recognizer-test/out"), 2, "cannot create the folder"),
    Case("device-mps", ("image", "{img}", "--device", "mps"), 2, "device 'mps' is not available here"),
    Case("device-cuda-99", ("run", "{clip}", "--device", "cuda:99"), 2, "cuda:99"),
    # 8. RECOGNIZER_WEIGHTS must be a folder holding the weights.
    Case("weights-env-missing", ("image", "{img}"), 2, "RECOGNIZER_WEIGHTS={tmp}/nowhere: no such folder",
         env=(("RECOGNIZER_WEIGHTS", "{tmp}/nowhere"),), models=False),
    Case("weights-env-empty", ("image", "{img}"), 2, "RECOGNIZER_WEIGHTS={weights_empty}: the folder has no",
         env=(("RECOGNIZER_WEIGHTS", "{weights_empty}"),), models=False),
    # 10. A truncated JPEG is reported as damaged; the other images are read.
    Case("truncated-jpeg", ("image", "{trunc}", "{img}"), 1, "trunc.jpg': damaged", stdout="img.png: "),
    # 12. A video without frames is not a completed run.
    Case("empty-video", ("run", "{empty}", "--log", "{tmp}/log.jsonl"), 1, "had no frames", exists=("{tmp}/log.jsonl",)),
    # 13. Outputs that cannot be created or written at the start: one line, exit 2, nothing left behind
    # (more in tests/test_bad_output.py: full disks, a log failing mid-run, SIGKILL, second signals).
    Case("save-under-proc", ("run", "{clip}", "--save", "/proc/recognizer-out.mp4"), 2,
         "video file '/proc/recognizer-out.mp4': folder '/proc' is not writable"),
    Case("log-under-proc", ("run", "{clip}", "--log", "/proc/recognizer-run.jsonl"), 2,
         "log file '/proc/recognizer-run.jsonl': folder '/proc' is not writable"),
    Case("dump-under-proc", ("run", "{clip}", "--dump", "/proc/recognizer-dump"), 2, "folder '/proc' is not writable"),
    Case("log-dev-full", ("run", "{clip}", "--log", "/dev/full", "--save", "{tmp}/o.mp4"), 2,
         "log file '/dev/full': cannot write (No space left on device)", absent=("{tmp}/o.mp4",)),
]


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world: dict[str, str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    fill = lambda items: [s.format(**world) for s in items]  # noqa: E731
    argv = fill(case.argv)
    if case.models:
        # Right after the command: a row's own --detector/--classifier/--device come later and win.
        argv[1:1] = ["--detector", world["det"], "--classifier", world["clf"], "--device", "cpu"]
    monkeypatch.delenv("RECOGNIZER_WEIGHTS", raising=False)
    for key, value in case.env:
        monkeypatch.setenv(key, value.format(**world))
    before = {p: _sha(p) for p in fill(case.intact)}
    rc = main(argv)
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert rc == case.code, err
    assert "Traceback" not in err and "weights_only" not in err  # never torch's advice to load unsafely
    assert lines and case.fragment.format(**world) in lines[-1], err
    if case.code == 2:
        assert len(lines) == 1, err
    assert case.stdout in out
    for p, digest in before.items():
        assert _sha(p) == digest, f"{p} was changed"
    for p in fill(case.absent):
        assert not os.path.lexists(p), f"{p} was created"
    for p in fill(case.exists):
        assert Path(p).is_file(), f"{p} is missing"


# 4. Non-finite numbers: a usage error for every float option of every command.
FLOAT_OPTIONS = [
    ("run", "--fps"), ("run", "--reconnect-timeout"), ("run", "--score-thresh"), ("run", "--not-digit-thresh"),
    ("image", "--score-thresh"), ("image", "--not-digit-thresh"),
    ("bench", "--live-seconds"), ("bench", "--score-thresh"),
    ("demo", "--fps"), ("demo", "--not-digit-thresh"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("command, option", FLOAT_OPTIONS)
def test_non_finite_numbers_are_usage_errors(command: str, option: str, value: str, capsys: pytest.CaptureFixture) -> None:
    positional = {"run": ["0"], "image": ["x.png"]}.get(command, [])
    with pytest.raises(SystemExit) as info:
        main([command, *positional, f"{option}={value}"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.strip().splitlines()[-1].endswith(f"argument {option}: '{value}' is not a finite number")


def test_every_float_option_is_checked() -> None:
    """No subcommand keeps a plain float option (NaN passes float() and every comparison fails)."""
    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    floats = {(name, a.option_strings[0]) for name, p in subs.items() for a in p._actions if a.type is float}
    assert not floats
    checked = {(name, a.option_strings[0]) for name, p in subs.items() for a in p._actions if getattr(a.type, "__name__", "") == "finite_float"}
    assert set(FLOAT_OPTIONS) <= checked


# 3. FIFOs named like images must not block: a guard opens the FIFO for writing after a few
# seconds if a reader is stuck on it, so today's code fails instead of hanging.
class FifoGuard:
    def __init__(self, path: Path, after: float = 4.0) -> None:
        self.path, self.after = path, after
        self.reader_was_blocked = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self._stop.wait(self.after):
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader waits
        except OSError:
            return
        self.reader_was_blocked = True
        os.close(fd)

    def __enter__(self) -> FifoGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("given", ["folder", "file"])
def test_fifo_named_png_does_not_block_image(given: str, world: dict[str, str], capfd: pytest.CaptureFixture) -> None:
    folder = Path(world["pipes"])
    cv2.imwrite(str(folder / "good.png"), _digit_image())
    fifo = Path(world["fifo"])
    paths = [str(folder)] if given == "folder" else [str(fifo), str(folder / "good.png")]
    with FifoGuard(fifo) as guard:
        rc = main(["image", *paths, "--detector", world["det"], "--classifier", world["clf"], "--device", "cpu"])
    out, err = capfd.readouterr()
    assert not guard.reader_was_blocked
    assert rc == 1
    assert f"cannot read image '{fifo}': not a regular file" in err
    assert f"{folder / 'good.png'}: " in out  # the others are still read


@pytest.mark.timeout(20)
def test_fifo_in_a_glob_does_not_block_run(world: dict[str, str], capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    folder = Path(world["pipes"])
    cv2.imwrite(str(folder / "good.png"), _digit_image())
    with caplog.at_level(logging.WARNING), FifoGuard(Path(world["fifo"])) as guard:
        rc = main(["run", str(folder / "*.png"), "--detector", world["det"], "--classifier", world["clf"], "--device", "cpu"])
    out, _ = capfd.readouterr()
    assert not guard.reader_was_blocked
    assert rc == 0 and "completed: 1 frames" in out
    assert f"'{world['fifo']}': not a regular file" in caplog.text


# 5. A fuzz over damaged copies of a checkpoint: exit 2, one line naming the file, no traceback.
def _damaged_copies(good: bytes) -> list[tuple[str, bytes]]:
    rng = random.Random(11)
    copies = [(f"truncated-{n}", good[:n]) for n in (0, 1, 2, 64, 1000, len(good) // 2, len(good) - 100, len(good) - 1)]
    for k in range(6):
        b = bytearray(good)
        # Several bytes each: one flip may land in the zip's alignment padding, which holds nothing.
        for _ in range(8 if k < 3 else 20):
            i = rng.randrange(len(b))
            b[i] ^= rng.randrange(1, 256)
        copies.append((f"flipped-{k}", bytes(b)))
    copies.append(("text", b"hello\n"))
    copies.append(("text-t", b"tea for two\n"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes/readme.txt", "not a model")
    copies.append(("foreign-zip", buf.getvalue()))
    copies.append(("pickle-of-a-dict", pickle.dumps({"format": "recognizer-checkpoint", "kind": "classifier"})))
    for name, payload in (
        ("torch-dict-foreign", {"state_dict": {}}),
        ("config-not-a-dict", {"format": "recognizer-checkpoint", "format_version": 1, "kind": "classifier", "config": [1], "state_dict": {}}),
        ("state-not-tensors", {"format": "recognizer-checkpoint", "format_version": 1, "kind": "classifier", "config": {}, "state_dict": {"a": 1}}),
        ("bad-config", {"format": "recognizer-checkpoint", "format_version": 1, "kind": "classifier", "config": {"channels": 3}, "state_dict": {}}),
    ):
        buf = io.BytesIO()
        torch.save(payload, buf)
        copies.append((name, buf.getvalue()))
    return copies


@pytest.mark.timeout(60)
def test_damaged_checkpoints_fuzz(world: dict[str, str], tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    good = Path(world["clf"]).read_bytes()
    failures = []
    for name, data in _damaged_copies(good):
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        rc = main(["image", world["img"], "--detector", world["det"], "--classifier", str(path), "--device", "cpu"])
        err = capfd.readouterr().err
        lines = err.strip().splitlines()
        ok = rc == 2 and len(lines) == 1 and "Traceback" not in err and str(path) in lines[0] and "not a recognizer checkpoint" in lines[0]
        if not ok:
            failures.append((name, rc, err[-300:]))
    assert not failures


def test_checksum_refuses_a_changed_tensor(tmp_path: Path, tiny_checkpoints: dict[str, Path]) -> None:
    from recognizer.models import CheckpointError, load_checkpoint

    raw = torch.load(tiny_checkpoints["classifier"], weights_only=True)
    largest = max(raw["state_dict"], key=lambda k: raw["state_dict"][k].numel())
    raw["state_dict"][largest] = torch.rand_like(raw["state_dict"][largest])
    bad = tmp_path / "bad.pt"
    torch.save(raw, bad)
    with pytest.raises(CheckpointError, match="do not match the checksum") as info:
        load_checkpoint(bad)
    assert str(bad) in str(info.value)
    raw.pop("checksum")  # files written before checksums existed still load
    torch.save(raw, bad)
    load_checkpoint(bad)


# 6. Loading never downloads, whatever the config says.
@pytest.mark.timeout(60)
def test_loading_a_checkpoint_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    import torchvision

    from recognizer.models import build_detector, load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", build_detector(arch="mobilenet_v3_fpn"))
    raw = torch.load(path, weights_only=True)
    raw["config"]["pretrained_backbone"] = True
    raw.pop("checksum", None)  # an edited file: no checksum (a stale one would be refused)
    torch.save(raw, path)

    def offline(*args, **kwargs):
        raise AssertionError("tried to download weights while loading a checkpoint")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    ck = load_checkpoint(path, kind="detector")
    assert ck.config["pretrained_backbone"] is True  # what the file says is kept; only the build ignores it


# 9. Transparent PNGs are read on white, as viewers show them.
def test_transparent_png_is_read_on_white(tmp_path: Path) -> None:
    from recognizer.io.imageio import read_image_file as _read

    rgba = np.zeros((48, 64, 4), np.uint8)  # transparent black
    cv2.putText(rgba, "7", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30, 255), 4)
    path = tmp_path / "seven.png"
    cv2.imwrite(str(path), rgba)
    ys, xs = np.nonzero(rgba[..., 3] == 255)
    from recognizer.io.imageio import read_image_file
    from recognizer.io.sources import ImageFolderSource

    for read in (_read, read_image_file):
        image, why = read(path)
        assert why == "" and image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert (image[0, 0] == 255).all() and (image[-1, -1] == 255).all()  # background: white
        assert image[ys, xs].max() <= 30  # the digit: as dark as drawn
    with ImageFolderSource(tmp_path) as src:  # recognizer run on a folder reads the same way
        assert (src.read().image[0, 0] == 255).all()


def test_jpeg_completeness_check() -> None:
    from recognizer.io.imageio import _jpeg_complete

    img = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    for progressive in (0, 1):
        data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive])[1].tobytes()
        assert _jpeg_complete(data) and _jpeg_complete(data + b"appended by a camera \xff\xd8")
        assert not any(_jpeg_complete(data[:n]) for n in range(2, len(data) - 1, 97))
        assert not _jpeg_complete(data[:-2])


# 11. A video claiming an implausible frame rate is treated like one with none.
@pytest.mark.parametrize(
    "meta_fps, user_fps, expected, warned",
    [(0.25, None, 30.0, True), (0.5, 12.0, 12.0, False), (500.0, None, 30.0, True), (24.0, None, 24.0, False)],
)
def test_implausible_video_fps(tmp_path: Path, caplog: pytest.LogCaptureFixture, meta_fps, user_fps, expected, warned) -> None:
    from recognizer.io.sources import VideoFileSource

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), meta_fps, (32, 24))
    for _ in range(3):
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    with caplog.at_level(logging.WARNING):
        with VideoFileSource(path, fps=user_fps) as src:
            assert src.fps == expected
            frames = list(src)
    assert len(frames) == 3 and frames[-1].timestamp == pytest.approx(2 / expected, abs=1e-3)
    assert ("reports fps" in caplog.text) == warned
