"""train.evaluate: the pure metric functions, the pipeline evaluation with an injected fake
recognizer on an SVHN-format fixture, and the command line (crops mode and full mode)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from recognizer.types import DigitBox, Reading
from train.evaluate import evaluate_split
from train.inputs import select_records
from train.metrics import (
    accuracy,
    average_precision,
    box_iou,
    coco_average_precision,
    confusion_matrix,
    match_detections,
    top_text,
)

GT = [
    np.array([[0, 0, 10, 20], [20, 0, 30, 20]], np.float32),
    np.array([[5, 5, 15, 25]], np.float32),
]


def _perfect() -> list[tuple[np.ndarray, np.ndarray]]:
    return [(g.copy(), np.ones(len(g), np.float32)) for g in GT]


def _none() -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) for _ in GT]


# --------------------------------------------------------------------------- IoU and matching


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([0, 0, 10, 10], [0, 0, 5, 5], 0.25),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # empty boxes: no union, IoU 0 rather than NaN
    ],
)
def test_box_iou_table(a: list[float], b: list[float], expected: float) -> None:
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(expected)


def test_box_iou_shapes_with_empty_inputs() -> None:
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert box_iou(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)


def test_match_detections_takes_each_ground_truth_once_by_score() -> None:
    gt = np.array([[0, 0, 10, 10]], np.float32)
    preds = np.array([[0, 0, 10, 10], [0, 0, 10, 9]], np.float32)
    scores, tp = match_detections(preds, np.array([0.2, 0.9]), gt, 0.5)
    # The higher-scoring (slightly worse) box takes the ground truth; the duplicate is a FP.
    assert scores.tolist() == pytest.approx([0.9, 0.2])
    assert tp.tolist() == [True, False]


def test_match_detections_rejects_mismatched_scores() -> None:
    with pytest.raises(ValueError, match="scores"):
        match_detections(np.zeros((2, 4)), np.zeros(3), np.zeros((1, 4)), 0.5)


# --------------------------------------------------------------------------- AP


def test_perfect_predictions_score_one() -> None:
    assert average_precision(_perfect(), GT, 0.5) == pytest.approx(1.0)
    assert coco_average_precision(_perfect(), GT) == pytest.approx(1.0)


def test_no_predictions_score_zero_and_no_ground_truth_is_undefined() -> None:
    assert average_precision(_none(), GT) == 0.0
    assert math.isnan(average_precision([(np.zeros((0, 4)), np.zeros(0))], [np.zeros((0, 4))]))
    assert math.isnan(coco_average_precision([], []))


def test_confident_false_positive_lowers_ap_by_the_interpolated_amount() -> None:
    preds = _perfect()
    preds[0] = (np.vstack([[100, 100, 110, 120], GT[0]]).astype(np.float32), np.array([0.99, 0.5, 0.4]))
    preds[1] = (GT[1].copy(), np.array([0.3]))
    # Ranked: FP, TP, TP, TP -> precision 0, 1/2, 2/3, 3/4 at recall 0, 1/3, 2/3, 1.
    # The envelope is 0.75 everywhere, so AP = 0.75.
    assert average_precision(preds, GT, 0.5) == pytest.approx(0.75)


def test_missed_box_lowers_recall_and_ap() -> None:
    preds = _perfect()
    preds[1] = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    assert average_precision(preds, GT, 0.5) == pytest.approx(2 / 3)


def test_loose_boxes_pass_at_05_but_fail_strict_thresholds() -> None:
    shifted = [(g + 2, np.ones(len(g))) for g in GT]  # IoU 0.6..0.67 with their ground truth
    assert average_precision(shifted, GT, 0.5) == pytest.approx(1.0)
    assert average_precision(shifted, GT, 0.75) == 0.0
    coco = coco_average_precision(shifted, GT)
    assert 0.0 < coco < 1.0


def test_ap_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="one of each per image"):
        average_precision(_perfect()[:1], GT)


# --------------------------------------------------------------------------- accuracy, confusion


@pytest.mark.parametrize(
    ("pred", "true", "expected"),
    [
        (["12", "7"], ["12", "7"], 1.0),
        (["12", "1"], ["12", "7"], 0.5),
        (["", "71"], ["12", "7"], 0.0),
        ([3, 4, 5, 6], [3, 4, 5, 0], 0.75),
    ],
)
def test_accuracy_table(pred: list, true: list, expected: float) -> None:
    assert accuracy(pred, true) == pytest.approx(expected)


def test_accuracy_empty_is_nan_and_length_mismatch_is_an_error() -> None:
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError, match="equal lengths"):
        accuracy([1], [1, 2])


def test_confusion_matrix_rows_are_truth_columns_predictions() -> None:
    m = confusion_matrix([1, 2, 3, 3], [1, 2, 3, 4])
    assert m.shape == (10, 10) and m.sum() == 4
    assert m[4, 3] == 1 and m[3, 3] == 1 and np.trace(m) == 3
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([10], [1])


def test_top_text_picks_the_most_confident_reading() -> None:
    def reading(text: str, conf: float) -> Reading:
        return Reading(text=text, confidence=conf, box=(0, 0, 1, 1), digits=())

    assert top_text([]) == ""
    assert top_text([reading("12", 0.3), reading("7", 0.9)]) == "7"


# --------------------------------------------------------------------------- pipeline evaluation


class FakeRecognizer:
    """Reads each fixture image as told by ``answers`` (image bytes -> readings)."""

    def __init__(self, answers: dict[bytes, list[Reading]]) -> None:
        self.answers = answers
        self.calls = 0
        self.timings = {"detect": 0.001, "classify": 0.001, "compose": 0.0}

    def recognize(self, images: list[np.ndarray]) -> list[list[Reading]]:
        self.calls += 1
        return [self.answers[img.tobytes()] for img in images]

    def recognize_timed(self, images: list[np.ndarray]) -> tuple[list[list[Reading]], dict[str, float]]:
        return self.recognize(images), dict(self.timings)


def _reading(text: str, boxes: np.ndarray) -> Reading:
    digits = tuple(DigitBox(box=tuple(float(v) for v in b), digit=int(c), det_score=0.9, cls_score=0.9)
                   for c, b in zip(text, boxes))
    return Reading(text=text, confidence=0.9, box=(0.0, 0.0, 1.0, 1.0), digits=digits)


def _fixture(tmp_path: Path, n: int = 5) -> tuple[Path, list]:
    import cv2
    from svhn_fixtures import make_svhn_split

    root, records = make_svhn_split(tmp_path / "split", n, seed=3)
    images = [cv2.imread(str(root / r.name)) for r in records]
    return root, list(zip(records, images))


def test_evaluate_split_perfect_reader_scores_one(tmp_path: Path) -> None:
    root, pairs = _fixture(tmp_path)
    fake = FakeRecognizer({img.tobytes(): [_reading(rec.text, rec.xyxy)] for rec, img in pairs})
    truth_digits = iter(int(d) for rec, _ in pairs for d in rec.digits)
    records = [rec for rec, _ in pairs]
    report = evaluate_split(
        fake, records, root, batch_size=2, out_dir=tmp_path / "out",
        classify=lambda crops: np.array([next(truth_digits) for _ in range(len(crops))]),
    )
    assert report["images"] == len(records) and fake.calls == 3  # batches of 2, 2, 1
    assert report["number_accuracy"] == 1.0
    assert report["digit_accuracy"] == 1.0 and report["digits"] == sum(len(r) for r in records)
    assert report["ap50"] == pytest.approx(1.0) and report["ap"] == pytest.approx(1.0)
    assert report["ap_source"] == "readings" and report["failures_drawn"] == 0
    assert report["images_per_second"] > 0
    assert report["stage_seconds"]["detect"] == pytest.approx(0.003)
    lines = (tmp_path / "out" / "per_image.jsonl").read_text().splitlines()
    assert [json.loads(line)["correct"] for line in lines] == [True] * len(records)


def test_evaluate_split_wrong_reader_scores_less_and_draws_failures(tmp_path: Path) -> None:
    import cv2

    root, pairs = _fixture(tmp_path)
    answers = {}
    for k, (rec, img) in enumerate(pairs):
        if k % 2 == 0:  # every other image: a wrong last digit and a box off target
            wrong = rec.text[:-1] + str((int(rec.text[-1]) + 1) % 10)
            boxes = rec.xyxy.copy()
            boxes[-1] += 40
            answers[img.tobytes()] = [_reading(wrong, boxes)]
        else:
            answers[img.tobytes()] = [_reading(rec.text, rec.xyxy)]
    records = [rec for rec, _ in pairs]
    report = evaluate_split(FakeRecognizer(answers), records, root, batch_size=4, out_dir=tmp_path / "out")
    n_wrong = (len(records) + 1) // 2
    assert report["number_accuracy"] == pytest.approx(1 - n_wrong / len(records))
    assert report["digit_accuracy"] is None  # no classify given
    assert report["ap50"] < 1.0
    drawn = sorted((tmp_path / "out" / "failures").glob("*.png"))
    assert report["failures_drawn"] == n_wrong == len(drawn)
    first = cv2.imread(str(drawn[0]))
    assert first is not None and first.shape[0] > 0
    assert "truth" in drawn[0].name and "read" in drawn[0].name


def test_evaluate_split_counts_missing_and_corrupt_images(tmp_path: Path) -> None:
    from svhn_fixtures import corrupt_file

    root, pairs = _fixture(tmp_path, n=4)
    records = [rec for rec, _ in pairs]
    (root / records[0].name).unlink()
    corrupt_file(root / records[1].name, "garbage")
    fake = FakeRecognizer({img.tobytes(): [_reading(rec.text, rec.xyxy)] for rec, img in pairs})
    report = evaluate_split(fake, records, root)
    assert report["images"] == 2
    assert sorted(s["reason"] for s in report["skipped"]) == ["missing", "unreadable image"]
    assert report["number_accuracy"] == 1.0


def test_evaluate_split_uses_raw_detections_for_ap_when_given(tmp_path: Path) -> None:
    root, pairs = _fixture(tmp_path, n=3)
    records = [rec for rec, _ in pairs]
    fake = FakeRecognizer({img.tobytes(): [] for _, img in pairs})  # reads nothing
    report = evaluate_split(
        fake, records, root,
        detect=lambda images: [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) for _ in images],
    )
    assert report["number_accuracy"] == 0.0
    assert report["ap50"] == 0.0 and report["ap_source"] == "detector"


@pytest.mark.parametrize(
    ("kwargs", "expected", "error"),
    [
        ({}, ["1.png", "2.png", "3.png", "4.png", "5.png"], None),
        ({"numbers": "2-3,5-"}, ["2.png", "3.png", "5.png"], None),
        ({"names": ["4.png", "1.png"]}, ["4.png", "1.png"], None),
        ({"limit": 2}, ["1.png", "2.png"], None),
        ({"names": ["9.png"]}, None, "'9.png' is not in the annotations"),
        ({"numbers": "100-200"}, None, "no images selected"),
        ({"numbers": "x-3"}, None, "not a number or range"),
        ({"limit": 0}, None, "--limit 0"),
    ],
)
def test_select_records_table(tmp_path: Path, kwargs: dict, expected: list[str] | None, error: str | None) -> None:
    from train.common import UsageError

    _, pairs = _fixture(tmp_path)
    records = [rec for rec, _ in pairs]
    if error:
        with pytest.raises(UsageError, match=error):
            select_records(records, **kwargs)
    else:
        assert [r.name for r in select_records(records, **kwargs)] == expected


# --------------------------------------------------------------------------- command line


def test_cli_full_mode_writes_report_with_real_models(tmp_path: Path, tiny_checkpoints: dict[str, Path]) -> None:
    from svhn_fixtures import make_svhn_split

    from train.evaluate import main

    root, records = make_svhn_split(tmp_path / "json_split", 3, seed=1, annotations="json")
    out = tmp_path / "eval"
    rc = main(["--data", str(root), "--detector", str(tiny_checkpoints["detector"]),
               "--classifier", str(tiny_checkpoints["classifier"]), "--out", str(out),
               "--image-numbers", "1-2", "--device", "cpu", "--no-progress"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 2 and report["digits"] == sum(len(r) for r in records[:2])
    assert report["ap_source"] == "detector"
    for key in ("number_accuracy", "digit_accuracy", "ap50", "ap"):
        assert 0.0 <= report[key] <= 1.0
    assert sum(map(sum, report["confusion"])) == report["digits"]
    assert len((out / "per_image.jsonl").read_text().splitlines()) == 2


def test_cli_full_mode_uses_the_thresholds_the_weight_files_recommend(tmp_path: Path, tiny_checkpoints) -> None:
    """As the recognizer's commands do: the files' thresholds unless an option overrides them."""
    from svhn_fixtures import make_svhn_split

    from recognizer.models import SmallCNN, save_checkpoint
    from train.evaluate import main

    root, _ = make_svhn_split(tmp_path / "split", 2, seed=3, annotations="json")
    cls = save_checkpoint(tmp_path / "cls11.pt", SmallCNN(num_classes=11, channels=(4, 8, 8)),
                          metadata={"not_digit_thresh": 0.37})
    base = ["--data", str(root), "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(cls),
            "--device", "cpu", "--no-progress", "--no-tta"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "report.json").read_text())["config"]["not_digit_thresh"] == 0.37
    assert main(base + ["--out", str(tmp_path / "b"), "--not-digit-thresh", "0.6"]) == 0
    assert json.loads((tmp_path / "b" / "report.json").read_text())["config"]["not_digit_thresh"] == 0.6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/nowhere", "--detector", "{det}"], "no such folder"),
        (["--data", "{tmp}", "--detector", "{det}"], "neither digitStruct.mat nor labels.json"),
        (["--data", "{split}"], "--data needs --detector"),
        (["--data", "{split}", "--crops", "x.npz"], "exactly one of"),
        (["--data", "{split}", "--detector", "{tmp}/missing.pt"], "--detector '{tmp}/missing.pt': no such file"),
        (["--data", "{split}", "--detector", "{cls}"], "is a classifier checkpoint, expected a detector"),
        (["--data", "{split}", "--detector", "{det}", "--det-threshold", "2"], "det_score_thresh=2.0"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, tiny_checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from svhn_fixtures import make_svhn_dir

    from train.evaluate import main

    split = make_svhn_dir(tmp_path / "data", 2)
    fill = {"tmp": str(tmp_path), "split": str(split), "cls": str(tiny_checkpoints["classifier"]),
            "det": str(tiny_checkpoints["detector"])}
    argv = [a.format(**fill) for a in args] + ["--classifier", fill["cls"], "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and err[0].startswith("train.evaluate: error: ")
    assert message.format(**fill) in err[0]


def test_cli_crops_mode_prints_accuracy_and_confusion(
    tmp_path: Path, tiny_checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from svhn_fixtures import make_crops_npz

    from train.evaluate import main

    npz = tmp_path / "crops.npz"
    make_crops_npz(npz, n=30)
    out = tmp_path / "eval"
    rc = main(["--crops", str(npz), "--npz-source-images", "11-30", "--classifier", str(tiny_checkpoints["classifier"]),
               "--out", str(out), "--device", "cpu"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    matrix = np.array(report["confusion"])
    assert report["count"] == 20 and matrix.shape == (10, 10) and matrix.sum() == 20
    assert report["digit_accuracy"] == pytest.approx(np.trace(matrix) / 20)
    printed = capsys.readouterr().out
    assert "true\\pred" in printed and f"per-digit accuracy: {report['digit_accuracy']:.4f} on 20 crops" in printed


def test_classify_crops_matches_the_model_argmax(tiny_checkpoints: dict[str, Path]) -> None:
    import torch

    from recognizer.models import load_checkpoint
    from recognizer.models.preprocess import crops_to_tensor
    from train.evaluate import classify_crops

    model = load_checkpoint(tiny_checkpoints["classifier"]).model
    crops = np.random.default_rng(0).integers(0, 255, (7, 32, 32, 3), dtype=np.uint8)
    got = classify_crops(model, crops, "cpu", batch_size=3)
    with torch.inference_mode():
        expected = model(crops_to_tensor(crops)).argmax(1).numpy()
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    assert classify_crops(model, crops[:0], "cpu").shape == (0,)


@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_cli_damaged_digitstruct_is_a_one_line_error(
    tmp_path: Path, tiny_checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str], how: str
) -> None:
    from svhn_fixtures import corrupt_file, make_svhn_dir

    from train.evaluate import main

    split = make_svhn_dir(tmp_path, 2)
    for cache in split.glob("*.cache.npz"):
        cache.unlink()
    corrupt_file(split / "digitStruct.mat", how)
    rc = main(["--data", str(split), "--detector", str(tiny_checkpoints["detector"]),
               "--classifier", str(tiny_checkpoints["classifier"]), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and "digitStruct.mat" in err[0]
    assert not (tmp_path / "o" / "report.json").exists()
