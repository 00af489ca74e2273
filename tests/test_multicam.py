"""Several sources at once through one batched model: synthetic cameras at different rates,
files and an MJPEG stream on 127.0.0.1 (:class:`recognizer.live.pipeline.Pipeline`). The command line
(``recognizer run SOURCE SOURCE ...``), its outputs and the tiled window: test_multicam_cli.py."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from test_stream import MjpegServer

from recognizer.cli import build_parser
from recognizer.io.names import default_name, name_sources, per_source_path
from recognizer.io.sources import ReconnectPolicy, open_source
from recognizer.live.pipeline import Pipeline, PipelineConfig
from recognizer.synth.footage import ClipSpec, SyntheticCamera
from recognizer.tracking import Tracker
from recognizer.types import DigitBox, Reading, SourceEnded


class Spy:
    """A recognizer that records each call's image shapes (one shape per source in these
    tests), sleeps ``delay`` and reads "42" in every frame."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[list[tuple[int, ...]]] = []
        self.lock = threading.Lock()

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        with self.lock:
            self.calls.append([im.shape for im in images])
        time.sleep(self.delay)
        d = (DigitBox((10.0, 10.0, 20.0, 30.0), 4, 0.9, 0.9), DigitBox((20.0, 10.0, 30.0, 30.0), 2, 0.9, 0.9))
        return [[Reading("42", 0.81, (10.0, 10.0, 30.0, 30.0), d)] for _ in images]


