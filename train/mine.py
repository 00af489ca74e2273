"""Mine classifier crops from a detector's own output: ``python -m train.mine``.

The classifier sees what the detector hands it: boxes that are a little off, and boxes on
door edges, poles and cut-off neighbours that are no digit at all. This runs a detector over
an SVHN-format folder (``digitStruct.mat`` or ``labels.json`` + images) and writes a crop file
for ``python -m train.classifier``:

* a detection that overlaps a true digit box (IoU >= ``--pos-iou``) becomes a crop of that
  digit, cut where the detector put its box;
* a detection that overlaps no true digit (IoU < ``--neg-iou``, and covering less than
  ``--neg-cover`` of every true box) becomes a "not a digit" crop (label -1, see
  :mod:`recognizer.models.labels`); detections in between are left out;
* ``--random-negatives K`` adds K random digit-shaped boxes per image away from the digits.

Output: ``.npz`` with ``X`` ``(N, 32, 32, 3)`` uint8 RGB, ``y`` ``(N,)`` int64 (digits 0..9, -1
for not a digit), ``source_image`` ``(N,)`` int64 (image number, -1 if the name has none) and
``det_score`` ``(N,)`` float32 (1.0 for random negatives). Cropping goes through
:func:`recognizer.models.preprocess.crop_digits`, the same path as inference.

Example::

    python -m train.mine --data ../shared/data/svhn_real/full --image-numbers 1-96 \\
        --detector weights/detector_light.pt --out data/mined_real.npz
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recognizer.models.labels import NOT_DIGIT_LABEL
from train.common import UsageError, run_main, save_npz, setup_logging
from train.inputs import read_split, select_records
from train.metrics import box_iou

log = logging.getLogger("train.mine")


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas ``(len(a), len(b))`` float32 of ``xyxy`` boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return (np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)).astype(np.float32)


def label_detections(
    det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_digits: np.ndarray, *, pos_iou: float, neg_iou: float, neg_cover: float
) -> np.ndarray:
    """The crop label of each detection: its true digit, -1 (not a digit), or -2 (leave out).

    Args:
        det_boxes: ``(N, 4)`` xyxy detections.
        gt_boxes: ``(M, 4)`` xyxy true digit boxes.
        gt_digits: ``(M,)`` their digits 0..9.
        pos_iou: IoU with a true box from which a detection is a crop of that digit.
        neg_iou: IoU below which (with every true box) a detection may be "not a digit".
        neg_cover: ... provided it also covers less than this fraction of every true box.

    Returns:
        ``(N,)`` int64.
    """
    det_boxes = np.asarray(det_boxes, np.float32).reshape(-1, 4)
    out = np.full(len(det_boxes), -2, dtype=np.int64)
    if len(det_boxes) == 0:
        return out
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    if len(gt_boxes) == 0:
        out[:] = NOT_DIGIT_LABEL
        return out
    iou = box_iou(det_boxes, gt_boxes)
    gt_area = np.maximum((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1]), 1e-9)
    cover = intersection(det_boxes, gt_boxes) / gt_area[None, :]
    best = iou.argmax(axis=1)
    best_iou = iou.max(axis=1)
    positive = best_iou >= pos_iou
    out[positive] = np.asarray(gt_digits, np.int64)[best[positive]]
    negative = (best_iou < neg_iou) & (cover.max(axis=1) < neg_cover)
    out[negative] = NOT_DIGIT_LABEL
    return out


def random_negative_boxes(
    rng: np.random.Generator, width: int, height: int, gt_boxes: np.ndarray, count: int, *, neg_iou: float, neg_cover: float
) -> np.ndarray:
    """Up to ``count`` random digit-shaped ``xyxy`` boxes (height 1.2-2.5x width) away from ``gt_boxes``.

    Box heights follow the true digits' (0.6-1.6x their median), or 30-90% of the image height
    when there are none. Boxes that would be labelled anything but "not a digit" by
    :func:`label_detections` are dropped, so fewer than ``count`` may come back.
    """
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    if len(gt_boxes):
        ref = float(np.median(gt_boxes[:, 3] - gt_boxes[:, 1]))
        heights = rng.uniform(0.6, 1.6, size=count * 4) * ref
    else:
        heights = rng.uniform(0.3, 0.9, size=count * 4) * height
    heights = np.clip(heights, 6, max(height, 6))
    widths = heights / rng.uniform(1.2, 2.5, size=heights.shape)
    x1 = rng.uniform(0, 1, size=heights.shape) * np.maximum(width - widths, 1)
    y1 = rng.uniform(0, 1, size=heights.shape) * np.maximum(height - heights, 1)
    boxes = np.stack([x1, y1, x1 + widths, y1 + heights], axis=1).astype(np.float32)
    labels = label_detections(boxes, gt_boxes, np.zeros(len(gt_boxes), np.int64), pos_iou=2.0, neg_iou=neg_iou,
                              neg_cover=neg_cover)
    return boxes[labels == NOT_DIGIT_LABEL][:count]


# =========================================================================== command line


TRUTH_SCORE = 2.0
"""``det_score`` of a ground-truth crop written by ``--truth`` (detector scores are at most 1)."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train.mine",
        description="Crop a detector's hits (as their true digits) and false hits (as 'not a digit') for the classifier.",
        add_help=add_help,
    )
    p.add_argument("--data", required=True, metavar="DIR", help="SVHN-format folder (digitStruct.mat or labels.json + images)")
    p.add_argument("--image-numbers", metavar="RANGES", help="use only images whose number is in RANGES, e.g. 1-96")
    p.add_argument("--limit", type=int, metavar="N", help="use at most N images")
    p.add_argument("--detector", required=True, metavar="CKPT", help="detector checkpoint")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="crop file to write")
    p.add_argument("--score-thresh", type=float, default=0.3, help="keep detections scoring at least this (default 0.3)")
    p.add_argument("--pos-iou", type=float, default=0.5, help="IoU with a true box that makes a digit crop (default 0.5)")
    p.add_argument("--neg-iou", type=float, default=0.2, help="IoU with every true box under which a hit is 'not a digit' (default 0.2)")
    p.add_argument("--neg-cover", type=float, default=0.4,
                   help="... and it covers less than this fraction of every true box (default 0.4)")
    p.add_argument("--random-negatives", type=int, default=0, metavar="K", help="also K random 'not a digit' boxes per image")
    p.add_argument("--no-positives", action="store_true", help="write only the 'not a digit' crops")
    p.add_argument("--truth", action="store_true",
                   help="also crop every ground-truth box as its digit (the real crops of these images, det_score 2)")
    p.add_argument("--batch-size", type=int, default=8, help="images per detector call")
    p.add_argument("--seed", type=int, default=0, help="seed for --random-negatives")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _check_args(args: argparse.Namespace) -> None:
    for name in ("score_thresh", "pos_iou", "neg_iou", "neg_cover"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"--{name.replace('_', '-')} {value}: expected a number in [0, 1]")
    if args.neg_iou > args.pos_iou:
        raise UsageError(f"--neg-iou {args.neg_iou} is above --pos-iou {args.pos_iou}; expected neg-iou <= pos-iou")
    for name in ("random_negatives", "threads"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected 0 or more")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: expected 1 or more")
    if not str(args.out).lower().endswith(".npz"):
        raise UsageError(f"--out {args.out!r}: expected a file name ending in .npz")


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    _check_args(args)
    import torch

    from recognizer.models.engine import Recognizer, RecognizerConfig
    from recognizer.models.preprocess import crop_digits
    from train.common import load_model_checkpoint
    from train.datasets import image_number
    from train.inputs import read_batches

    if args.threads:
        torch.set_num_threads(args.threads)
    split = read_split(args.data)
    records = select_records(split.records, numbers=args.image_numbers, limit=args.limit)
    det = load_model_checkpoint(args.detector, "detector", "--detector")
    # The classifier is not used here; the engine only needs one to exist.
    from recognizer.models import SmallCNN

    try:
        rec = Recognizer(det.model, SmallCNN(), device=args.device, config=RecognizerConfig(det_score_thresh=args.score_thresh))
    except ValueError as exc:
        raise UsageError(f"--device {args.device!r}: {exc}") from exc
    rng = np.random.default_rng(args.seed)
    crops: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    sources: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    skipped = 0
    t0 = time.perf_counter()
    for kept, images, missing in read_batches(records, lambda r: split.image_root / r.name, args.batch_size):
        skipped += len(missing)
        if not images:
            continue
        for r, image, (boxes, det_scores) in zip(kept, images, rec.detect(images)):
            gt = np.asarray(r.boxes, np.float32).reshape(-1, 4).copy()
            gt[:, 2:] += gt[:, :2]  # ltwh -> xyxy
            lab = label_detections(boxes, gt, r.digits, pos_iou=args.pos_iou, neg_iou=args.neg_iou, neg_cover=args.neg_cover)
            use = lab == NOT_DIGIT_LABEL if args.no_positives else lab >= NOT_DIGIT_LABEL
            boxes, lab, det_scores = boxes[use], lab[use], det_scores[use]
            if args.random_negatives:
                h, w = image.shape[:2]
                extra = random_negative_boxes(rng, w, h, gt, args.random_negatives, neg_iou=args.neg_iou, neg_cover=args.neg_cover)
                boxes = np.concatenate([boxes, extra])
                lab = np.concatenate([lab, np.full(len(extra), NOT_DIGIT_LABEL, np.int64)])
                det_scores = np.concatenate([det_scores, np.ones(len(extra), np.float32)])
            if args.truth and len(gt):
                boxes = np.concatenate([boxes, gt])
                lab = np.concatenate([lab, np.asarray(r.digits, np.int64).reshape(-1)])
                det_scores = np.concatenate([det_scores, np.full(len(gt), TRUTH_SCORE, np.float32)])
            if len(boxes) == 0:
                continue
            crops.append(crop_digits(image, boxes))
            labels.append(lab)
            number = image_number(r.name)
            sources.append(np.full(len(boxes), -1 if number is None else number, np.int64))
            scores.append(det_scores.astype(np.float32))
    if not crops:
        raise UsageError(f"--data {args.data}: the detector found nothing to crop at --score-thresh {args.score_thresh}")
    X = np.concatenate(crops)
    y = np.concatenate(labels)
    out = Path(args.out)
    save_npz(out, X=X, y=y, source_image=np.concatenate(sources), det_score=np.concatenate(scores))
    n_neg = int((y == NOT_DIGIT_LABEL).sum())
    print(f"wrote {out}: {len(y)} crops ({len(y) - n_neg} digits, {n_neg} not digits) from {len(records) - skipped} images "
          f"in {time.perf_counter() - t0:.1f} s" + (f"; {skipped} unreadable images skipped" if skipped else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input)."""
    return run_main(_main, argv, "train.mine")


if __name__ == "__main__":
    sys.exit(main())
