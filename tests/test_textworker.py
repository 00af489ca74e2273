"""The text reader in video (recognizer.live.textworker): the read budget on a fake clock, the bounded
request queue, reads entering a real Tracker's vote (Tracker.text_vote), the low-rate text
detector, shutdown with a slow reader, and the Pipeline that drives a TextChecker."""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from video_helpers import frames_of

from recognizer.io.sources import VideoFileSource
from recognizer.live.pipeline import Pipeline, PipelineConfig
from recognizer.live.textworker import TextCheckConfig, TextChecker, make_checker, video_mode
from recognizer.models.textreader import TextRead
from recognizer.synth.footage import ClipSpec, make_bench_clip
from recognizer.tracking import TrackConfig, Tracker
from recognizer.types import DigitBox, Reading

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeReader:
    """Reads ``answer(crop)``; records each crop's largest pixel value (the tests paint each track
    its own grey); may wait on ``gate`` or raise ``fail`` times; ``detect`` returns ``lines``."""

    def __init__(self, answer=lambda crop: TextRead("221", 0.99), *, gate: threading.Event | None = None, fail: int = 0, lines=()) -> None:
        self.answer, self.gate, self.fail, self.lines = answer, gate, fail, lines
        self.seen: list[int] = []
        self.calls = 0
        self.entered = threading.Event()
        self.detected: list[float] = []
        self.lock = threading.Lock()

    def read(self, crops):
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("injected reader failure")
        with self.lock:
            self.seen.extend(int(c.max()) if c.size else -1 for c in crops)
        return [self.answer(c) for c in crops]

    def read_regions(self, image, boxes, *, pad_x=0.0, pad_y=0.0):
        return self.read([image[int(b[1]):int(b[3]), int(b[0]):int(b[2])] for b in boxes])

    def detect(self, image, *, max_side=1600):
        self.detected.append(float(image.mean()))
        return np.asarray(self.lines, np.float32).reshape(-1, 4), np.ones(len(self.lines), np.float32)


def track(track_id: int, *, seen: bool = True, confirmed: bool = False, support: float = 0.5, box=None) -> SimpleNamespace:
    box = box or (20.0 + 100 * (track_id - 1), 40.0, 70.0 + 100 * (track_id - 1), 60.0)
    return SimpleNamespace(track_id=track_id, box=box, seen=seen, confirmed=confirmed, support=support)


def frame_image(tracks) -> np.ndarray:
    """A dark frame with each track's box painted grey 40 x its id (so a crop tells its track)."""
    image = np.zeros((100, 500, 3), np.uint8)
    for t in tracks:
        x1, y1, x2, y2 = (int(v) for v in t.box)
        image[y1:y2, x1:x2] = 40 * t.track_id
    return image


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.002)


