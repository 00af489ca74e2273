"""The threaded pipeline with fake recognizers: ordering, dropping, batching, errors, no hangs."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from video_helpers import frames_of

from recognizer.io.sources import VideoFileSource
from recognizer.live.pipeline import Pipeline, PipelineConfig, PipelineError
from recognizer.synth.footage import ClipSpec, SyntheticCamera, make_bench_clip
from recognizer.tracking import Tracker
from recognizer.types import DigitBox, Reading

SMALL = ClipSpec(width=160, height=120, fps=30.0, numbers=("12",))


class FakeRecognizer:
    """Sleeps ``delay`` seconds per call; reads "42" in every frame; may fail on call ``fail_on``."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None, wrong_count: bool = False) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.wrong_count = wrong_count
        self.batches: list[int] = []
        self.thread_names: set[str] = set()

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        self.thread_names.add(threading.current_thread().name)
        if self.fail_on is not None and len(self.batches) >= self.fail_on:
            raise RuntimeError("injected inference failure")
        self.batches.append(len(images))
        time.sleep(self.delay)
        digits = (
            DigitBox((10.0, 10.0, 20.0, 30.0), 4, 0.9, 0.9),
            DigitBox((20.0, 10.0, 30.0, 30.0), 2, 0.9, 0.9),
        )
        out = [[Reading("42", 0.81, (10.0, 10.0, 30.0, 30.0), digits)] for _ in images]
        return out[:-1] if self.wrong_count else out


class FailingTracker(Tracker):
    def update(self, frame_index, timestamp, readings, frame_size=None):  # type: ignore[override]
        if frame_index >= 3:
            raise RuntimeError("injected tracking failure")
        return super().update(frame_index, timestamp, readings, frame_size)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_bench_clip(tmp_path / "clip.mp4", 37, SMALL)


def collect(pipe: Pipeline) -> list:
    with pipe:
        return list(frames_of(pipe))


@pytest.mark.timeout(30)
def test_file_never_drops_and_fills_batches(clip: Path) -> None:
    rec = FakeRecognizer(delay=0.01)
    with VideoFileSource(clip) as src:
        results = collect(Pipeline(src, rec, trackers=Tracker(), config=PipelineConfig(batch_size=4, queue_size=4)))
    assert [r.frame.index for r in results] == list(range(37))
    assert rec.batches == [4] * 9 + [1]
    ts = [r.frame.timestamp for r in results]
    assert ts[0] == pytest.approx(0.0) and ts[-1] == pytest.approx(36 / 30.0, abs=1e-3)
    assert all(r.update is not None and r.update.assignments for r in results)
    assert rec.thread_names == {"inference"}


@pytest.mark.timeout(30)
def test_file_back_pressure_with_slow_consumer(clip: Path) -> None:
    # The main thread is slower than everything else: the bounded queues must hold the
    # capture thread back instead of dropping or piling up frames.
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(), config=PipelineConfig(batch_size=2, queue_size=2, result_queue_size=2))
        seen = []
        with pipe:
            for r in frames_of(pipe):
                seen.append(r.frame.index)
                if len(seen) == 5:
                    time.sleep(0.3)
                    # Capture may be ahead by at most: the rest of the batch being shown (1),
                    # the result queue (2 batches of 2), the worker's batch (2), the frame
                    # queue (2) and the frame the capture thread holds (1).
                    assert pipe.stats.captured <= 5 + 1 + 4 + 2 + 2 + 1
    assert seen == list(range(37))
    assert pipe.stats.dropped == 0


