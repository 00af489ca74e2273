"""Sources: video files, image folders and globs, cameras, dispatch and frame-rate fallbacks."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognizer.io.sources import (
    DEFAULT_FPS,
    CameraSource,
    ImageFolderSource,
    SourceError,
    StreamSource,
    VideoFileSource,
    VideoFolderSource,
    open_source,
    sane_fps,
)
from recognizer.synth.footage import ClipSpec, SyntheticCamera, make_bench_clip, synthetic_frame

SPEC = ClipSpec(width=96, height=64, fps=25.0, numbers=("7",))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_bench_clip(tmp_path / "clip.avi", 12, SPEC, fourcc="MJPG")


def test_video_file_reads_every_frame_with_video_time(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        assert (src.kind, src.live, src.fps, src.frame_count) == ("file", False, 25.0, 12)
        frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert [f.timestamp for f in frames] == pytest.approx([i / 25.0 for i in range(12)], abs=1e-3)
    assert frames[3].image.shape == (64, 96, 3) and frames[3].image.dtype == np.uint8
    # The content is the clip's (MJPG is lossy: compare loosely).
    diff = np.abs(frames[3].image.astype(int) - synthetic_frame(3, SPEC).astype(int)).mean()
    assert diff < 12


def test_user_fps_overrides_metadata(clip: Path) -> None:
    with VideoFileSource(clip, fps=10.0) as src:
        frames = list(src)
    assert src.fps == 10.0
    assert frames[5].timestamp == pytest.approx(0.5)


@pytest.mark.parametrize(
    "value, expected",
    [(25.0, 25.0), (0.0, DEFAULT_FPS), (float("nan"), DEFAULT_FPS), (-1, DEFAULT_FPS), (float("inf"), DEFAULT_FPS),
     (90000.0, DEFAULT_FPS), (None, DEFAULT_FPS), ("x", DEFAULT_FPS), (29.97, 29.97)],
)
def test_sane_fps(value, expected) -> None:
    assert sane_fps(value) == pytest.approx(expected)


def test_missing_and_damaged_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4").open()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match=r"cannot open video file '.*bad.mp4'"):
        VideoFileSource(bad).open()


def _write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for k, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((20, 30, 3), 10 * (k + 1), np.uint8))


def test_image_folder_natural_order_skips_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    _write_images(folder, ["f1.png", "f2.png", "f10.png"])
    (folder / "f3.png").write_bytes(b"broken")
    (folder / "notes.txt").write_text("ignored")
    with ImageFolderSource(folder, fps=5) as src:
        assert src.frame_count == 4
        frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30], "f1, f2, f10 in natural order"
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.2, 0.4])
    assert [f.origin for f in frames] == [None] * 3, "one scene: tracks run on across the images"
    assert src.skipped == 1


def test_image_glob_and_single_image(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a.png", "b.jpg", "c.png"])
    with open_source(str(tmp_path / "*.png")) as src:
        assert isinstance(src, ImageFolderSource)
        assert len(list(src)) == 2
    with open_source(str(tmp_path / "b.jpg")) as src:
        assert len(list(src)) == 1


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="matches no images"):
        ImageFolderSource(tmp_path).open()
    with pytest.raises(SourceError, match="pattern .* matches no images"):
        ImageFolderSource(str(tmp_path / "*.jpg")).open()


@pytest.mark.parametrize(
    "spec, kind",
    [
        (0, CameraSource),
        ("1", CameraSource),
        ("http://127.0.0.1:8080/stream.mjpg", StreamSource),
        ("rtsp://camera.local/live", StreamSource),
        ("CLIP", VideoFileSource),
        ("DIR", VideoFolderSource),  # tmp_path holds clip.avi
        ("DIR/*.png", ImageFolderSource),
        ("MISSING", SourceError),
        ("MISSING.mp4", SourceError),
    ],
)
def test_open_source_dispatch(tmp_path: Path, clip: Path, spec, kind) -> None:
    if isinstance(spec, str):
        spec = spec.replace("CLIP", str(clip)).replace("DIR", str(tmp_path)).replace("MISSING", str(tmp_path / "missing"))
    if kind is SourceError:
        with pytest.raises(SourceError, match="not found: expected a camera index"):
            open_source(spec)
    else:
        assert isinstance(open_source(spec), kind)


def test_bad_fps_is_refused() -> None:
    with pytest.raises(SourceError, match="--fps 0 is not a frame rate"):
        open_source(0, fps=0)


@pytest.mark.timeout(30)
def test_camera_that_cannot_open_gives_one_line_error() -> None:
    src = CameraSource(97)
    with pytest.raises(SourceError) as info:
        src.open()
    message = str(info.value)
    assert message.startswith("cannot open camera 97") and "\n" not in message
    src.close()  # closing a never-opened camera is harmless


@pytest.mark.timeout(30)
def test_synthetic_camera_delivers_in_real_time() -> None:
    cam = SyntheticCamera(ClipSpec(width=64, height=48, fps=50.0), frames=10)
    with cam:
        frames = list(cam)
    assert [f.index for f in frames] == list(range(10))
    span = frames[-1].timestamp - frames[0].timestamp
    assert 9 / 50.0 - 0.01 <= span < 9 / 50.0 + 0.3, "paced at 50 fps (late frames allowed on a busy machine)"
    assert all(math.isfinite(f.timestamp) for f in frames)


def test_folder_of_videos_plays_them_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "footage"
    folder.mkdir()
    make_bench_clip(folder / "drive2.avi", 5, SPEC, fourcc="MJPG")
    make_bench_clip(folder / "drive10.avi", 4, SPEC, fourcc="MJPG")
    (folder / "drive3.mp4").write_bytes(b"not a video")
    src = open_source(str(folder))
    assert isinstance(src, VideoFolderSource) and not src.live
    seen = []
    with src:
        assert src.fps == 25.0
        while (f := src.read()) is not None:
            seen.append((f.index, f.timestamp, Path(f.origin).name))
    assert [s[0] for s in seen] == list(range(9))
    assert [s[2] for s in seen] == ["drive2.avi"] * 5 + ["drive10.avi"] * 4, "natural order, broken file skipped"
    assert [s[1] for s in seen] == pytest.approx([i / 25.0 for i in range(9)], abs=1e-3), "time runs on across files"
    assert src.skipped == 1


def test_glob_of_videos_and_mixed_folder(tmp_path: Path) -> None:
    make_bench_clip(tmp_path / "a.avi", 3, SPEC, fourcc="MJPG")
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match=r"holds both images \(1\) and videos \(1\); pass a glob"):
        open_source(str(tmp_path))
    with open_source(str(tmp_path / "*.avi")) as src:
        assert isinstance(src, VideoFolderSource) and src.frame_count == 3
        assert len(list(src)) == 3
    with open_source(str(tmp_path / "*.png")) as src:
        assert isinstance(src, ImageFolderSource)