def drive(checker: TextChecker, reader: FakeReader, clock: FakeClock, steps, tracks_at) -> list[int]:
    """Submit one update per clock step; wait until the reader had each queued crop; the tracks
    read at each step (by their grey)."""
    queued_total, per_step = 0, []
    for t in steps:
        clock.t = t
        tracks = tracks_at(t)
        before = len(reader.seen)
        n = checker.submit(frame_image(tracks), SimpleNamespace(tracks=tracks))
        assert n <= 1, "the bucket holds one read"
        queued_total += n
        wait_for(lambda total=queued_total: len(reader.seen) == total)
        per_step.append([v // 40 for v in reader.seen[before:]])
    return per_step


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "kwargs, ok",
    [
        ({}, True),
        ({"reads_per_second": 1000.0, "track_interval": 0.0, "max_reads_per_track": 1, "queue_size": 1}, True),
        ({"detect_interval": 0.5, "detect_max_side": 64, "new_score": 1.0}, True),
        ({"reads_per_second": 0.0}, False),
        ({"reads_per_second": -1.0}, False),
        ({"reads_per_second": 1000.5}, False),
        ({"reads_per_second": math.nan}, False),
        ({"track_interval": -0.1}, False),
        ({"max_reads_per_track": 0}, False),
        ({"queue_size": 0}, False),
        ({"detect_interval": -1.0}, False),
        ({"detect_max_side": 63}, False),
        ({"detect_max_side": 9000}, False),
        ({"new_score": 1.5}, False),
    ],
)
def test_text_check_config(kwargs, ok: bool) -> None:
    if ok:
        TextCheckConfig(**kwargs)
    else:
        with pytest.raises(ValueError):
            TextCheckConfig(**kwargs)


def test_video_mode_and_make_checker() -> None:
    assert video_mode(None, live=True) == "fast" and video_mode(None, live=False) == "accurate"
    assert video_mode("digits", live=False) == "digits"
    reader = FakeReader()
    assert make_checker("digits", reader) is None and make_checker("fast", None) is None
    fast, accurate = make_checker("fast", reader), make_checker("accurate", reader, detect_interval=2.0)
    try:
        assert fast.config.detect_interval == 0.0 and accurate.config.detect_interval == 2.0
    finally:
        fast.close(1.0)
        accurate.close(1.0)


# ------------------------------------------------------------------------------ the budget


def test_reads_per_second_is_respected() -> None:
    clock, reader = FakeClock(), FakeReader()
    cfg = TextCheckConfig(reads_per_second=2.0, track_interval=0.0, max_reads_per_track=1000, queue_size=100)
    checker = TextChecker(reader, cfg, clock=clock)
    try:
        tracks = [track(1), track(2), track(3)]
        steps = [k * 0.125 for k in range(41)]  # 5 s at 8 updates a second
        per_step = drive(checker, reader, clock, steps, lambda t: tracks)
    finally:
        checker.close(2.0)
    reads = [t for t, got in zip(steps, per_step) if got]
    assert len(reads) == 1 + int(2.0 * 5.0)  # the first read at once, then one per 1/rate seconds
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(reads, reads[1:]))
    assert checker.stats.requested == len(reads) and checker.stats.dropped == 0


def test_track_interval_max_reads_and_unseen_tracks() -> None:
    clock, reader = FakeClock(), FakeReader()
    cfg = TextCheckConfig(reads_per_second=1000.0, track_interval=1.0, max_reads_per_track=3, queue_size=100)
    checker = TextChecker(reader, cfg, clock=clock)
    try:
        steps = [k * 0.25 for k in range(25)]  # 6 s
        per_step = drive(checker, reader, clock, steps, lambda t: [track(1), track(2, seen=False)])
    finally:
        checker.close(2.0)
    read_at = [t for t, got in zip(steps, per_step) if got]
    assert read_at == [0.0, 1.0, 2.0], "once per track_interval, at most max_reads_per_track times"
    assert all(got in ([], [1]) for got in per_step), "a track not seen in this frame is never read"


@pytest.mark.parametrize(
    "confirmed, support, reads",
    [(True, 0.9, 1), (True, 0.8, 1), (True, 0.79, 4), (False, 1.0, 4)],
)
def test_only_uncertain_tracks_are_read_again(confirmed: bool, support: float, reads: int) -> None:
    clock, reader = FakeClock(), FakeReader()
    cfg = TextCheckConfig(reads_per_second=1000.0, track_interval=0.0, max_reads_per_track=4, uncertain_share=0.8, queue_size=100)
    checker = TextChecker(reader, cfg, clock=clock)
    try:
        per_step = drive(checker, reader, clock, [k * 0.1 for k in range(8)], lambda t: [track(1, confirmed=confirmed, support=support)])
    finally:
        checker.close(2.0)
    assert sum(len(got) for got in per_step) == reads


def test_a_new_track_is_read_before_old_uncertain_ones() -> None:
    clock, reader = FakeClock(), FakeReader()
    checker = TextChecker(reader, TextCheckConfig(queue_size=100), clock=clock)  # the default budget
    try:
        steps = [k / 30 for k in range(91)]  # 3 s at 30 frames a second; track 3 appears at 1 s
        per_step = drive(checker, reader, clock, steps, lambda t: [track(1), track(2)] + ([track(3)] if t >= 1.0 - 1e-9 else []))
    finally:
        checker.close(2.0)
    first = next((t for t, got in zip(steps, per_step) if 3 in got), math.inf)
    # "when the track starts": the next read of the budget (4 a second, on whole frames) is the new track's
    assert first <= 1.3


