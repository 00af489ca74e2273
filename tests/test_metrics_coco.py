"""train.metrics: our detection AP against pycocotools' COCOeval on small synthetic cases.

Both match detections greedily by score at IoU >= t, so they must agree wherever the
precision envelope is flat; they differ by COCO's convention of sampling the envelope at 101
recall points (0, 0.01, ..., 1) where ours takes the exact area under it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from train.metrics import average_precision, coco_average_precision, pycocotools_average_precision

pytest.importorskip("pycocotools")

GT = [
    np.array([[0, 0, 10, 20], [20, 0, 30, 20]], np.float32),
    np.array([[5, 5, 15, 25]], np.float32),
    np.array([[40, 10, 52, 30], [60, 10, 72, 30], [80, 10, 92, 30]], np.float32),
]


def _ours(predictions: list, truths: list) -> tuple[float, float]:
    return average_precision(predictions, truths, 0.5), coco_average_precision(predictions, truths)


def _dets(boxes: np.ndarray, scores: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


def test_perfect_detections_agree_at_one() -> None:
    predictions = [_dets(g, [0.9] * len(g)) for g in GT]
    assert _ours(predictions, GT) == pytest.approx((1.0, 1.0))
    assert pycocotools_average_precision(predictions, GT) == pytest.approx((1.0, 1.0))


def test_no_detections_agree_at_zero_and_no_truth_is_nan() -> None:
    empty = [_dets(np.zeros((0, 4)), []) for _ in GT]
    assert _ours(empty, GT) == (0.0, 0.0)
    assert pycocotools_average_precision(empty, GT) == (0.0, 0.0)
    no_truth = [np.zeros((0, 4), np.float32) for _ in GT]
    some = [_dets(g, [0.5] * len(g)) for g in GT]
    assert all(math.isnan(v) for v in _ours(some, no_truth))
    assert all(math.isnan(v) for v in pycocotools_average_precision(some, no_truth))


def test_a_flat_envelope_agrees_exactly_at_every_threshold() -> None:
    # The highest-scoring detection of the first image is a false positive, then every true box
    # is found: precision k/(k+1) rises to 6/7 at recall 1, so the envelope is 6/7 everywhere.
    # Boxes shifted by one pixel make IoU fall below the higher thresholds the same way for both.
    shifted = [g + np.array([1, 0, 1, 0], np.float32) for g in GT]
    predictions = [_dets(np.concatenate([[[100, 100, 110, 120]], shifted[0]]), [0.99, 0.8, 0.7]),
                   _dets(shifted[1], [0.6]), _dets(shifted[2], [0.5, 0.4, 0.3])]
    ours50, ours = _ours(predictions, GT)
    coco50, coco = pycocotools_average_precision(predictions, GT)
    assert ours50 == pytest.approx(6 / 7) and coco50 == pytest.approx(6 / 7)
    # The one-pixel shifts give IoU 9/11 (10-px-wide boxes) and 11/13 (12-px): every box is found
    # at the thresholds 0.50..0.80 and none at 0.85..0.95, so AP@[.5:.95] is 7/10 of 6/7.
    assert ours == pytest.approx(0.6) and coco == pytest.approx(0.6)


def test_half_found_differs_by_the_101_point_convention() -> None:
    # Three of the six boxes found at precision 1, the rest missed: the envelope is 1 up to
    # recall 0.5 and 0 beyond. The exact area is 0.5; COCO averages the envelope at the 101
    # recall points 0, 0.01, ..., 1, of which 51 (0 to 0.50) lie under it: 51/101.
    predictions = [_dets(GT[0][:1], [0.9]), _dets(GT[1], [0.8]), _dets(GT[2][:1], [0.7])]
    ours50, ours = _ours(predictions, GT)
    coco50, coco = pycocotools_average_precision(predictions, GT)
    assert ours50 == pytest.approx(0.5) and ours == pytest.approx(0.5)
    assert coco50 == pytest.approx(51 / 101) and coco == pytest.approx(51 / 101)


def test_random_cases_stay_within_the_interpolation_bound() -> None:
    # |area - 101-point mean| <= 1/101 per threshold, whatever the detections.
    rng = np.random.default_rng(0)
    for _ in range(20):
        truths, predictions = [], []
        for _ in range(4):
            g = rng.uniform(0, 80, (rng.integers(0, 4), 2))
            g = np.concatenate([g, g + rng.uniform(8, 20, g.shape)], axis=1).astype(np.float32)
            noise = rng.normal(0, 2, g.shape).astype(np.float32)
            extra = rng.uniform(0, 100, (rng.integers(0, 3), 2))
            extra = np.concatenate([extra, extra + 10], axis=1).astype(np.float32)
            boxes = np.concatenate([g + noise, extra])
            truths.append(g)
            predictions.append(_dets(boxes, rng.uniform(0, 1, len(boxes)).tolist()))
        ours50, ours = _ours(predictions, truths)
        coco50, coco = pycocotools_average_precision(predictions, truths)
        if math.isnan(ours50):
            assert math.isnan(coco50)
            continue
        assert abs(ours50 - coco50) <= 1 / 101 + 1e-9
        assert abs(ours - coco) <= 1 / 101 + 1e-9


def test_coco_keeps_only_max_detections_per_image() -> None:
    # Ten false positives score above the one true box: COCO with max_detections=5 never sees it.
    fps = np.array([[100 + 20 * k, 0, 110 + 20 * k, 20] for k in range(10)], np.float32)
    predictions = [_dets(np.concatenate([fps, GT[1]]), [0.9] * 10 + [0.1])]
    assert average_precision(predictions, [GT[1]], 0.5) == pytest.approx(1 / 11)
    assert pycocotools_average_precision(predictions, [GT[1]])[0] == pytest.approx(1 / 11)
    assert pycocotools_average_precision(predictions, [GT[1]], max_detections=5) == (0.0, 0.0)


def test_mismatched_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="one of each per image"):
        pycocotools_average_precision([_dets(GT[0], [1, 1])], GT)
    with pytest.raises(ValueError, match="one score per box"):
        pycocotools_average_precision([_dets(GT[0], [1.0])], GT[:1])
