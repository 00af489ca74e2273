"""Measure the recognizer on SVHN-format data: ``python -m train.evaluate``.

Two modes::

    # full pipeline on an SVHN-format folder (digitStruct.mat or labels.json + images)
    python -m train.evaluate --data DIR --detector DET.pt --classifier CLS.pt [--out DIR]

    # the classifier alone on 32x32 crops (folders, .mat, .npz, SVHN dirs)
    python -m train.evaluate --crops SPEC [SPEC ...] --classifier CLS.pt

The full mode reports:

* whole-number accuracy - the top reading (highest confidence) of the full pipeline
  (``recognizer.engine.Recognizer``) spells the ground-truth house number exactly;
* per-digit accuracy of the classifier on ground-truth crops (cropped with
  ``recognizer.preprocess.crop_digits``, as at inference);
* precision of the reading: extra digits per image (read digits whose centre lies in no true
  digit box) and the share of images with an invented number (a reading made only of such
  digits), over every reading the pipeline returns, not only the top one;
* detection AP@0.5 and COCO-style AP@[.5:.95] of the detector alone (single class);
* images per second of the pipeline;

and writes ``report.json``, ``per_image.jsonl`` and a ``failures/`` folder of drawn mistakes.

The metric functions at the top are pure (numpy in, floats out) so tests can check them.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("train.evaluate")

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2).tolist())
"""IoU thresholds 0.50, 0.55, ..., 0.95 of COCO's AP@[.5:.95]."""

# =========================================================================== metrics (pure)


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


