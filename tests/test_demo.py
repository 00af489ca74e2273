"""The demo clip generator, its scoring, and ``recognizer demo`` end to end."""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from shipped import needs_models

from recognizer.apps.demo import run_demo, score_log
from recognizer.models.compose import compose_readings
from recognizer.output.records import read_log
from recognizer.synth.street import ClipConfig, load_truth, make_street_clip, render_frames
from recognizer.types import Reading

FONTS = sorted(str(p) for p in Path("/usr/share/fonts/truetype/dejavu").glob("*.ttf"))
SHORT = ClipConfig(seed=3, frames=30, houses=2, fps=15.0)


def _frames(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out = []
    try:
        while True:
            ok, f = cap.read()
            if not ok:
                return out
            out.append(f)
    finally:
        cap.release()


def test_same_config_same_frames_and_truth():
    a = list(render_frames(ClipConfig(seed=1, frames=6, houses=2), FONTS))
    b = list(render_frames(ClipConfig(seed=1, frames=6, houses=2), FONTS))
    assert len(a) == 6
    for (fa, ta), (fb, tb) in zip(a, b):
        assert fa.shape == (480, 640, 3) and fa.dtype == np.uint8
        assert fa.tobytes() == fb.tobytes() and ta == tb
    c = list(render_frames(ClipConfig(seed=2, frames=6, houses=2), FONTS))
    assert c[0][0].tobytes() != a[0][0].tobytes()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"frames": 1}, "frames 1"),
        ({"seed": -1}, "seed -1"),
        ({"fps": 0.0}, "fps 0.0"),
        ({"width": 10}, "frame size"),
        ({"houses": 0}, "houses 0"),
        ({"motion_blur": 2.0}, "motion_blur"),
    ],
)
def test_bad_clip_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipConfig(**kwargs)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_street_clip(tmp_path_factory.mktemp("clip"), SHORT, fonts=FONTS)


