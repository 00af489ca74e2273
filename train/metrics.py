"""Evaluation metrics, pure: numpy in, numbers out (no model, no files).

* detection: box IoU, COCO's greedy matching, precision/recall, all-point AP@0.5 and the
  COCO-style AP@[.5:.95] (:func:`average_precision`, :func:`coco_average_precision`), and the
  same two figures from pycocotools' reference ``COCOeval`` (:func:`pycocotools_average_precision`);
* reading: whole-number and per-digit accuracy, confusion matrix, and the precision of the
  readings (extra digits outside every true box, invented numbers).

``train.evaluate`` reports them; ``train.detector`` validates with the AP functions and
``train.classifier`` prints the confusion matrix.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2).tolist())
"""IoU thresholds 0.50, 0.55, ..., 0.95 of COCO's AP@[.5:.95]."""

# --------------------------------------------------------------------------- detection


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of xyxy boxes.

    Args:
        a: ``(N, 4)`` xyxy.
        b: ``(M, 4)`` xyxy.

    Returns:
        ``(N, M)`` float64 IoU in [0, 1] (0 where a union is empty).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_detections(
    pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections to its ground truth (COCO's rule).

    Detections are taken by descending score; each takes the unmatched ground-truth box it
    overlaps most, if that IoU is at least ``iou_threshold``; otherwise it is a false positive.

    Args:
        pred_boxes: ``(K, 4)`` xyxy.
        pred_scores: ``(K,)`` confidences.
        gt_boxes: ``(G, 4)`` xyxy.
        iou_threshold: minimum IoU of a true positive.

    Returns:
        ``(scores, is_tp)``: the scores sorted descending ``(K,)`` and a bool ``(K,)`` array.
    """
    boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} predicted boxes but {len(scores)} scores; expected one score per box")
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    is_tp = np.zeros(len(boxes), dtype=bool)
    ious = box_iou(boxes, gt_boxes)
    taken = np.zeros(ious.shape[1], dtype=bool)
    for k in range(len(boxes)):
        if not len(taken):
            break
        cand = np.where(taken, -1.0, ious[k])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            taken[j] = True
            is_tp[k] = True
    return scores, is_tp


def precision_recall(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truths: Sequence[np.ndarray],
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Precision and recall after each detection, all images pooled, by descending score.

    Args:
        predictions: per image ``(boxes (K, 4) xyxy, scores (K,))``.
        ground_truths: per image ``(G, 4)`` xyxy boxes (same length as ``predictions``).
        iou_threshold: minimum IoU of a true positive.

    Returns:
        ``(precision, recall, num_gt)``; the arrays have one entry per detection.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(
            f"{len(predictions)} predictions but {len(ground_truths)} ground truths; expected one of each per image"
        )
    all_scores: list[np.ndarray] = []
    all_tp: list[np.ndarray] = []
    num_gt = 0
    for (boxes, scores), gt in zip(predictions, ground_truths):
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
        num_gt += len(gt)
        s, tp = match_detections(boxes, scores, gt, iou_threshold)
        all_scores.append(s)
        all_tp.append(tp)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    recall = tp_cum / num_gt if num_gt else np.zeros(len(tp))
    return precision.astype(np.float64), recall.astype(np.float64), num_gt


def average_precision(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truths: Sequence[np.ndarray],
    iou_threshold: float = 0.5,
) -> float:
    """Single-class average precision at one IoU threshold, all-point interpolated.

    The precision at each recall level is replaced by the best precision at that or any higher
    recall (the envelope), and AP is the area under that step curve (PASCAL VOC 2010+).

    Args:
        predictions: per image ``(boxes (K, 4) xyxy, scores (K,))``.
        ground_truths: per image ``(G, 4)`` xyxy boxes.
        iou_threshold: minimum IoU of a true positive.

    Returns:
        AP in [0, 1]; 1.0 for perfect predictions, 0.0 when there are ground-truth boxes but no
        detections, NaN when there is no ground-truth box at all (undefined, as COCO's -1).
    """
    precision, recall, num_gt = precision_recall(predictions, ground_truths, iou_threshold)
    if num_gt == 0:
        return float("nan")
    if len(precision) == 0:
        return 0.0
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    # Envelope: precision never rises as recall grows.
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def coco_average_precision(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truths: Sequence[np.ndarray],
    thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
) -> float:
    """COCO-style AP@[.5:.95]: :func:`average_precision` averaged over IoU ``thresholds``.

    Returns:
        The mean in [0, 1], or NaN when there is no ground-truth box.
    """
    values = [average_precision(predictions, ground_truths, t) for t in thresholds]
    return float("nan") if any(np.isnan(values)) else float(np.mean(values))


def pycocotools_average_precision(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truths: Sequence[np.ndarray],
    *,
    max_detections: int = 100,
) -> tuple[float, float]:
    """AP@0.5 and AP@[.5:.95] computed by pycocotools' ``COCOeval`` (the reference code).

    The inputs are those of :func:`average_precision` (one class "digit", xyxy boxes), given to
    COCOeval as one COCO image per entry, every ground-truth box ``iscrowd`` 0 and the area
    range "all". The figures are COCO's ``stats[1]`` and ``stats[0]``: for each IoU threshold,
    the precision envelope is sampled at the 101 recall points 0, 0.01, ..., 1 (0 beyond the
    highest recall reached) and averaged, where :func:`average_precision` takes the exact area
    under the envelope. Matching is the same greedy rule, so the two agree wherever the envelope
    is flat (perfect detections, none found, or every box found after the same false positives)
    and otherwise differ by at most 0.01 per threshold: half of the boxes found at precision 1
    is 51/101 for COCO and 0.5 here. COCO also keeps only the ``max_detections`` best-scoring
    detections of each image (the bound holds when no image has more).

    Returns:
        ``(ap50, ap)`` in [0, 1]; NaN when there is no ground-truth box (COCO's -1).

    Raises:
        ImportError: pycocotools is not installed (``pip install pycocotools``).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(predictions) != len(ground_truths):
        raise ValueError(
            f"{len(predictions)} predictions but {len(ground_truths)} ground truths; expected one of each per image"
        )

    def xywh(boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)

    images = [{"id": i + 1} for i in range(len(ground_truths))]
    truths: list[dict[str, Any]] = []
    for i, gt in enumerate(ground_truths):
        for x, y, w, h in xywh(gt).tolist():
            truths.append({"id": len(truths) + 1, "image_id": i + 1, "category_id": 1,
                           "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    if not truths:
        return float("nan"), float("nan")
    detections: list[dict[str, Any]] = []
    for i, (boxes, scores) in enumerate(predictions):
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        b = xywh(boxes)
        if len(b) != len(s):
            raise ValueError(f"{len(b)} predicted boxes but {len(s)} scores; expected one score per box")
        detections.extend({"image_id": i + 1, "category_id": 1, "bbox": box, "score": score}
                          for box, score in zip(b.tolist(), s.tolist()))
    if not detections:
        return 0.0, 0.0  # COCOeval's loadRes cannot take an empty list; its answer would be 0
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": truths, "categories": [{"id": 1, "name": "digit"}]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluation = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluation.params.maxDets = [int(max_detections)]
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: (IoU thresholds, recall points, classes, area ranges, max detections)
    precision = evaluation.eval["precision"][:, :, 0, 0, -1]

    def mean(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(np.mean(valid)) if valid.size else float("nan")

    return mean(precision[0]), mean(precision)


# --------------------------------------------------------------------------- reading


def accuracy(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """Fraction of positions where ``predicted`` equals ``expected`` (digits or number strings).

    Returns:
        Accuracy in [0, 1]; NaN for empty inputs.

    Raises:
        ValueError: when the lengths differ.
    """
    p, e = list(predicted), list(expected)
    if len(p) != len(e):
        raise ValueError(f"{len(p)} predictions but {len(e)} expected values; expected equal lengths")
    if not p:
        return float("nan")
    return float(np.mean([a == b for a, b in zip(p, e)]))


def confusion_matrix(predicted: Sequence[int], expected: Sequence[int], num_classes: int = 10) -> np.ndarray:
    """Counts ``(num_classes, num_classes)`` int64: row = true class, column = predicted class."""
    p = np.asarray(predicted, dtype=np.int64).reshape(-1)
    e = np.asarray(expected, dtype=np.int64).reshape(-1)
    if len(p) != len(e):
        raise ValueError(f"{len(p)} predictions but {len(e)} expected values; expected equal lengths")
    bad = (p < 0) | (p >= num_classes) | (e < 0) | (e >= num_classes)
    if bad.any():
        raise ValueError(f"class index outside 0..{num_classes - 1} in confusion matrix input")
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (e, p), 1)
    return m


def format_confusion(matrix: np.ndarray) -> str:
    """A plain-text table of a confusion matrix (rows true, columns predicted)."""
    n = matrix.shape[0]
    width = max(4, len(str(int(matrix.max()))) + 1 if matrix.size else 4)
    head = "true\\pred" + "".join(f"{c:>{width}}" for c in range(n)) + f"{'acc':>7}"
    lines = [head]
    for r in range(n):
        total = matrix[r].sum()
        acc = f"{matrix[r, r] / total:7.3f}" if total else f"{'-':>7}"
        lines.append(f"{r:>9}" + "".join(f"{int(v):>{width}}" for v in matrix[r]) + acc)
    return "\n".join(lines)


def centres_inside(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """``(K, R)`` bool: the centre of box k lies inside region r (both xyxy, edges included)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    r = np.asarray(regions, np.float64).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    return (cx[:, None] >= r[None, :, 0]) & (cx[:, None] <= r[None, :, 2]) \
        & (cy[:, None] >= r[None, :, 1]) & (cy[:, None] <= r[None, :, 3])


def grow_by_height(boxes: np.ndarray, k: float) -> np.ndarray:
    """``(N, 4)`` xyxy boxes grown on every side by ``k`` times their own height (float64)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    h = (b[:, 3] - b[:, 1])[:, None] * k
    return np.hstack([b[:, :2] - h, b[:, 2:] + h])


def extra_digits(read_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Which read digits lie outside every true digit box (their centre is in none).

    Args:
        read_boxes: ``(K, 4)`` xyxy boxes of the digits the pipeline read (all readings).
        gt_boxes: ``(G, 4)`` xyxy true digit boxes.

    Returns:
        ``(K,)`` bool: True for a digit invented where the image has none (all of them when
        there is no true box).
    """
    return ~centres_inside(read_boxes, gt_boxes).any(axis=1)


def digit_boxes(reading: Any) -> np.ndarray:
    """``(K, 4)`` float64 xyxy boxes of a reading's digits."""
    return np.array([d.box for d in reading.digits], np.float64).reshape(-1, 4)


def reading_precision(readings: Sequence[Any], gt_boxes: np.ndarray) -> tuple[int, int]:
    """``(extra digits, invented numbers)`` of one image's readings against its true boxes
    (see :func:`extra_digits` and :func:`invented_numbers`)."""
    per = [digit_boxes(r) for r in readings]
    all_read = np.concatenate(per) if per else np.zeros((0, 4))
    return int(extra_digits(all_read, gt_boxes).sum()), invented_numbers(per, gt_boxes)


def invented_numbers(readings_boxes: Sequence[np.ndarray], gt_boxes: np.ndarray) -> int:
    """How many readings of one image are invented: every one of their digits is an extra digit.

    Args:
        readings_boxes: per reading, ``(K, 4)`` xyxy boxes of its digits.
        gt_boxes: ``(G, 4)`` xyxy true digit boxes.
    """
    return int(sum(1 for b in readings_boxes if len(np.asarray(b).reshape(-1, 4)) and extra_digits(b, gt_boxes).all()))


def top_text(readings: Sequence[Any]) -> str:
    """Text of the most confident reading ("" when nothing was read)."""
    if not readings:
        return ""
    return max(readings, key=lambda r: r.confidence).text


def nan_to_none(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return round(float(value), 6)
