"""The name-plate demo street (``ClipConfig(nameplates=True)``, ``recognizer demo --nameplates``)
and how its log is scored: every confirmed text that is not a true number in view is EXTRA."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recognizer.apps.demo import score_log
from recognizer.synth.street import ClipConfig, build_facade, load_truth, make_street_clip

FONTS = sorted(str(p) for p in Path("/usr/share/fonts/truetype/dejavu").glob("*.ttf"))


# --------------------------------------------------------------------------- the facade


def _ink_under(image: np.ndarray, hulls: list[np.ndarray]) -> float:
    pts = np.vstack(hulls)
    x1, y1 = np.floor(pts.min(0)).astype(int)
    x2, y2 = np.ceil(pts.max(0)).astype(int)
    return float(image[y1:y2, x1:x2].astype(np.float32).mean(2).std())


def test_nameplates_keep_the_numbers_and_change_the_pixels() -> None:
    plain_img, plain = build_facade(ClipConfig(seed=3, frames=8, houses=2), FONTS)
    named_img, named = build_facade(ClipConfig(seed=3, frames=8, houses=2, nameplates=True), FONTS)
    assert [n.text for n in named] == [n.text for n in plain] and len(named) == 2
    for a, b in zip(plain, named):
        assert a.digits.tolist() == b.digits.tolist() == [int(c) for c in a.text]
        assert len(b.hulls) == len(b.text)
    assert named_img.shape == plain_img.shape and named_img.dtype == np.uint8
    assert named_img.tobytes() != plain_img.tobytes()
    # The numbers are still drawn where the truth says they are.
    for num in named:
        pts = np.vstack(num.hulls)
        assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= named_img.shape[1]
        assert pts[:, 1].min() >= 0 and pts[:, 1].max() <= named_img.shape[0]
        assert _ink_under(named_img, num.hulls) > 12
    # Same settings, same street.
    again, _ = build_facade(ClipConfig(seed=3, frames=8, houses=2, nameplates=True), FONTS)
    assert again.tobytes() == named_img.tobytes()


def test_nameplates_paint_signs_off_the_numbers(monkeypatch) -> None:
    from recognizer.synth import painting, street

    painted: list[tuple[str, np.ndarray]] = []
    real = painting.paint_sign

    def recording(rng, canvas, fonts, x, y, height, text=None):
        boxes = real(rng, canvas, fonts, x, y, height, text)
        painted.append((text, boxes))
        return boxes

    plans = []
    real_plan = street.plan_number

    def recording_plan(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        plans.append(plan)
        return plan

    monkeypatch.setattr(painting, "paint_sign", recording)
    monkeypatch.setattr(street, "plan_number", recording_plan)
    build_facade(ClipConfig(seed=5, frames=8, houses=3), FONTS)
    assert painted == []  # the plain street has no signs ...
    assert len(plans) == 3 and all(not p.suffix for p in plans)  # ... and no text beside its numbers
    for seed in (5, 6):
        painted.clear()
        plans.clear()
        _, numbers = build_facade(ClipConfig(seed=seed, frames=8, houses=3, nameplates=True), FONTS)
        # Words beside the numbers ("No.", "Apt", "12A", names), unlabelled: the digits stay the truth.
        assert any(p.suffix for p in plans)
        assert [p.digits.tolist() for p in plans] == [n.digits.tolist() for n in numbers]
        assert all(len(p.text_hulls) == len(p.suffix) for p in plans)
        # Up to a name plate, a street sign and a word on the door per house.
        assert len(numbers) <= len(painted) <= 3 * len(numbers)
        assert sum(len(b) for _, b in painted) >= 3 * len(numbers)
        for text, boxes in painted:
            assert text and not any(c.isdigit() for c in text)
            for num in numbers:
                pts = np.vstack(num.hulls)
                (x1, y1), (x2, y2) = pts.min(0), pts.max(0)
                overlap = (np.minimum(boxes[:, 2], x2) > np.maximum(boxes[:, 0], x1)) \
                    & (np.minimum(boxes[:, 3], y2) > np.maximum(boxes[:, 1], y1))
                assert not overlap.any(), f"seed {seed}: sign {text!r} covers number {num.text}"


def test_a_nameplate_clip_is_not_reused_for_a_plain_one(tmp_path: Path) -> None:
    plain = make_street_clip(tmp_path, ClipConfig(seed=4, frames=3, houses=1), fonts=FONTS)
    assert plain.truth["config"]["nameplates"] is False
    named = make_street_clip(tmp_path, ClipConfig(seed=4, frames=3, houses=1, nameplates=True), fonts=FONTS)
    assert named.truth["config"]["nameplates"] is True
    assert load_truth(tmp_path / "truth.json")["config"]["nameplates"] is True
    assert [n["text"] for n in named.truth["numbers"]] == [n["text"] for n in plain.truth["numbers"]]


# --------------------------------------------------------------------------- scoring


BOX_12 = [100.0, 100.0, 160.0, 140.0]
BOX_7 = [300.0, 100.0, 330.0, 140.0]


def _truth() -> dict:
    """10 frames: "12" in view in frames 0-5, nothing in 6-7, "7" in 8-9 (partly visible in 8)."""
    per_frame: list[list[dict]] = []
    for f in range(10):
        items = []
        if f <= 5:
            items.append({"id": 0, "text": "12", "box": BOX_12, "fully_visible": True, "digits": []})
        if f >= 8:
            items.append({"id": 1, "text": "7", "box": BOX_7, "fully_visible": f == 9, "digits": []})
        per_frame.append(items)
    return {
        "frames": 10,
        "numbers": [
            {"id": 0, "text": "12", "first_frame": 0, "last_frame": 5, "visible_frames": 6},
            {"id": 1, "text": "7", "first_frame": 9, "last_frame": 9, "visible_frames": 1},
        ],
        "per_frame": per_frame,
    }


def _frames() -> list[dict]:
    out = []
    for f in range(10):
        readings = []
        if f <= 5:
            readings.append({"text": "12", "box": BOX_12, "track_id": 1})
        if f >= 8:
            readings.append({"text": "7", "box": BOX_7, "track_id": 5})
        out.append({"type": "frame", "frame": f, "readings": readings})
    return out


def _confirmed(track: int, text: str, first: int, frame: int) -> dict:
    return {"type": "confirmed", "track_id": track, "text": text, "frame": frame, "first_frame": first,
            "last_frame": frame, "confidence": 0.9}


def test_a_right_confirmation_is_not_extra() -> None:
    rep = score_log(_truth(), _frames() + [_confirmed(1, "12", 0, 3), _confirmed(5, "7", 8, 9)])
    assert rep.extra == []
    assert [n.ok for n in rep.numbers] == [True, True] and rep.correct == 2


def test_every_confirmed_text_that_is_no_true_number_in_view_is_extra() -> None:
    records = _frames() + [
        _confirmed(1, "12", 0, 3),   # right
        _confirmed(2, "13", 1, 4),   # a misread of the number in view
        _confirmed(3, "45", 6, 7),   # read while no number is in view (a name plate, a sign)
        _confirmed(4, "7", 2, 4),    # a true number of the street, but not the one in view then
        _confirmed(5, "7", 6, 8),    # "7" comes into view at frame 8 (partly visible counts)
        _confirmed(6, "12", 5, 6),   # "12" was still in view at frame 5
        _confirmed(7, "12", 12, 14),  # after the clip's last frame: nothing in view
        {"type": "track_ended", "track_id": 3, "text": "45", "first_frame": 6, "last_frame": 7},
    ]
    rep = score_log(_truth(), records)
    assert rep.extra == ["13", "45", "7", "12"]
    assert rep.correct == 2 and rep.frames_logged == 10 and rep.frames_expected == 10
    assert rep.to_dict()["extra_confirmed"] == ["13", "45", "7", "12"]


def test_a_confirmation_without_a_first_frame_is_judged_at_its_frame() -> None:
    truth = _truth()
    ok = {"type": "confirmed", "track_id": 1, "text": "12", "frame": 2}
    late = {"type": "confirmed", "track_id": 9, "text": "12", "frame": 7}
    assert score_log(truth, _frames() + [ok, late]).extra == ["12"]


def test_extra_confirmations_of_a_track_on_a_true_number_are_counted_too() -> None:
    # Before, a track that touched a true number never produced an extra; now its wrong texts do.
    records = _frames() + [_confirmed(1, "12", 0, 2), _confirmed(1, "17", 0, 5)]
    rep = score_log(_truth(), records)
    assert rep.extra == ["17"]
    assert rep.numbers[0].ok  # the right text was confirmed too


# --------------------------------------------------------------------------- recognizer demo --nameplates


def test_recognizer_demo_nameplates_default_folder(tmp_path: Path, tiny_checkpoints, monkeypatch, capsys) -> None:
    from recognizer.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["demo", "--nameplates", "--frames", "8", "--seed", "2", "--no-progress", "--workers", "1", "--threads", "1",
            "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"])]
    assert main(args) == 0
    out = tmp_path / "recognizer-demo-nameplates"
    assert out.is_dir() and not (tmp_path / "recognizer-demo").exists()
    report = json.loads((out / "report.json").read_text())
    truth = load_truth(out / "truth.json")
    assert truth["config"]["nameplates"] is True and truth["frames"] == 8
    assert report["total"] == len(truth["numbers"]) and report["frames_logged"] == 8
    assert isinstance(report["extra_confirmed"], list)
    captured = capsys.readouterr()
    assert "name-plate street" in captured.err and "recognizer-demo-nameplates" in captured.err
    assert "extra confirmed number(s)" in captured.out