@pytest.mark.timeout(30)
def test_fake_camera_faster_than_inference_drops_and_stays_fresh() -> None:
    cam = SyntheticCamera(ClipSpec(width=160, height=120, fps=100.0), frames=150)
    rec = FakeRecognizer(delay=0.04)
    with cam:
        pipe = Pipeline(cam, rec, trackers=Tracker(), config=PipelineConfig(batch_size=4))
        results = collect(pipe)
    assert pipe.live
    indices = [r.frame.index for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert pipe.stats.dropped > 0
    assert pipe.stats.captured == 150
    assert pipe.stats.dropped + pipe.stats.processed == pipe.stats.captured
    # Only the newest frame is kept, so a frame waits about one inference call at most
    # (generous bounds: the test machine is shared).
    lat = sorted(r.inferred_at - r.captured_at for r in results)
    assert lat[len(lat) // 2] < 0.04 * 2 + 0.03
    assert lat[-1] < 0.5
    assert max(rec.batches) == 1, "live mode hands over what is ready (one newest frame)"


@pytest.mark.timeout(30)
def test_fake_camera_slower_than_inference_drops_nothing() -> None:
    # 200 ms between frames, 2 ms of inference: every frame is taken before the next arrives
    # (200 ms, not less: the margin must hold while training jobs load both cores).
    cam = SyntheticCamera(ClipSpec(width=160, height=120, fps=5.0), frames=12)
    with cam:
        pipe = Pipeline(cam, FakeRecognizer(delay=0.002), config=PipelineConfig(batch_size=4))
        results = collect(pipe)
    assert [r.frame.index for r in results] == list(range(12))
    assert pipe.stats.dropped == 0


@pytest.mark.timeout(30)
def test_forced_live_file_is_played_in_real_time(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(), config=PipelineConfig(live=True, max_frames=15))
        t0 = time.monotonic()
        results = collect(pipe)
        elapsed = time.monotonic() - t0
    assert pipe.realtime
    assert len(results) == 15
    assert elapsed >= 14 / 30.0 * 0.9, "frames are paced at the clip's 30 fps"


@pytest.mark.timeout(30)
def test_max_frames_stops_file_run(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(), config=PipelineConfig(batch_size=3, max_frames=7))
        results = collect(pipe)
    assert [r.frame.index for r in results] == list(range(7))
    assert pipe.stats.captured <= 7


def _assert_fails_fast(pipe: Pipeline, stage: str, match: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(PipelineError, match=match) as info:
        with pipe:
            for _ in pipe:
                pass
    assert info.value.stage == stage
    assert time.monotonic() - t0 < 10
    assert not any(t.is_alive() for t in pipe._threads), "all threads ended"


@pytest.mark.timeout(30)
def test_capture_error_ends_the_run() -> None:
    cam = SyntheticCamera(ClipSpec(width=160, height=120, fps=60.0), fail_at=5)
    with cam:
        _assert_fails_fast(Pipeline(cam, FakeRecognizer()), "capture", "capture failed: synthetic camera failure")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("live", [False, True])
def test_inference_error_ends_the_run(clip: Path, live: bool) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(fail_on=2), config=PipelineConfig(batch_size=2, live=live, queue_size=2))
        _assert_fails_fast(pipe, "inference", "inference failed: injected inference failure")


@pytest.mark.timeout(30)
def test_wrong_result_count_is_an_error(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(wrong_count=True), config=PipelineConfig(batch_size=2))
        _assert_fails_fast(pipe, "inference", "returned 1 results for 2 images")


@pytest.mark.timeout(30)
def test_tracking_error_ends_the_run(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(), trackers=FailingTracker(), config=PipelineConfig(queue_size=2))
        _assert_fails_fast(pipe, "tracking", "injected tracking failure")


@pytest.mark.timeout(30)
def test_main_thread_error_stops_the_threads(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(delay=0.005), config=PipelineConfig(queue_size=2, result_queue_size=2))
        t0 = time.monotonic()
        with pytest.raises(ZeroDivisionError):
            with pipe:
                for r in frames_of(pipe):
                    if r.frame.index == 4:
                        1 / 0  # noqa: B018 - a failing render/sink on the main thread
        assert time.monotonic() - t0 < 10
        assert not any(t.is_alive() for t in pipe._threads)
        assert pipe.stats.captured < 37, "capture stopped instead of reading on"


@pytest.mark.timeout(30)
def test_stop_from_main_thread_ends_a_live_run_promptly() -> None:
    cam = SyntheticCamera(ClipSpec(width=160, height=120, fps=30.0))  # endless
    with cam:
        pipe = Pipeline(cam, FakeRecognizer(delay=0.01))
        n = 0
        t0 = time.monotonic()
        with pipe:
            for _ in pipe:
                n += 1
                if n == 5:
                    pipe.stop()
        assert time.monotonic() - t0 < 5
    assert 5 <= n <= 5 + pipe.config.result_queue_size
    assert not any(t.is_alive() for t in pipe._threads)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"max_frames": 0}, "max_frames=0"),
        ({"queue_size": 0}, "queue sizes"),
        ({"poll": 0}, "poll=0"),
    ],
)
def test_config_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineConfig(**kwargs)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("live", [False, True])
def test_two_workers_keep_frame_order(clip: Path, live: bool) -> None:
    class Jittery(FakeRecognizer):
        """Alternates slow and fast calls so the two workers finish out of order."""

        def recognize(self, images):
            self.delay = 0.03 if len(self.batches) % 2 == 0 else 0.0
            return super().recognize(images)

    rec = Jittery()
    # Live: a camera at 100 fps, so a new frame is waiting while one worker sleeps 30 ms.
    src = SyntheticCamera(ClipSpec(width=160, height=120, fps=100.0), frames=40) if live else VideoFileSource(clip)
    with src:
        cfg = PipelineConfig(batch_size=3, workers=2)
        pipe = Pipeline(src, rec, trackers=Tracker(), config=cfg)
        results = collect(pipe)
    assert pipe.live == live
    indices = [r.frame.index for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    if not live:
        assert indices == list(range(37))
    assert len(rec.thread_names) == 2, "both workers ran"
    ids = {r.update.assignments[0] for r in results}
    assert len(ids) == 1, "the tracker saw the frames in order: one track throughout"


@pytest.mark.timeout(30)
def test_two_workers_respect_max_frames(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(delay=0.01), config=PipelineConfig(batch_size=4, workers=2, max_frames=10))
        results = collect(pipe)
    assert [r.frame.index for r in results] == list(range(10))


@pytest.mark.gpu
@pytest.mark.timeout(300)
def test_cuda_resnet50_fpn_fp16_batches(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from recognizer.models import SmallCNN, build_detector
    from recognizer.models.engine import Recognizer, RecognizerConfig

    clip = make_bench_clip(tmp_path / "clip640.mp4", 48, ClipSpec())
    rec = Recognizer(build_detector(arch="resnet50_fpn"), SmallCNN(), device="cuda", config=RecognizerConfig(fp16=True))
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, rec, trackers=Tracker(), config=PipelineConfig(batch_size=8))
        results = collect(pipe)
    assert [r.frame.index for r in results] == list(range(48))
    assert max(r.batch_size for r in results) == 8


@pytest.mark.timeout(30)
def test_tracks_end_when_a_folder_of_videos_moves_to_the_next_file(tmp_path: Path) -> None:
    from recognizer.io.sources import open_source

    folder = tmp_path / "footage"
    folder.mkdir()
    make_bench_clip(folder / "a.avi", 6, SMALL, fourcc="MJPG")
    make_bench_clip(folder / "b.avi", 6, SMALL, fourcc="MJPG")
    with open_source(str(folder)) as src:
        results = collect(Pipeline(src, FakeRecognizer(), trackers=Tracker(), config=PipelineConfig(batch_size=4)))
    assert [Path(r.origin).name for r in results] == ["a.avi"] * 6 + ["b.avi"] * 6
    assert all(r.origin == r.frame.origin for r in results)
    first_ids = {r.update.assignments[0] for r in results[:6]}
    second_ids = {r.update.assignments[0] for r in results[6:]}
    assert len(first_ids) == 1 and len(second_ids) == 1 and first_ids != second_ids
    ended = results[6].update.ended
    assert [(e.track_id, e.first_frame, e.last_frame) for e in ended] == [(first_ids.pop(), 0, 5)]


class TimedFakeRecognizer(FakeRecognizer):
    """Also reports timings: each call's "detect" is the index of its batch's first frame."""

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        raise AssertionError("the pipeline calls recognize_timed when there is one")

    def recognize_timed(self, images: Sequence[np.ndarray]) -> tuple[list[list[Reading]], dict[str, float]]:
        first = float(images[0][0, 0, 0])  # the frame's index, painted into its first pixel
        time.sleep(0.02 if int(first) % 8 < 4 else 0.0)  # uneven, so the two workers interleave
        return FakeRecognizer.recognize(self, images), {"detect": first, "compose": 0.0}


class _IndexedFrames:
    """A file-like source of ``n`` frames whose first pixel holds the frame's index."""

    kind, live, name, fps, frame_count = "file", False, "indexed", 30.0, None

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0

    def read(self, should_stop=None):  # noqa: ANN001, ANN201
        from recognizer.types import Frame

        if self.i >= self.n:
            return None
        image = np.zeros((24, 32, 3), np.uint8)
        image[0, 0, 0] = self.i
        self.i += 1
        return Frame(index=self.i - 1, timestamp=(self.i - 1) / 30.0, image=image)


@pytest.mark.timeout(30)
def test_each_result_carries_its_own_batch_timings_with_two_workers() -> None:
    rec = TimedFakeRecognizer()
    pipe = Pipeline(_IndexedFrames(24), rec, config=PipelineConfig(batch_size=2, workers=2))  # type: ignore[arg-type]
    results = collect(pipe)
    assert [r.frame.index for r in results] == list(range(24))
    by_index = {r.frame.index: r for r in results}
    for r in results:
        first = int(r.timings["detect"])  # the first frame of its own batch, not another worker's
        assert first <= r.frame.index < first + r.batch_size and r.timings == {"detect": float(first), "compose": 0.0}
        assert by_index[first].timings == r.timings
        assert r.origin is None and r.frame.origin is None
    assert len(rec.thread_names) == 2


@pytest.mark.timeout(30)
def test_a_recognizer_without_recognize_timed_gives_empty_timings(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        results = collect(Pipeline(src, FakeRecognizer(), config=PipelineConfig(batch_size=4, max_frames=8)))
    assert len(results) == 8 and all(r.timings == {} for r in results)
