"""The classifier's "not a digit" class: labels, crop files, training with it, mining crops
from a detector's hits (train.mine) and evaluating such a classifier."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recognizer.models.labels import NOT_DIGIT_CLASS, NOT_DIGIT_LABEL, crop_labels_to_classes, label_map
from train.metrics import box_iou
from train.mine import label_detections, random_negative_boxes

FAST = ["--batch-size", "8", "--workers", "0", "--device", "cpu", "--no-progress", "--channels", "4", "8", "8"]


def test_crop_labels_to_classes() -> None:
    assert crop_labels_to_classes(np.array([10, 1, 0, -1, 9])).tolist() == [0, 1, 0, NOT_DIGIT_CLASS, 9]
    with pytest.raises(ValueError, match="-1 for a crop that is not a digit"):
        crop_labels_to_classes(np.array([3, 11]))
    with pytest.raises(ValueError):
        crop_labels_to_classes(np.array([-2]))
    assert label_map()["classifier"] == [str(d) for d in range(10)]
    assert label_map(11)["classifier"][-1] == "not-digit" and len(label_map(11)["classifier"]) == 11


def test_crop_dataset_keeps_not_digit_through_subset_and_concat(tmp_path: Path) -> None:
    from svhn_fixtures import make_crops_npz

    from train.datasets import CropDataset

    arrays = make_crops_npz(tmp_path / "a.npz", n=12)
    y = arrays["y"].copy()
    y[:4] = -1
    y[4] = 10  # raw SVHN zero
    np.savez(tmp_path / "b.npz", X=arrays["X"], y=y, source_image=arrays["source_image"])
    ds = CropDataset.from_npz(tmp_path / "b.npz")
    assert ds.labels[:5].tolist() == [-1, -1, -1, -1, 0]
    assert ds[0][1] == NOT_DIGIT_CLASS and ds[4][1] == 0
    both = CropDataset.concat(ds.subset(np.arange(6)), ds)
    # concatenating re-reads the labels: -1 must not turn into a digit, 0 must stay 0
    assert both.labels[:6].tolist() == [-1, -1, -1, -1, 0, ds.labels[5]]
    assert (both.classes == NOT_DIGIT_CLASS).sum() == 8


def test_label_detections_table() -> None:
    gt = np.array([[10, 10, 20, 30], [22, 10, 32, 30]], np.float32)
    digits = np.array([4, 7])
    dets = np.array([
        [10, 10, 20, 30],   # exactly the first digit
        [23, 11, 33, 31],   # slightly off the second: still a 7
        [60, 10, 70, 30],   # far away: not a digit
        [15, 10, 25, 30],   # half on each digit: left out
        [0, 0, 100, 60],    # covers both digits whole: left out (not a clean negative)
    ], np.float32)
    lab = label_detections(dets, gt, digits, pos_iou=0.5, neg_iou=0.2, neg_cover=0.4)
    assert lab.tolist() == [4, 7, NOT_DIGIT_LABEL, -2, -2]
    assert label_detections(dets, np.zeros((0, 4)), np.zeros(0), pos_iou=0.5, neg_iou=0.2, neg_cover=0.4).tolist() == [-1] * 5
    assert label_detections(np.zeros((0, 4)), gt, digits, pos_iou=0.5, neg_iou=0.2, neg_cover=0.4).tolist() == []
    iou = box_iou(dets[:2], gt)
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == 0.0


def test_random_negative_boxes_stay_off_the_digits_and_inside() -> None:
    gt = np.array([[40, 20, 55, 50], [57, 20, 72, 50]], np.float32)
    rng = np.random.default_rng(0)
    boxes = random_negative_boxes(rng, 120, 70, gt, 10, neg_iou=0.2, neg_cover=0.4)
    assert 5 <= len(boxes) <= 10
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 120 + 1e-3).all() and (boxes[:, 3] <= 70 + 1e-3).all()
    lab = label_detections(boxes, gt, np.array([1, 2]), pos_iou=0.5, neg_iou=0.2, neg_cover=0.4)
    assert (lab == NOT_DIGIT_LABEL).all()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    assert (h / w >= 1.2 - 1e-4).all() and (h / w <= 2.5 + 1e-4).all()


def test_mine_cli_writes_a_crop_file_the_trainer_reads(tmp_path: Path, tiny_checkpoints, capsys) -> None:
    from svhn_fixtures import make_svhn_split

    from train.classifier import main as train_main
    from train.datasets import CropDataset
    from train.mine import main

    root, records = make_svhn_split(tmp_path / "split", 5, seed=3, annotations="json")
    out = tmp_path / "mined.npz"
    # --score-thresh 1.0: an untrained detector scores nothing that high, so only the random
    # negatives are written (their number is known).
    rc = main(["--data", str(root), "--image-numbers", "2-4", "--detector", str(tiny_checkpoints["detector"]),
               "--out", str(out), "--score-thresh", "1.0", "--random-negatives", "3", "--threads", "1"])
    assert rc == 0
    z = np.load(out)
    assert set(z.files) == {"X", "y", "source_image", "det_score"}
    assert z["X"].shape[1:] == (32, 32, 3) and z["X"].dtype == np.uint8
    assert (z["y"] == NOT_DIGIT_LABEL).all() and (z["det_score"] == 1.0).all()
    assert set(z["source_image"].tolist()) <= {2, 3, 4} and 6 <= len(z["y"]) <= 9
    assert "not digits" in capsys.readouterr().out

    # With every detection kept, each mined crop is a digit, "not a digit", or left out.
    out2 = tmp_path / "all.npz"
    assert main(["--data", str(root), "--detector", str(tiny_checkpoints["detector"]), "--out", str(out2),
                 "--score-thresh", "0.0", "--threads", "1"]) == 0
    y2 = np.load(out2)["y"]
    assert ((y2 >= -1) & (y2 <= 9)).all()

    # The trainer reads the file and gives the model an 11th class.
    from svhn_fixtures import make_crops_npz

    digits = tmp_path / "digits.npz"
    make_crops_npz(digits, n=24)
    run = tmp_path / "run"
    assert train_main(["--train", str(digits), str(out), "--val-split", "0.25", "--epochs", "1",
                       "--out", str(run), *FAST]) == 0
    from recognizer.models import load_checkpoint

    ckpt = load_checkpoint(run / "best.pt", kind="classifier")
    assert ckpt.config["num_classes"] == 11 and ckpt.model(torch.zeros(2, 3, 32, 32)).shape == (2, 11)
    assert torch.load(run / "best.pt", weights_only=True)["labels"][-1] == "not-digit"
    assert len(CropDataset.from_npz(out)) == len(z["y"])


def test_fine_tuning_a_ten_class_classifier_on_not_digit_crops_widens_it(tmp_path: Path, tiny_checkpoints) -> None:
    from svhn_fixtures import make_crops_npz

    from recognizer.models import load_checkpoint
    from train.classifier import main as train_main
    from train.classifier import widen_classifier

    base = load_checkpoint(tiny_checkpoints["classifier"]).model
    x = torch.randn(4, 3, 32, 32)
    before = base(x)
    widen_classifier(base, 11)
    after = base(x)
    assert after.shape == (4, 11)
    assert torch.allclose(after[:, :10], before, atol=1e-5)
    # the new class starts below every trained one, so predictions do not change at first
    assert (after.argmax(1) == before.argmax(1)).all()

    arrays = make_crops_npz(tmp_path / "d.npz", n=24)
    y = arrays["y"].copy()
    y[::3] = -1
    np.savez(tmp_path / "mixed.npz", X=arrays["X"], y=y, source_image=arrays["source_image"])
    run = tmp_path / "ft"
    assert train_main(["--train", str(tmp_path / "mixed.npz"), "--val-split", "0.25", "--epochs", "1",
                       "--init", str(tiny_checkpoints["classifier"]), "--out", str(run),
                       *FAST[:-4]]) == 0
    ckpt = load_checkpoint(run / "last.pt", kind="classifier")
    assert ckpt.config["num_classes"] == 11 and ckpt.config["channels"] == [8, 16, 32]


def test_val_with_not_digit_crops_needs_them_in_train(tmp_path: Path, capsys) -> None:
    from svhn_fixtures import make_crops_npz

    from train.classifier import main as train_main

    arrays = make_crops_npz(tmp_path / "d.npz", n=16)
    y = arrays["y"].copy()
    y[:3] = -1
    np.savez(tmp_path / "val.npz", X=arrays["X"], y=y)
    rc = train_main(["--train", str(tmp_path / "d.npz"), "--val", str(tmp_path / "val.npz"), "--epochs", "1",
                     "--out", str(tmp_path / "r"), *FAST])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not a digit" in err[-1] and "INFO" not in err[-1]


def test_evaluate_crops_leaves_not_digit_crops_out_of_per_digit_accuracy(tmp_path: Path, capsys) -> None:
    from svhn_fixtures import make_crops_npz

    from recognizer.models import SmallCNN, save_checkpoint
    from train.evaluate import main as eval_main

    arrays = make_crops_npz(tmp_path / "d.npz", n=20)
    y = arrays["y"].copy()
    y[:5] = -1
    np.savez(tmp_path / "mixed.npz", X=arrays["X"], y=y)

    class AlwaysNotDigit(SmallCNN):
        def forward(self, x):
            out = torch.zeros(len(x), 11)
            out[:, 10] = 5.0
            out[:, 3] = 1.0  # best digit: 3
            return out

    from train.evaluate import classify_crops

    always = AlwaysNotDigit(num_classes=11, channels=(4, 8, 8))
    assert classify_crops(always, arrays["X"], "cpu").tolist() == [3] * 20
    assert classify_crops(always, arrays["X"], "cpu", digits_only=False).tolist() == [10] * 20

    ckpt = save_checkpoint(tmp_path / "c.pt", SmallCNN(num_classes=11, channels=(4, 8, 8)))
    assert eval_main(["--crops", str(tmp_path / "mixed.npz"), "--classifier", str(ckpt), "--out", str(tmp_path / "ev"),
                      "--device", "cpu", "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["count"] == 15 and report["not_digit_crops"] == 5
    assert 0.0 <= report["not_digit_rejected"] <= 1.0
    assert sum(map(sum, report["confusion"])) == 15
    assert "'not a digit' crops called so" in capsys.readouterr().out