def test_clip_video_and_truth_agree(clip):
    frames = _frames(clip.video)
    truth = load_truth(clip.truth_path)
    assert truth == clip.truth
    assert len(frames) == SHORT.frames == truth["frames"] == len(truth["per_frame"])
    assert frames[0].shape == (480, 640, 3)
    assert len(truth["numbers"]) == 2
    for num in truth["numbers"]:
        assert num["text"].isdigit() and 1 <= len(num["text"]) <= 4
        assert num["visible_frames"] > 3, "each number must be fully visible for a while"
        vis = [f for f, items in enumerate(truth["per_frame"]) for it in items if it["id"] == num["id"] and it["fully_visible"]]
        assert vis[0] == num["first_frame"] and vis[-1] == num["last_frame"] and len(vis) == num["visible_frames"]
    # Fully visible numbers: digit boxes inside the frame, in reading order, spelling the text,
    # on pixels that differ from the wall around the plate (something is drawn there).
    checked = 0
    for f, items in enumerate(truth["per_frame"]):
        for it in items:
            d = np.array(it["digits"])
            assert "".join(str(int(v)) for v in d[:, 4]) == it["text"]
            if not it["fully_visible"]:
                continue
            assert d[:, 0].min() >= 0 and d[:, 1].min() >= 0 and d[:, 2].max() <= 640 and d[:, 3].max() <= 480
            assert (np.diff((d[:, 0] + d[:, 2]) / 2) > 0).all()
            x1, y1, x2, y2 = (int(round(v)) for v in it["box"])
            patch = cv2.cvtColor(frames[f][y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
            assert patch.std() > 12, f"frame {f}: nothing drawn under number {it['text']}"
            checked += 1
    assert checked > 5


def test_clip_is_reused_only_with_the_same_settings(tmp_path):
    cfg = ClipConfig(seed=5, frames=4, houses=1)
    first = make_street_clip(tmp_path, cfg, fonts=FONTS)
    stamp = first.video.stat().st_mtime_ns
    again = make_street_clip(tmp_path, cfg, fonts=FONTS)
    assert again.video.stat().st_mtime_ns == stamp
    other = make_street_clip(tmp_path, ClipConfig(seed=5, frames=5, houses=1), fonts=FONTS)
    assert other.truth["frames"] == 5 and len(_frames(other.video)) == 5
    with pytest.raises(ValueError, match="not a demo truth file"):
        (tmp_path / "bad.json").write_text("{}")
        load_truth(tmp_path / "bad.json")


class OracleRecognizer:
    """Reads the truth of each frame (in order) and returns it as readings, optionally wrong."""

    def __init__(self, truth: dict, wrong: Sequence[str] = ()) -> None:
        self.truth = truth
        self.wrong = set(wrong)
        self.next = 0
        self.lock = threading.Lock()

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        out = []
        with self.lock:
            for _ in images:
                items = self.truth["per_frame"][self.next] if self.next < len(self.truth["per_frame"]) else []
                self.next += 1
                readings: list[Reading] = []
                for it in items:
                    if not it["fully_visible"]:
                        continue
                    d = np.array(it["digits"], np.float64)
                    digits = d[:, 4].astype(np.int64)
                    if it["text"] in self.wrong:
                        digits = (digits + 1) % 10
                    readings += compose_readings(d[:, :4], digits, np.full(len(d), 0.9), np.full(len(d), 0.9))
                out.append(readings)
        return out


def test_scoring_through_the_real_pipeline(tmp_path, clip):
    # A perfect reader gets every number OK; one that misreads a number gets exactly that one wrong.
    truth = clip.truth
    texts = [n["text"] for n in truth["numbers"]]
    perfect = run_demo(tmp_path / "perfect", OracleRecognizer(truth), SHORT, batch=3, workers=1, fonts=FONTS)
    rep = perfect.report
    assert [n.text for n in rep.numbers] == texts
    assert all(n.ok and n.read == n.text for n in rep.numbers), rep.table()
    assert rep.frame_accuracy == 1.0 and rep.extra == []
    assert rep.frames_logged == SHORT.frames
    wrong = run_demo(tmp_path / "wrong", OracleRecognizer(truth, wrong=[texts[0]]), SHORT, batch=3, workers=1, fonts=FONTS)
    by_text = {n.text: n for n in wrong.report.numbers}
    assert not by_text[texts[0]].ok and by_text[texts[0]].read not in ("", texts[0])
    assert by_text[texts[0]].frames_right == 0 and by_text[texts[0]].frames_seen > 0
    assert by_text[texts[1]].ok
    assert "MISS" in wrong.report.table() and wrong.report.correct == 1
    # Nothing read at all: every number is a MISS with nothing seen.
    empty = score_log(truth, [{"type": "frame", "frame": f, "readings": []} for f in range(SHORT.frames)])
    assert empty.correct == 0 and all(n.frames_seen == 0 and n.read == "" for n in empty.numbers)


def test_recognizer_demo_command_end_to_end(tmp_path, tiny_checkpoints, capsys):
    from recognizer.cli import main

    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--frames", "24", "--seed", "1", "--no-progress", "--workers", "1", "--threads", "1",
            "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"])]
    assert main(args) == 0
    printed = capsys.readouterr().out
    truth = load_truth(out / "truth.json")
    for num in truth["numbers"]:
        assert num["text"] in printed
    assert "house numbers right" in printed and "annotated video" in printed
    annotated = _frames(out / "annotated.mp4")
    assert len(annotated) == 24 and annotated[0].shape == (480, 640, 3)
    records = read_log(out / "readings.jsonl")
    frames = [r for r in records if r.get("type") == "frame"]
    assert [r["frame"] for r in frames] == list(range(24))
    assert records[0]["type"] == "run" and records[-1]["type"] == "summary" and records[-1]["frames"] == 24
    report = json.loads((out / "report.json").read_text())
    assert report["total"] == len(truth["numbers"]) and report["frames_logged"] == 24


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--frames", "1"], "--frames 1"),
        (["--seed", "-2"], "--seed -2"),
        (["--fps", "500"], "fps 500"),
        (["--detector", "/nonexistent/det.pt"], "does not exist"),
    ],
)
def test_recognizer_demo_bad_input(tmp_path, tiny_checkpoints, capsys, extra, message):
    from recognizer.cli import main

    args = ["demo", "--out", str(tmp_path / "d"), "--classifier", str(tiny_checkpoints["classifier"])]
    if "--detector" not in extra:
        args += ["--detector", str(tiny_checkpoints["detector"])]
    assert main(args + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d" / "annotated.mp4").exists()


@needs_models
def test_shipped_weights_read_most_demo_numbers(tmp_path):
    from recognizer.models.engine import Recognizer
    from recognizer.models.weights import default_weight_path

    rec = Recognizer.from_checkpoints(default_weight_path("detector"), default_weight_path("classifier"), device="cpu")
    # The clip `recognizer demo` ships (default settings: 180 frames, 5 house numbers).
    run = run_demo(tmp_path, rec, ClipConfig(seed=0), batch=4, workers=1)
    rep = run.report
    assert len(rep.numbers) >= 5
    assert rep.correct >= 0.6 * len(rep.numbers), rep.table()


def test_make_demo_tool(tmp_path, capsys):
    from tools import make_demo

    assert make_demo.main(["--out", str(tmp_path), "--frames", "8", "--houses", "1", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    truth = load_truth(tmp_path / "truth.json")
    assert truth["numbers"][0]["text"] in printed and len(_frames(tmp_path / "clip.mp4")) == 8
    assert make_demo.main(["--out", str(tmp_path), "--frames", "8", "--name", "clip.gif"]) == 2
    assert ".mp4 or .avi" in capsys.readouterr().err
    assert make_demo.main(["--out", str(tmp_path / "truth.json"), "--frames", "8"]) == 2