def test_a_full_queue_drops_and_submit_never_waits() -> None:
    clock, gate = FakeClock(), threading.Event()
    reader = FakeReader(gate=gate)
    checker = TextChecker(reader, TextCheckConfig(reads_per_second=1000.0, queue_size=1), clock=clock)
    try:
        assert checker.submit(frame_image([track(1)]), SimpleNamespace(tracks=[track(1)])) == 1
        assert reader.entered.wait(5), "the worker took the first request"
        clock.t = 1.0
        assert checker.submit(frame_image([track(2)]), SimpleNamespace(tracks=[track(2)])) == 1  # waits in the queue
        clock.t = 2.0
        t0 = time.monotonic()
        assert checker.submit(frame_image([track(3)]), SimpleNamespace(tracks=[track(3)])) == 0
        assert time.monotonic() - t0 < 0.5
        assert (checker.stats.requested, checker.stats.dropped) == (3, 1)
        # the dropped track was not counted as read: it is asked for again once there is room
        gate.set()
        wait_for(lambda: len(reader.seen) == 2)
        clock.t = 3.0
        assert checker.submit(frame_image([track(3)]), SimpleNamespace(tracks=[track(3)])) == 1
        wait_for(lambda: len(reader.seen) == 3)
        assert sorted(v // 40 for v in reader.seen) == [1, 2, 3]
    finally:
        gate.set()
        checker.close(2.0)


# ------------------------------------------------------------------------------ reads in the vote


def digit_reading(text: str, conf: float, box=(200.0, 40.0, 260.0, 70.0)) -> Reading:
    w = (box[2] - box[0]) / len(text)
    digits = tuple(DigitBox((box[0] + i * w, box[1], box[0] + (i + 1) * w, box[3]), int(ch), 1.0, conf) for i, ch in enumerate(text))
    return Reading(text, conf, box, digits)


def run_frames(answer, texts, *, checker_on: bool = True, config: TrackConfig | None = None):
    """Frames reading ``texts`` (one per frame) through a real Tracker with a TextChecker whose
    reader answers ``answer``; the first read is applied before the second frame. Returns the
    updates."""
    reader = FakeReader(lambda crop: answer)
    tracker = Tracker(config)
    checker = TextChecker(reader, TextCheckConfig(reads_per_second=1000.0, track_interval=0.0)) if checker_on else None
    image = np.full((120, 400, 3), 90, np.uint8)
    updates = []
    try:
        for i, text in enumerate(texts):
            if checker is not None:
                checker.apply(tracker)
            update = tracker.update(i, i / 15, [digit_reading(text, 0.9 if len(texts) > 3 else 0.5)], (400, 120))
            updates.append(update)
            if checker is not None:
                checker.submit(image, update, i / 15)
                if i == 0:
                    wait_for(lambda: not checker._results.empty())  # the first read came back
                    checker.apply(tracker)
    finally:
        if checker is not None:
            checker.close(2.0)
    return updates


def confirmed_texts(updates) -> list[str]:
    return [e.text for u in updates for e in u.confirmed]


def test_letters_block_confirmation_through_a_real_tracker() -> None:
    frames = ["221"] * 10
    assert confirmed_texts(run_frames(TextRead("221", 0.99), frames)) == ["221"]  # the control
    assert confirmed_texts(run_frames(TextRead("IG", 0.99), frames)) == ["221"]  # digit-like letters: no veto
    blocked = run_frames(TextRead("SMITH", 0.95), frames)
    assert confirmed_texts(blocked) == []
    assert not any(t.confirmed for u in blocked for t in u.tracks)
    assert blocked[-1].tracks[0].stable_text == "221"  # it still reads the digits, it only never confirms


def test_a_number_read_changes_an_uncertain_tracks_stable_text() -> None:
    alone = run_frames(None, ["227", "227"], checker_on=False)
    assert alone[-1].tracks[0].stable_text == "227"
    fixed = run_frames(TextRead("221", 0.99), ["227", "227"])
    assert fixed[-1].tracks[0].stable_text == "221"


def test_text_vote_directly() -> None:
    tracker = Tracker()
    update = tracker.update(0, 0.0, [digit_reading("08", 0.7)])
    tid = update.tracks[0].track_id
    assert tracker.text_vote(tid + 100, "108", 0.99) is False  # no such track (ended since)
    assert tracker.text_vote(tid, "108", 0.99) is True  # a missed digit: another length wins
    assert tracker.update(1, 0.1, []).tracks[0].stable_text == "108"
    assert tracker.text_vote(tid, "", 0.9, letters=True) is True
    assert tracker.text_vote(tid, "12a", 0.9) is True  # not digits: counted as a read, no vote
    assert tracker.update(2, 0.2, []).tracks[0].stable_text == "108"
    # a text read weighs text_weight x its score: with weight 0 it changes nothing
    still = Tracker(TrackConfig(text_weight=0.0))
    tid = still.update(0, 0.0, [digit_reading("227", 0.5)]).tracks[0].track_id
    still.text_vote(tid, "221", 1.0)
    assert still.update(1, 0.1, []).tracks[0].stable_text == "227"


@pytest.mark.parametrize("scores, blocked", [([0.6], False), ([0.7], True), ([0.4, 0.4], True), ([0.3, 0.3], False)])
def test_letters_block_threshold_sums_scores(scores, blocked: bool) -> None:
    tracker = Tracker(TrackConfig(letters_block=0.7))
    events = []
    for i in range(6):
        update = tracker.update(i, i / 15, [digit_reading("47", 0.9)])
        if i == 0:
            for s in scores:
                tracker.text_vote(update.tracks[0].track_id, "", s, letters=True)
        events += update.confirmed
    assert (events == []) is blocked


# ------------------------------------------------------------------------------ failures, detector, shutdown


def test_a_failing_reader_warns_once_and_the_worker_goes_on(caplog) -> None:
    clock, reader = FakeClock(), FakeReader(fail=2)
    checker = TextChecker(reader, TextCheckConfig(reads_per_second=1000.0, track_interval=0.0, queue_size=1), clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="recognizer.live.textworker"):
            for k in range(4):
                clock.t = float(k)
                tracks = [track(1)]
                assert checker.submit(frame_image(tracks), SimpleNamespace(tracks=tracks)) == 1
                wait_for(lambda k=k: reader.calls == k + 1)
            wait_for(lambda: checker.stats.reads == 2)
    finally:
        checker.close(2.0)
    assert len([r for r in caplog.records if "text reader failed" in r.getMessage()]) == 1
    assert not checker._thread.is_alive()


def test_the_text_detector_finds_numbers_away_from_tracks_at_its_interval() -> None:
    far, near = (300.0, 20.0, 380.0, 60.0), (25.0, 42.0, 65.0, 58.0)
    reader = FakeReader(lambda crop: TextRead("65", 0.95 if crop.shape[1] > 60 else 0.5), lines=[far, near])
    checker = TextChecker(reader, TextCheckConfig(detect_interval=1.0, queue_size=4))
    try:
        tracks = [track(1, seen=False)]  # box (20, 40, 70, 60): the near line is this track's, not a new number
        for ts, detections in ((0.0, 1), (0.5, 1), (0.99, 1), (1.0, 2), (1.5, 2)):
            image = frame_image(tracks)
            image[20:60, 300:380] = 200
            checker.submit(image, SimpleNamespace(tracks=tracks), ts)
            image[:] = 0  # the detector works on a copy of the frame it was given
            wait_for(lambda: checker.stats.detections == detections and checker.stats.found == detections)  # noqa: B023
        found = checker.found()
        assert checker.found() == []
    finally:
        checker.close(2.0)
    assert len(reader.detected) == 2 and min(reader.detected) > 0 and reader.seen == [200, 200]
    assert [(r.text, r.source, r.box) for r in found] == [("65", "text", far)] * 2


def test_close_returns_promptly_with_a_slow_reader() -> None:
    gate = threading.Event()
    reader = FakeReader(gate=gate)
    checker = TextChecker(reader, TextCheckConfig(queue_size=2))
    try:
        checker.submit(frame_image([track(1)]), SimpleNamespace(tracks=[track(1)]))
        assert reader.entered.wait(5)
        t0 = time.monotonic()
        checker.close(timeout=0.5)
        assert time.monotonic() - t0 < 2.0
    finally:
        gate.set()
    checker._thread.join(5)
    assert not checker._thread.is_alive()
    idle = TextChecker(FakeReader())
    t0 = time.monotonic()
    idle.close()
    assert time.monotonic() - t0 < 1.0 and not idle._thread.is_alive()


# ------------------------------------------------------------------------------ the pipeline


SMALL = ClipSpec(width=160, height=120, fps=30.0, numbers=("12",))


class FakeRecognizer:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def recognize(self, images):
        time.sleep(self.delay)
        digits = (DigitBox((10.0, 10.0, 20.0, 30.0), 4, 0.9, 0.9), DigitBox((20.0, 10.0, 30.0, 30.0), 2, 0.9, 0.9))
        return [[Reading("42", 0.81, (10.0, 10.0, 30.0, 30.0), digits)] for _ in images]


class SpyChecker:
    def __init__(self, log: list) -> None:
        self.log = log
        self.closed = 0

    def apply(self, tracker) -> int:
        self.log.append("apply")
        return 0

    def found(self) -> list:
        return []

    def submit(self, image, update, timestamp=None) -> int:
        self.log.append(("submit", image.shape, update.frame_index, timestamp))
        return 0

    def close(self, timeout: float = 5.0) -> None:
        self.closed += 1


class LoggingTracker(Tracker):
    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def update(self, frame_index, timestamp, readings, frame_size=None):  # type: ignore[override]
        self.log.append(("update", frame_index))
        return super().update(frame_index, timestamp, readings, frame_size)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_bench_clip(tmp_path / "clip.mp4", 12, SMALL)


def test_pipeline_applies_before_and_submits_after_each_update_and_closes_the_checker(clip: Path) -> None:
    log: list = []
    spy = SpyChecker(log)
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(), trackers=LoggingTracker(log), config=PipelineConfig(batch_size=4), text_checkers=spy)
        with pipe:
            results = list(frames_of(pipe))
    assert len(results) == 12
    expected = []
    for r in results:
        expected += ["apply", ("update", r.frame.index), ("submit", (120, 160, 3), r.frame.index, r.frame.timestamp)]
    assert log == expected
    assert spy.closed >= 1