def _nan_to_none(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return round(float(value), 6)


# =========================================================================== data


def read_split(root: str | Path) -> Any:
    """Annotations of an SVHN-format folder (``train.datasets.load_split``), as a one-line UsageError on failure.

    Returns:
        ``train.datasets.Split``: ``records`` (``SVHNImage``) and ``image_root``.
    """
    from train.common import UsageError
    from train.datasets import load_split

    if not Path(root).exists():
        raise UsageError(f"--data {str(root)!r}: no such folder; expected an SVHN-format folder")
    try:
        return load_split(root)
    except (OSError, ValueError) as exc:  # DatasetError, SVHNFormatError
        raise UsageError(f"--data {str(root)!r}: {exc}") from exc


def select_records(
    records: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    numbers: str | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Filter records by exact name (``"train/5.png"`` or ``"5.png"``), image number ranges and a count.

    Raises:
        UsageError: a requested name is absent or nothing is selected.
    """
    from train.common import UsageError, in_ranges, parse_ranges
    from train.datasets import image_number

    selected = list(records)
    if names:
        by_name = {}
        for r in selected:
            by_name.setdefault(r.name, r)
            by_name.setdefault(Path(r.name).name, r)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UsageError(f"--names: {missing[0]!r} is not in the annotations (e.g. {selected[0].name!r})"
                             if selected else f"--names: {missing[0]!r} is not in the annotations")
        selected = [by_name[n] for n in names]
    if numbers:
        ranges = parse_ranges(numbers)
        selected = [r for r in selected if (k := image_number(r.name)) is not None and in_ranges(k, ranges)]
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit {limit} must be at least 1")
        selected = selected[:limit]
    if not selected:
        raise UsageError("no images selected: the split is empty or the filters match nothing")
    return selected


# =========================================================================== evaluation


Detections = list[tuple[np.ndarray, np.ndarray]]


def _clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [w, h, w, h])


def _readings_as_detections(readings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Digit boxes and detector scores of a frame's readings (AP when no raw detector is given)."""
    digits = [d for r in readings for d in r.digits]
    if not digits:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return (np.array([d.box for d in digits], np.float32), np.array([d.det_score for d in digits], np.float32))


def draw_failure(image: np.ndarray, readings: Sequence[Any], truth_boxes: np.ndarray, truth: str, read: str) -> np.ndarray:
    """The frame with the readings (``recognizer.render``), ground-truth boxes in blue and a caption."""
    import cv2

    try:
        from recognizer.render import draw_readings

        out = draw_readings(image, readings)
    except ImportError:  # pragma: no cover - render ships with the package
        out = image.copy()
    for x1, y1, x2, y2 in np.asarray(truth_boxes).reshape(-1, 4):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (255, 128, 0), 1)
    # SVHN images are often ~50 px wide: enlarge small ones (nearest, to keep pixels honest)
    # so the drawing and the caption can be read.
    factor = int(np.ceil(320 / out.shape[1])) if out.shape[1] < 320 else 1
    if factor > 1:
        out = cv2.resize(out, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    caption = f"truth {truth}  read {read or '-'}"
    scale = max(0.4, min(1.0, out.shape[1] / 500))
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bar = np.full((th + base + 8, out.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, caption, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 200), 1, cv2.LINE_AA)
    return np.vstack([bar, out])


def evaluate_split(
    recognizer: Any,
    records: Sequence[Any],
    image_root: str | Path,
    *,
    batch_size: int = 8,
    detect: Callable[[Sequence[np.ndarray]], Detections] | None = None,
    classify: Callable[[np.ndarray], np.ndarray] | None = None,
    out_dir: str | Path | None = None,
    max_failures: int = 100,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Run the pipeline on annotated images and measure it.

    Args:
        recognizer: anything with ``recognize(images) -> list[list[Reading]]``.
        records: ``SVHNImage`` annotations (``name``, ``xyxy``, ``digits``, ``text``).
        image_root: folder the record names are relative to.
        batch_size: images per ``recognize`` call.
        detect: raw detector ``images -> [(boxes (K,4) xyxy, scores (K,))]`` for AP; when None,
            AP is computed from the readings' digit boxes and ``det_score``.
        classify: ``crops (N,32,32,3) uint8 RGB -> digits (N,)`` for per-digit accuracy on
            ground-truth crops; None skips that metric.
        out_dir: when given, ``per_image.jsonl`` and ``failures/`` are written there.
        max_failures: at most this many failure images are drawn.
        show_progress: tqdm bar.

    Returns:
        The report dict (see ``main``); metrics that cannot be computed are None.
    """
    import cv2

    from recognizer.preprocess import crop_digits
    from train.common import chunks, progress
    from train.datasets import read_image

    image_root = Path(image_root)
    # Ground-truth crops are framed as the pipeline frames its own (same margin).
    crop_pad = float(getattr(getattr(recognizer, "config", None), "crop_pad", 0.0))
    out = Path(out_dir) if out_dir is not None else None
    failures_dir = out / "failures" if out is not None else None
    if failures_dir is not None:
        failures_dir.mkdir(parents=True, exist_ok=True)
    per_image = open(out / "per_image.jsonl", "w", encoding="utf-8") if out is not None else None  # noqa: SIM115

    truths_text: list[str] = []
    read_text: list[str] = []
    predictions: Detections = []
    gt_boxes: list[np.ndarray] = []
    digit_pred: list[int] = []
    digit_true: list[int] = []
    extra_per_image: list[int] = []
    invented_per_image: list[int] = []
    skipped: list[dict[str, str]] = []
    stage: dict[str, float] = {}
    seconds = 0.0
    drawn = 0
    try:
        batches = list(chunks(list(records), max(1, batch_size)))
        for batch in progress(batches, desc="evaluate", enabled=show_progress):
            recs, images = [], []
            for rec in batch:
                image, reason = read_image(image_root / rec.name)
                if image is None:
                    log.warning("skipping %s: %s", image_root / rec.name, reason)
                    skipped.append({"name": rec.name, "reason": str(reason)})
                    continue
                recs.append(rec)
                images.append(image)
            if not images:
                continue
            t0 = time.perf_counter()
            readings = recognizer.recognize(images)
            seconds += time.perf_counter() - t0
            if len(readings) != len(images):
                raise RuntimeError(f"recognize returned {len(readings)} results for {len(images)} images")
            for k, v in (getattr(recognizer, "last_timings", None) or {}).items():
                stage[k] = stage.get(k, 0.0) + float(v)
            dets = detect(images) if detect is not None else [_readings_as_detections(r) for r in readings]
            for rec, image, frame_readings, det in zip(recs, images, readings, dets):
                truth, read = rec.text, top_text(frame_readings)
                truths_text.append(truth)
                read_text.append(read)
                predictions.append(det)
                gt = _clip_boxes(rec.xyxy, image.shape)
                gt_boxes.append(gt)
                extra, invented = reading_precision(frame_readings, gt)
                extra_per_image.append(extra)
                invented_per_image.append(invented)
                if classify is not None and len(rec.digits):
                    crops = crop_digits(image, rec.xyxy, pad=crop_pad)
                    digit_pred.extend(int(d) for d in np.asarray(classify(crops)).reshape(-1))
                    digit_true.extend(int(d) for d in rec.digits)
                if per_image is not None:
                    per_image.write(json.dumps({
                        "name": rec.name, "truth": truth, "read": read, "correct": truth == read,
                        "extra_digits": extra_per_image[-1], "invented_numbers": invented_per_image[-1],
                        "readings": [r.to_dict() for r in frame_readings],
                    }) + "\n")
                if truth != read and failures_dir is not None and drawn < max_failures:
                    drawing = draw_failure(image, frame_readings, gt, truth, read)
                    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(rec.name).with_suffix("").as_posix())
                    cv2.imwrite(str(failures_dir / f"{safe}_truth{truth}_read{read or 'none'}.png"), drawing)
                    drawn += 1
    finally:
        if per_image is not None:
            per_image.close()

    n = len(truths_text)
    report: dict[str, Any] = {
        "images": n,
        "skipped": skipped,
        "number_accuracy": _nan_to_none(accuracy(read_text, truths_text)),
        "numbers_correct": int(sum(a == b for a, b in zip(read_text, truths_text))),
        "digit_accuracy": _nan_to_none(accuracy(digit_pred, digit_true)) if classify is not None else None,
        "digits": len(digit_true),
        "extra_digits_per_image": round(float(np.mean(extra_per_image)), 4) if n else None,
        "images_with_extra_digits": _nan_to_none(float(np.mean(np.asarray(extra_per_image) > 0))) if n else None,
        "images_with_invented_number": _nan_to_none(float(np.mean(np.asarray(invented_per_image) > 0))) if n else None,
        "ap50": _nan_to_none(average_precision(predictions, gt_boxes, 0.5)),
        "ap": _nan_to_none(coco_average_precision(predictions, gt_boxes)),
        "ap_source": "detector" if detect is not None else "readings",
        "images_per_second": round(n / seconds, 3) if seconds > 0 else None,
        "seconds": round(seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in stage.items()},
        "failures_drawn": drawn,
    }
    if classify is not None:
        report["confusion"] = confusion_matrix(digit_pred, digit_true).tolist()
    return report


def crop_log_probs(model: Any, crops: np.ndarray, device: Any, batch_size: int = 512, *, tta: bool = True) -> np.ndarray:
    """Classifier log-probabilities ``(N, C)`` float32 for ``(N, 32, 32, 3)`` uint8 RGB crops.

    ``tta``: average over the engine's test-time views (as the recognizer classifies still
    images by default); see :func:`recognizer.engine.classifier_log_probs`.
    """
    import torch

    from recognizer.engine import classifier_log_probs

    model.eval()
    parts: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            parts.append(classifier_log_probs(model, crops[start : start + batch_size], device, tta=tta).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)


def classify_crops(
    model: Any, crops: np.ndarray, device: Any, batch_size: int = 512, *, digits_only: bool = True, tta: bool = True
) -> np.ndarray:
    """Classifier predictions ``(N,)`` int64 for ``(N, 32, 32, 3)`` uint8 RGB crops.

    ``digits_only``: the most probable digit 0..9 even where the classifier has a "not a digit"
    class (per-digit accuracy asks which digit a true digit crop shows); else any class.
    ``tta``: as for :func:`crop_log_probs`.
    """
    logp = crop_log_probs(model, crops, device, batch_size, tta=tta)
    return (logp[:, :10] if digits_only else logp).argmax(1).astype(np.int64)


# =========================================================================== command line


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="Measure the detector + classifier on SVHN-format data, or the classifier alone on crops.",
        add_help=add_help,
    )
    p.add_argument("--data", metavar="DIR", help="SVHN-format folder: digitStruct.mat or labels.json + images")
    p.add_argument("--crops", nargs="+", metavar="SPEC", help="classifier-only mode: crop folders, .mat, .npz, SVHN folders")
    p.add_argument("--detector", metavar="CKPT", help="detector checkpoint (needed with --data)")
    p.add_argument("--classifier", metavar="CKPT", required=True, help="classifier checkpoint")
    p.add_argument("--out", metavar="DIR", default="runs/evaluate",
                   help="writes report.json, per_image.jsonl and failures/ here (default runs/evaluate)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="evaluate only these image names")
    p.add_argument("--image-numbers", metavar="RANGES", help="evaluate only images whose number is in RANGES, e.g. 129-256")
    p.add_argument("--npz-source-images", metavar="RANGES", help="with --crops: keep .npz crops whose source_image is in RANGES")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate at most N images")
    p.add_argument("--batch-size", type=int, default=8, help="images per recognizer call")
    p.add_argument("--det-threshold", type=float, default=None, help="detector score threshold of the pipeline (default: the engine's)")
    p.add_argument("--min-digit-score", type=float, default=None, help="classifier probability below which a digit is dropped")
    p.add_argument("--not-digit-thresh", type=float, default=None,
                   help="drop a detection whose 'not a digit' probability is at least this (classifiers with that class)")
    p.add_argument("--no-tta", action="store_true",
                   help="classify each crop once instead of averaging over shifted/zoomed views (the recognizer's default)")
    p.add_argument("--max-failures", type=int, default=100, help="draw at most this many failures")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _write_report(out: Path, report: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _evaluate_crops(args: argparse.Namespace, device: Any) -> int:
    from train.classifier import load_crops
    from train.common import load_model_checkpoint

    data = load_crops(args.crops, args.npz_source_images, "--crops")
    crops, labels = data.images, data.labels
    if args.limit is not None:
        crops, labels = crops[: args.limit], labels[: args.limit]
    ckpt = load_model_checkpoint(args.classifier, "classifier", "--classifier")
    model = ckpt.model.to(device)
    t0 = time.perf_counter()
    logp = crop_log_probs(model, crops, device, tta=not args.no_tta)
    seconds = time.perf_counter() - t0
    # Crops labelled "not a digit" (-1) have no digit to get right: per-digit accuracy leaves
    # them out, and the report says how many of them the classifier called "not a digit".
    is_digit = labels >= 0
    not_digit_rejected = None
    if (~is_digit).any() and logp.shape[1] > 10:
        not_digit_rejected = float(np.mean(logp[~is_digit].argmax(1) == 10))
    preds, labels = logp[is_digit, :10].argmax(1), labels[is_digit]
    matrix = confusion_matrix(preds, labels)
    acc = accuracy(preds.tolist(), labels.tolist())
    report = {
        "mode": "crops",
        "crops": list(args.crops),
        "filter": args.npz_source_images,
        "classifier": args.classifier,
        "count": int(len(labels)),
        "digit_accuracy": _nan_to_none(acc),
        "confusion": matrix.tolist(),
        "not_digit_crops": int((~is_digit).sum()),
        "not_digit_rejected": not_digit_rejected,
        "crops_per_second": round(len(is_digit) / seconds, 1) if seconds > 0 else None,
    }
    path = _write_report(Path(args.out), report)
    print(format_confusion(matrix))
    print(f"per-digit accuracy: {_fmt(report['digit_accuracy'])} on {len(labels)} crops (report: {path})")
    if not_digit_rejected is not None:
        print(f"'not a digit' crops called so: {not_digit_rejected:.4f} of {report['not_digit_crops']}")
    return 0


def _evaluate_data(args: argparse.Namespace, device: Any) -> int:
    from dataclasses import asdict, replace

    from recognizer.engine import Recognizer, config_from_metadata
    from train.common import UsageError, load_model_checkpoint

    if not args.detector:
        raise UsageError("--data needs --detector CKPT (or use --crops to evaluate the classifier alone)")
    det = load_model_checkpoint(args.detector, "detector", "--detector")
    cls = load_model_checkpoint(args.classifier, "classifier", "--classifier")
    split = read_split(args.data)
    records = select_records(split.records, names=args.names, numbers=args.image_numbers, limit=args.limit)
    # Without --det-threshold, the threshold the detector file recommends (as the CLI uses it).
    # The thresholds the files recommend unless an option overrides them, as the CLI does.
    extra = {"min_digit_score": args.min_digit_score} if args.min_digit_score is not None else {}
    try:
        config = config_from_metadata(det.metadata, cls.metadata, det_score_thresh=args.det_threshold,
                                      not_digit_thresh=args.not_digit_thresh, tta=not args.no_tta, **extra)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    recognizer = Recognizer(det.model, cls.model, device=device, config=config)
    # AP needs every detection the model makes, not only those the pipeline keeps: a second
    # view of the same models with no score threshold.
    raw = Recognizer(det.model, cls.model, device=device, config=replace(config, det_score_thresh=0.0))
    out = Path(args.out)
    log.info("evaluating %d images of %s", len(records), args.data)
    report = evaluate_split(
        recognizer, records, split.image_root, batch_size=args.batch_size, detect=raw.detect,
        classify=lambda crops: recognizer.classify(crops)[0], out_dir=out,
        max_failures=args.max_failures, show_progress=not args.no_progress,
    )
    if report["images"] == 0:
        raise UsageError(f"--data {args.data!r}: none of the {len(records)} selected images could be read")
    report = {
        "mode": "data", "data": str(args.data), "detector": str(args.detector), "classifier": str(args.classifier),
        "filters": {"names": args.names, "image_numbers": args.image_numbers, "limit": args.limit},
        "device": str(recognizer.device), "config": asdict(config),
        **report,
    }
    path = _write_report(out, report)
    print(f"images: {report['images']} (skipped {len(report['skipped'])})")
    print(f"whole-number accuracy: {_fmt(report['number_accuracy'])} ({report['numbers_correct']}/{report['images']})")
    print(f"per-digit accuracy on ground-truth crops: {_fmt(report['digit_accuracy'])} ({report['digits']} digits)")
    print(f"extra digits (outside every true box): {report['extra_digits_per_image']:.3f} per image, "
          f"in {_fmt(report['images_with_extra_digits'])} of images; "
          f"images with an invented number: {_fmt(report['images_with_invented_number'])}")
    print(f"detection AP@0.5: {_fmt(report['ap50'])}  AP@[.5:.95]: {_fmt(report['ap'])}")
    print(f"speed: {report['images_per_second']} images/s on {report['device']} (batch {args.batch_size})")
    print(f"report: {path}; failures drawn: {report['failures_drawn']} in {out / 'failures'}")
    return 0


def _main(argv: Sequence[str] | None) -> int:
    from train.common import UsageError, choose_device, setup_logging

    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    if bool(args.data) == bool(args.crops):
        raise UsageError("give exactly one of --data DIR (full pipeline) or --crops SPEC (classifier only)")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size} must be at least 1")
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    return _evaluate_crops(args, device) if args.crops else _evaluate_data(args, device)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit code (2 for bad input)."""
    from train.common import run_main

    return run_main(_main, argv, "train.evaluate")


if __name__ == "__main__":
    sys.exit(main())
