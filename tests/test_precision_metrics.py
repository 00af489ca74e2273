"""Precision of the reading: ``train.mine --truth`` (real digit crops beside mined ones) and
``train.evaluate``'s extra digits and invented numbers."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognizer.types import DigitBox, Reading
from train.evaluate import evaluate_split
from train.metrics import extra_digits, invented_numbers

# --------------------------------------------------------------------------- train.mine --truth


def _xyxy(record) -> np.ndarray:
    b = np.asarray(record.boxes, np.float32).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    return b


def test_mine_truth_adds_one_crop_per_true_box(tmp_path: Path, tiny_checkpoints) -> None:
    from svhn_fixtures import make_svhn_split

    from recognizer.models.preprocess import crop_digits
    from train.mine import TRUTH_SCORE, main

    assert TRUTH_SCORE > 1.0  # above every detector score, so truth crops can be told apart
    root, records = make_svhn_split(tmp_path / "split", 4, seed=5, annotations="json")
    det = str(tiny_checkpoints["detector"])
    # --score-thresh 1.0: the untrained detector keeps nothing, so only the truth crops are written.
    out = tmp_path / "truth.npz"
    assert main(["--data", str(root), "--detector", det, "--out", str(out), "--score-thresh", "1.0", "--truth",
                 "--threads", "1"]) == 0
    z = np.load(out)
    n = sum(len(r.digits) for r in records)
    assert z["X"].shape == (n, 32, 32, 3) and z["X"].dtype == np.uint8
    assert z["y"].tolist() == [int(d) for r in records for d in r.digits]
    assert (z["det_score"] == np.float32(TRUTH_SCORE)).all()
    assert z["source_image"].tolist() == [k + 1 for k, r in enumerate(records) for _ in r.digits]
    # Each crop is the true box framed as the recognizer frames a detection.
    first = cv2.imread(str(root / records[0].name))
    assert np.array_equal(z["X"][: len(records[0].digits)], crop_digits(first, _xyxy(records[0])))

    # Without --truth the same run finds nothing to crop (exit 2): the truth crops came from --truth.
    assert main(["--data", str(root), "--detector", det, "--out", str(tmp_path / "none.npz"), "--score-thresh", "1.0",
                 "--threads", "1"]) == 2
    assert not (tmp_path / "none.npz").exists()


def test_mine_truth_comes_after_the_mined_crops(tmp_path: Path, tiny_checkpoints) -> None:
    from svhn_fixtures import make_svhn_split

    from recognizer.models.labels import NOT_DIGIT_LABEL
    from train.mine import TRUTH_SCORE, main

    root, records = make_svhn_split(tmp_path / "split", 3, seed=2, annotations="json")
    out = tmp_path / "both.npz"
    assert main(["--data", str(root), "--detector", str(tiny_checkpoints["detector"]), "--out", str(out),
                 "--score-thresh", "1.0", "--random-negatives", "2", "--truth", "--threads", "1"]) == 0
    z = np.load(out)
    truth = z["det_score"] == np.float32(TRUTH_SCORE)
    assert int(truth.sum()) == sum(len(r.digits) for r in records)
    assert z["y"][truth].tolist() == [int(d) for r in records for d in r.digits]
    assert (z["y"][~truth] == NOT_DIGIT_LABEL).all() and (z["det_score"][~truth] == 1.0).all()
    for k in range(1, len(records) + 1):  # per image: the random negatives, then the truth
        rows = np.nonzero(z["source_image"] == k)[0]
        flags = truth[rows].tolist()
        assert flags == sorted(flags) and flags[-1]


# --------------------------------------------------------------------------- extra digits, invented numbers


GT = np.array([[10, 10, 20, 30], [22, 10, 32, 30]], np.float64)


def test_extra_digits_by_centre() -> None:
    read = np.array([
        [11, 11, 19, 29],    # on the first digit
        [18, 10, 28, 30],    # centre (23, 20): inside the second digit box
        [40, 10, 50, 30],    # beside the number
        [0, 0, 8, 8],        # far away
        [5, 5, 27, 35],      # centre (16, 20): inside the first digit box, even if the box is too big
        [12, 28, 18, 40],    # centre (15, 34): below the number
    ], np.float64)
    assert extra_digits(read, GT).tolist() == [False, False, True, True, False, True]
    assert extra_digits(read, np.zeros((0, 4))).tolist() == [True] * 6  # no true digits: all extra
    assert extra_digits(np.zeros((0, 4)), GT).shape == (0,)
    assert extra_digits(read, GT).dtype == bool
    # The box edges count as inside.
    assert extra_digits(np.array([[15, 26, 25, 34]]), GT).tolist() == [False]  # centre (20, 30): a corner of both
    assert extra_digits(np.array([[10, 26, 20, 34.2]]), GT).tolist() == [True]  # centre (15, 30.1): just below


def test_invented_numbers_counts_readings_made_only_of_extra_digits() -> None:
    on_number = np.array([[11, 11, 19, 29], [23, 11, 31, 29]])
    one_true_one_extra = np.array([[11, 11, 19, 29], [40, 10, 50, 30]])
    all_extra = np.array([[40, 10, 50, 30], [52, 10, 62, 30]])
    single_extra = np.array([[0, 0, 5, 9]])
    assert invented_numbers([on_number], GT) == 0
    assert invented_numbers([one_true_one_extra], GT) == 0  # one digit on a true box: not invented
    assert invented_numbers([all_extra], GT) == 1
    assert invented_numbers([on_number, all_extra, single_extra, one_true_one_extra], GT) == 2
    assert invented_numbers([np.zeros((0, 4))], GT) == 0  # an empty reading invents nothing
    assert invented_numbers([], GT) == 0
    assert invented_numbers([on_number, all_extra], np.zeros((0, 4))) == 2


class FakeRecognizer:
    """Reads each image as told by ``answers`` (image bytes -> readings)."""

    def __init__(self, answers: dict[bytes, list[Reading]]) -> None:
        self.answers = answers

    def recognize(self, images: list[np.ndarray]) -> list[list[Reading]]:
        return [self.answers[img.tobytes()] for img in images]


def _reading(text: str, boxes: np.ndarray, conf: float = 0.9) -> Reading:
    digits = tuple(DigitBox(box=tuple(float(v) for v in b), digit=int(c), det_score=0.9, cls_score=0.9)
                   for c, b in zip(text, boxes))
    return Reading(text=text, confidence=conf, box=(0.0, 0.0, 1.0, 1.0), digits=digits)


def _fixture(tmp_path: Path, n: int) -> tuple[Path, list, list[np.ndarray]]:
    from svhn_fixtures import make_svhn_split

    root, records = make_svhn_split(tmp_path / "split", n, seed=4)
    return root, records, [cv2.imread(str(root / r.name)) for r in records]


def test_evaluate_split_reports_extra_digits_and_invented_numbers(tmp_path: Path) -> None:
    root, records, images = _fixture(tmp_path, 4)
    answers = {}
    for k, (rec, img) in enumerate(zip(records, images)):
        readings = [_reading(rec.text, rec.xyxy)]
        if k in (1, 2):
            # A second, less confident reading in the image's top-left corner, off every digit: "12".
            corner = np.array([[0, 0, 4, 6], [4, 0, 8, 6]], np.float32)
            readings.append(_reading("12", corner, conf=0.1))
        if k == 2:
            # ... and the right number read with one more digit on the wall beside it.
            x2 = float(rec.xyxy[:, 2].max())
            beside = np.vstack([rec.xyxy, [[x2 + 200, 0, x2 + 210, 10]]]).astype(np.float32)
            readings.append(_reading(rec.text + "5", beside, conf=0.2))
        answers[img.tobytes()] = readings
    out = tmp_path / "out"
    report = evaluate_split(FakeRecognizer(answers), records, root, out_dir=out)
    assert report["number_accuracy"] == 1.0  # the top reading is always right
    # Extra digits: image 1 two, image 2 three (two in the corner, one beside), others none.
    assert report["extra_digits_per_image"] == pytest.approx((2 + 3) / 4)
    assert report["images_with_extra_digits"] == pytest.approx(2 / 4)
    assert report["images_with_invented_number"] == pytest.approx(2 / 4)
    lines = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    assert [x["extra_digits"] for x in lines] == [0, 2, 3, 0]
    assert [x["invented_numbers"] for x in lines] == [0, 1, 1, 0]


def test_evaluate_split_perfect_reader_has_no_extra_digits(tmp_path: Path) -> None:
    root, records, images = _fixture(tmp_path, 3)
    fake = FakeRecognizer({img.tobytes(): [_reading(rec.text, rec.xyxy)] for rec, img in zip(records, images)})
    report = evaluate_split(fake, records, root)
    assert report["extra_digits_per_image"] == 0.0
    assert report["images_with_extra_digits"] == 0.0 and report["images_with_invented_number"] == 0.0
    nothing = FakeRecognizer({img.tobytes(): [] for img in images})
    report = evaluate_split(nothing, records, root)
    assert report["extra_digits_per_image"] == 0.0 and report["images_with_invented_number"] == 0.0


def test_evaluate_cli_reports_precision_with_real_models(tmp_path: Path, tiny_checkpoints, capsys) -> None:
    from svhn_fixtures import make_svhn_split

    from train.evaluate import main

    root, records = make_svhn_split(tmp_path / "json_split", 2, seed=1, annotations="json")
    out = tmp_path / "eval"
    assert main(["--data", str(root), "--detector", str(tiny_checkpoints["detector"]),
                 "--classifier", str(tiny_checkpoints["classifier"]), "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 2
    assert report["extra_digits_per_image"] >= 0.0
    for key in ("images_with_extra_digits", "images_with_invented_number"):
        assert 0.0 <= report[key] <= 1.0
    # An image with an invented number has extra digits.
    assert report["images_with_invented_number"] <= report["images_with_extra_digits"]
    lines = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    assert report["extra_digits_per_image"] == pytest.approx(np.mean([x["extra_digits"] for x in lines]), abs=1e-4)
    assert report["images_with_extra_digits"] == pytest.approx(np.mean([x["extra_digits"] > 0 for x in lines]))
    assert "extra digits (outside every true box)" in capsys.readouterr().out


# ---------------------------------------------------------------- train.tune


def _cached_image(truth: str, boxes, scores, digits, not_digit, gt) -> dict:
    n = len(boxes)
    return {"truth": truth, "gt": np.asarray(gt, np.float64).reshape(-1, 4), "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "scores": np.asarray(scores, np.float32), "digits": np.asarray(digits, np.int64),
            "probs": np.full(n, 0.9, np.float32), "not_digit": np.asarray(not_digit, np.float32)}


def test_tune_grid_replays_both_thresholds() -> None:
    from train.tune import best_row, grid_scores

    # "12" on two true boxes, plus a weak hit (score 0.4) far away that the classifier half
    # suspects (not a digit 0.6): it is an extra digit, and an invented number on its own.
    img = _cached_image("12", [[0, 0, 10, 20], [11, 0, 21, 20], [100, 0, 110, 20]], [0.9, 0.9, 0.4], [1, 2, 7],
                        [0.0, 0.0, 0.6], [[0, 0, 10, 20], [11, 0, 21, 20]])
    rows = {(r["det"], r["not_digit"]): r for r in grid_scores([img], [0.3, 0.5], [0.5, 1.0])}
    assert rows[(0.3, 1.0)]["extra_digits_per_image"] == 1 and rows[(0.3, 1.0)]["images_with_invented_number"] == 1
    for cell in ((0.3, 0.5), (0.5, 0.5), (0.5, 1.0)):  # either threshold drops the weak hit
        assert rows[cell]["extra_digits_per_image"] == 0 and rows[cell]["images_with_invented_number"] == 0
        assert rows[cell]["accuracy"] == 1.0 and rows[cell]["correct"] == 1
    # Within the tolerance the pair with the fewest invented numbers wins; outside it, accuracy.
    a = {"det": 0.5, "not_digit": 0.5, "accuracy": 0.80, "images_with_invented_number": 0.05, "extra_digits_per_image": 0.2}
    b = {"det": 0.7, "not_digit": 0.9, "accuracy": 0.79, "images_with_invented_number": 0.01, "extra_digits_per_image": 0.1}
    assert best_row([a, b], 0.01) is b
    assert best_row([a, b], 0.0) is a


def test_tune_cli_prints_the_grid_and_writes_json(tmp_path, tiny_checkpoints, capsys) -> None:
    import json

    from svhn_fixtures import make_svhn_split

    from train.tune import main

    root, _ = make_svhn_split(tmp_path / "split", 3, seed=4, annotations="json")
    args = ["--data", str(root), "--detector", str(tiny_checkpoints["detector"]),
            "--classifier", str(tiny_checkpoints["classifier"]), "--no-tta", "--batch-size", "2"]
    out = tmp_path / "tune.json"
    assert main(args + ["--det", "0.3,0.6", "--not-digit", "0.5,1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("3 images;") and "best: --score-thresh" in printed
    report = json.loads(out.read_text())
    assert report["images"] == 3 and len(report["grid"]) == 4 and report["best"] in report["grid"]
    assert main(args + ["--det", "0.3", "--floor", "0.5"]) == 2  # the floor must not cut into the grid
    assert main(args + ["--det", "nan"]) == 2
    assert main(args + ["--not-digit", "1.5"]) == 2