def test_pipeline_with_a_real_checker_reads_tracks_and_stops_its_worker(clip: Path) -> None:
    reader = FakeReader(lambda crop: TextRead("SMITH", 0.95), lines=[(100.0, 60.0, 150.0, 100.0)])
    checker = TextChecker(reader, TextCheckConfig(detect_interval=0.1))
    with VideoFileSource(clip) as src:
        pipe = Pipeline(src, FakeRecognizer(delay=0.1), trackers=Tracker(), config=PipelineConfig(batch_size=2), text_checkers=checker)
        with pipe:
            results = list(frames_of(pipe))
    assert [r.frame.index for r in results] == list(range(12))
    assert not checker._thread.is_alive(), "Pipeline.close closed the checker"
    assert checker.stats.reads >= 1 and checker.stats.letters >= 1 and checker.stats.detections >= 1
    # the track of "42" had letters read on it early: it is never confirmed
    assert not any(e.text == "42" for r in results for e in r.update.confirmed)


def test_run_demo_reads_tracks_with_a_text_reader(tmp_path: Path) -> None:
    from recognizer.apps.demo import run_demo
    from recognizer.synth.street import ClipConfig

    reader = FakeReader(lambda crop: TextRead("42", 0.99))
    run = run_demo(tmp_path / "demo", FakeRecognizer(), ClipConfig(seed=0, frames=12), text_reader=reader)
    assert reader.calls >= 1 and len(reader.seen) >= 1  # the track of "42" was read beside the digit models
    assert run.log_path.is_file() and run.report is not None