def camera(width: int, fps: float, frames: int | None = None, **kw) -> SyntheticCamera:
    cam = SyntheticCamera(ClipSpec(width=width, height=width * 3 // 4, fps=fps, numbers=("12",)), frames=frames, **kw)
    cam.open()
    return cam


def run(pipe: Pipeline, on_result=None) -> tuple[dict[str, list], list[SourceEnded]]:
    got: dict[str, list] = {name: [] for name in pipe.names}
    ended: list[SourceEnded] = []
    with pipe:
        for item in pipe:
            if isinstance(item, SourceEnded):
                ended.append(item)
                continue
            got[item.source].append(item)
            if on_result is not None:
                on_result(item, got)
    return got, ended


# -- the multiplexer ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_every_source_gets_its_results_and_batches_mix_sources() -> None:
    # Three cameras at 30, 15 and 10 fps, each with its own frame size (so the spy can tell
    # them apart), 2 s each; one worker, inference slower than the fastest camera.
    cams = [camera(160, 30.0, 60), camera(176, 15.0, 30), camera(192, 10.0, 20)]
    spy = Spy(delay=0.03)
    pipe = Pipeline(cams, spy, names=["a", "b", "c"], trackers=[Tracker() for _ in cams],
                         config=PipelineConfig(batch_size=4, workers=1))
    got, ended = run(pipe)
    assert sorted(e.name for e in ended) == ["a", "b", "c"] and all(e.error is None for e in ended)
    for name, cam in zip("abc", cams):
        indices = [r.frame.index for r in got[name]]
        assert indices == sorted(indices) and len(set(indices)) == len(indices), "each source's frames in its order"
        assert all(r.source == name and r.frame.image.shape[1] == cam.spec.width for r in got[name])
        stats = pipe.source_stats("abc".index(name))
        assert stats.captured == cam.max_frames and stats.processed == len(indices)
        assert stats.processed + stats.dropped == stats.captured, "live: every frame is processed or counted as dropped"
        assert len(indices) >= 0.5 * cam.max_frames
    # Each source has its own tracker: one track per source, the same id in each (a number
    # read by one camera is not merged into another camera's track).
    ids = {name: {r.update.assignments[0] for r in got[name]} for name in "abc"}
    assert all(len(v) == 1 for v in ids.values())
    assert ids["a"] == ids["b"] == ids["c"], "separate trackers number their tracks alike"
    frames = sum(len(v) for v in got.values())
    assert len(spy.calls) < frames, "one call serves several sources"
    mixed = [c for c in spy.calls if len({s[1] for s in c}) >= 2]
    assert len(mixed) >= 5, f"batches mixing sources: {spy.calls}"
    assert all(len(c) == len({s[1] for s in c}) for c in spy.calls), "at most one frame per live source per batch"
    assert pipe.stats.batches == len(spy.calls)


@pytest.mark.timeout(60)
def test_round_robin_no_source_starves_another() -> None:
    # One frame per call, three 30 fps cameras, a call takes as long as a frame period: every
    # camera has a frame ready at every call, and each gets its turn.
    cams = [camera(160, 30.0, 60), camera(176, 30.0, 60), camera(192, 30.0, 60)]
    spy = Spy(delay=1 / 30)
    got, _ = run(Pipeline(cams, spy, names=["a", "b", "c"], config=PipelineConfig(batch_size=1, workers=1)))
    counts = [len(got[n]) for n in "abc"]
    assert min(counts) >= 0.25 * sum(counts), counts
    # Files fill batches, round robin: two 40-frame files stay level all along.
    clips = [_indexed(40, 32), _indexed(40, 48)]
    order: list[str] = []
    got, ended = run(Pipeline(clips, Spy(), names=["x", "y"], config=PipelineConfig(batch_size=3, workers=1)),
                     on_result=lambda r, g: order.append(r.source))
    assert [len(got["x"]), len(got["y"])] == [40, 40] and [r.frame.index for r in got["x"]] == list(range(40))
    lead = max(abs(order[:k].count("x") - order[:k].count("y")) for k in range(len(order)))
    assert lead <= 4, order


class _Indexed:
    """A file-like source of ``n`` frames of width ``w`` (never drops)."""

    kind, live, fps, frame_count, reconnects = "file", False, 30.0, None, 0

    def __init__(self, n: int, w: int) -> None:
        self.n, self.w, self.i, self.name = n, w, 0, f"indexed{w}"

    def read(self, should_stop=None):  # noqa: ANN001, ANN201
        from recognizer.types import Frame

        if self.i >= self.n:
            return None
        self.i += 1
        return Frame(index=self.i - 1, timestamp=(self.i - 1) / 30.0, image=np.zeros((24, self.w, 3), np.uint8))

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name}


def _indexed(n: int, w: int) -> _Indexed:
    return _Indexed(n, w)


class StalledCamera(SyntheticCamera):
    """Delivers ``frames_before`` frames, then blocks (like a camera whose driver hangs) until
    the run stops."""

    def __init__(self, frames_before: int) -> None:
        super().__init__(ClipSpec(width=200, height=150, fps=30.0))
        self.frames_before = frames_before

    def read(self, should_stop=None):  # noqa: ANN001, ANN201
        if self._index >= self.frames_before:
            while not (should_stop and should_stop()):
                time.sleep(0.01)
            return None
        return super().read(should_stop)


@pytest.mark.timeout(60)
def test_a_slow_or_stalled_source_does_not_hold_up_a_fast_one() -> None:
    fast = camera(160, 30.0, 90)  # 3 s
    slow = camera(176, 2.0)  # a frame every 500 ms
    stalled = StalledCamera(frames_before=3)
    stalled.open()
    spy = Spy(delay=0.005)
    pipe = Pipeline([fast, slow, stalled], spy, names=["fast", "slow", "stalled"],
                         config=PipelineConfig(batch_size=4, workers=1))

    def stop_when_fast_is_done(result, got) -> None:
        if len(got["fast"]) + pipe.source_stats(0).dropped >= 90:
            pipe.stop()

    t0 = time.monotonic()
    got, _ = run(pipe, on_result=stop_when_fast_is_done)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0 + 1.5, "the fast camera's 3 s were not stretched"
    assert len(got["fast"]) >= 0.85 * 90, (len(got["fast"]), pipe.source_stats(0).dropped)
    assert 3 <= len(got["slow"]) <= 8
    assert pipe.source_stats(2).captured == 3 and 1 <= len(got["stalled"]) <= 3, "the stalled camera's frames came through"
    lat = sorted(r.inferred_at - r.captured_at for r in got["fast"])
    assert lat[len(lat) // 2] < 0.1, "the fast camera's frames never wait for the others"


@pytest.mark.timeout(90)
def test_a_stream_cut_and_restored_reconnects_while_the_others_go_on() -> None:
    server = MjpegServer().start()
    try:
        stream = open_source(server.url, reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=0.4, timeout=20))
        stream.open()
        cam = camera(176, 20.0)
        pipe = Pipeline([stream, cam], Spy(delay=0.005), names=["stream", "cam"],
                             config=PipelineConfig(batch_size=4, max_frames=80))
        cut: dict[str, float] = {}

        def cut_the_stream(result, got) -> None:
            if len(got["stream"]) == 15 and "at" not in cut:
                cut["at"] = time.monotonic()
                server.stop()
                threading.Timer(1.0, lambda: (cut.setdefault("back", time.monotonic()), server.start())).start()

        got, ended = run(pipe, on_result=cut_the_stream)
        stream.close()
    finally:
        server.stop()
    assert {e.name: e.error for e in ended} == {"stream": None, "cam": None}
    assert stream.reconnects >= 1
    assert len(got["stream"]) == 80 and len(got["cam"]) == 80
    during = [r for r in got["cam"] if cut["at"] < r.captured_at < cut["back"]]
    assert len(during) >= 10, "the camera kept going while the stream was away"
    indices = [r.frame.index for r in got["stream"]]
    assert indices == sorted(indices), "the stream's index keeps counting across the reconnect"


@pytest.mark.timeout(60)
def test_a_source_failing_for_good_ends_alone() -> None:
    good = camera(160, 30.0, 45)
    bad = camera(176, 30.0, fail_at=10)
    got, ended = run(Pipeline([bad, good], Spy(delay=0.005), names=["bad", "good"], config=PipelineConfig(batch_size=4)))
    assert [(e.name, e.error) for e in ended] == [("bad", "synthetic camera failure at frame 10"), ("good", None)]
    assert 5 <= len(got["bad"]) <= 10 and len(got["good"]) >= 40


# -- names, paths, command line ------------------------------------------------------------------


def test_source_names_and_output_paths(tmp_path: Path) -> None:
    assert default_name("0", 0) == "cam0"
    assert default_name("/videos/left side.mp4", 1) == "left-side"
    assert default_name("http://127.0.0.1:8080/stream.mjpg", 2) == "stream"
    assert default_name("rtsp://gate-2:554/", 3) == "gate-2"
    assert default_name("*.png", 4) == "src4"
    assert name_sources(["0", "1", "left=rtsp://cam/a", "a/x.mp4", "b/x.mp4"]) == [
        ("cam0", "0"), ("cam1", "1"), ("left", "rtsp://cam/a"), ("x", "a/x.mp4"), ("x-2", "b/x.mp4")
    ]
    odd = tmp_path / "a=b.mp4"
    odd.touch()
    assert name_sources([str(odd)])[0] == ("a-b", str(odd)), "an existing path is never read as NAME=SOURCE"
    assert per_source_path("out/run.mp4", "cam0") == Path("out/run_cam0.mp4")
    assert per_source_path("out/{name}/run.mp4", "cam0") == Path("out/cam0/run.mp4")
    assert per_source_path("frames", "left") == Path("frames_left")


def test_the_command_line_takes_several_sources() -> None:
    args = build_parser().parse_args(["run", "0", "left=1", "clip.mp4", "--save", "out.mp4"])
    assert args.source == ["0", "left=1", "clip.mp4"] and args.batch is None
    assert build_parser().parse_args(["run", "0"]).source == ["0"]


def test_two_idle_workers_share_the_ready_frames_one_worker_takes_them_all() -> None:
    from recognizer.live.lanes import Captured as _Captured
    from recognizer.types import Frame

    def ready_pipe(workers: int) -> Pipeline:
        cams = [camera(160, 30.0) for _ in range(4)]
        pipe = Pipeline(cams, Spy(), names=list("abcd"), config=PipelineConfig(batch_size=8, workers=workers))
        for lane in pipe.lanes:  # one frame waiting in each camera's slot (no threads started)
            lane.slot.put(_Captured(Frame(0, 0.0, np.zeros((12, 16, 3), np.uint8)), 0.0, lane.index))
        return pipe

    pipe = ready_pipe(2)
    first, second = pipe._claim(), pipe._claim()
    assert [len(first[1]), len(second[1])] == [2, 2], "two batches of two, run at the same time"
    assert {c.lane for c in first[1] + second[1]} == {0, 1, 2, 3} and (first[0], second[0]) == (0, 1)
    pipe = ready_pipe(1)
    assert len(pipe._claim()[1]) == 4, "one worker: one batch with every camera's frame"


class Reads:
    """A recognizer whose reading depends on the pixels (the frame's brightness and where its
    brightest column is), so two runs agree only if they saw the same frames in the same order."""

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        out = []
        for im in images:
            gray = im.mean(axis=2)
            x = float(np.argmax(gray.mean(axis=0)))
            text = str(int(gray.mean()) % 90 + 10)
            box = (max(x - 10.0, 0.0), 10.0, x + 10.0, 40.0)
            d = tuple(DigitBox((box[0] + 10.0 * k, 10.0, box[0] + 10.0 * (k + 1), 40.0), int(c), 0.9, 0.9) for k, c in enumerate(text))
            out.append([Reading(text, 0.8, box, d)])
        return out


@pytest.mark.timeout(120)
def test_a_clip_alone_and_beside_another_gives_the_same_records(tmp_path: Path) -> None:
    """One source and several run through the same classes: a clip run alone and as one of two
    sources logs the same frame and track records (only the ``source`` key is added)."""
    from recognizer.live.run import run as run_sources
    from recognizer.output.records import read_log
    from recognizer.synth.footage import make_bench_clip

    spec = ClipSpec(width=160, height=120, fps=15.0, numbers=("12", "305"))
    clip = make_bench_clip(tmp_path / "clip.mp4", 45, spec)
    other = make_bench_clip(tmp_path / "other.mp4", 30, ClipSpec(width=192, height=144, fps=10.0, numbers=("7",), seed=3))
    config = PipelineConfig(batch_size=4, workers=2)
    alone = run_sources(open_source(str(clip)), Reads(), config=config, log=tmp_path / "alone.jsonl")
    both = run_sources([open_source(str(clip)), open_source(str(other))], Reads(), names=["clip", "other"], config=config,
                       log=tmp_path / "both.jsonl")
    assert alone.status == both.status == "completed" and both.sources[0].frames == alone.frames == 45
    one = [r for r in read_log(tmp_path / "alone.jsonl") if r["type"] not in ("run", "summary")]
    two = [{k: v for k, v in r.items() if k != "source"} for r in read_log(tmp_path / "both.jsonl")
           if r.get("source") == "clip" and r["type"] not in ("run", "summary")]
    assert len(one) > 45 and any(r["type"] != "frame" for r in one), "frames and track events"
    assert two == one
    assert [r["type"] for r in read_log(tmp_path / "both.jsonl")].count("summary") == 3  # each source's, then the run's
