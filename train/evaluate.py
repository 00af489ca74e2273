"""Measure the recognizer on SVHN-format data: ``python -m train.evaluate``.

Two modes::

    # full pipeline on an SVHN-format folder (digitStruct.mat or labels.json + images)
    python -m train.evaluate --data DIR --detector DET.pt --classifier CLS.pt [--out DIR]

    # the classifier alone on 32x32 crops (folders, .mat, .npz, SVHN dirs)
    python -m train.evaluate --crops SPEC [SPEC ...] --classifier CLS.pt

The full mode reports:

* whole-number accuracy - the top reading (highest confidence) of the full pipeline
  (``recognizer.models.engine.Recognizer``) spells the ground-truth house number exactly;
* per-digit accuracy of the classifier on ground-truth crops (cropped with
  ``recognizer.models.preprocess.crop_digits``, as at inference);
* precision of the reading: extra digits per image (read digits whose centre lies in no true
  digit box) and the share of images with an invented number (a reading made only of such
  digits), over every reading the pipeline returns, not only the top one;
* detection AP@0.5 and COCO-style AP@[.5:.95] of the detector alone (single class), by our
  all-point code and, when pycocotools is installed, by its COCOeval (101 recall points);
* images per second of the pipeline;

and writes ``report.json``, ``per_image.jsonl`` and a ``failures/`` folder of drawn mistakes.

The metrics are pure functions in :mod:`train.metrics` (numpy in, floats out); what is read
(the split, the selected images, crops) comes through :mod:`train.inputs`.
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

from train.inputs import clip_boxes, read_split, select_records, with_reader
from train.metrics import (
    accuracy,
    average_precision,
    coco_average_precision,
    confusion_matrix,
    format_confusion,
    nan_to_none,
    pycocotools_average_precision,
    reading_precision,
    top_text,
)

log = logging.getLogger("train.evaluate")

# =========================================================================== evaluation


Detections = list[tuple[np.ndarray, np.ndarray]]


def _readings_as_detections(readings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Digit boxes and detector scores of a frame's readings (AP when no raw detector is given)."""
    digits = [d for r in readings for d in r.digits]
    if not digits:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return (np.array([d.box for d in digits], np.float32), np.array([d.det_score for d in digits], np.float32))


def draw_failure(image: np.ndarray, readings: Sequence[Any], truth_boxes: np.ndarray, truth: str, read: str) -> np.ndarray:
    """The frame with the readings (``recognizer.output.render``), ground-truth boxes in blue and a caption."""
    import cv2

    try:
        from recognizer.output.render import draw_readings

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

    from recognizer.live.pipeline import recognize_timed
    from recognizer.models.preprocess import crop_digits
    from train.common import chunks, progress
    from train.datasets import read_image

    image_root = Path(image_root)
    # Ground-truth crops are framed as the pipeline frames its own (same margin).
    # (a fused reader's digit models are its .recognizer)
    crop_pad = float(getattr(getattr(getattr(recognizer, "recognizer", recognizer), "config", None), "crop_pad", 0.0))
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
            readings, timings = recognize_timed(recognizer, images)
            seconds += time.perf_counter() - t0
            if len(readings) != len(images):
                raise RuntimeError(f"recognize returned {len(readings)} results for {len(images)} images")
            for k, v in timings.items():
                stage[k] = stage.get(k, 0.0) + float(v)
            dets = detect(images) if detect is not None else [_readings_as_detections(r) for r in readings]
            for rec, image, frame_readings, det in zip(recs, images, readings, dets):
                truth, read = rec.text, top_text(frame_readings)
                truths_text.append(truth)
                read_text.append(read)
                predictions.append(det)
                gt = clip_boxes(rec.xyxy, image.shape)
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
        "number_accuracy": nan_to_none(accuracy(read_text, truths_text)),
        "numbers_correct": int(sum(a == b for a, b in zip(read_text, truths_text))),
        "digit_accuracy": nan_to_none(accuracy(digit_pred, digit_true)) if classify is not None else None,
        "digits": len(digit_true),
        "extra_digits_per_image": round(float(np.mean(extra_per_image)), 4) if n else None,
        "images_with_extra_digits": nan_to_none(float(np.mean(np.asarray(extra_per_image) > 0))) if n else None,
        "images_with_invented_number": nan_to_none(float(np.mean(np.asarray(invented_per_image) > 0))) if n else None,
        "ap50": nan_to_none(average_precision(predictions, gt_boxes, 0.5)),
        "ap": nan_to_none(coco_average_precision(predictions, gt_boxes)),
        "ap_source": "detector" if detect is not None else "readings",
        **_pycocotools_ap(predictions, gt_boxes),
        "images_per_second": round(n / seconds, 3) if seconds > 0 else None,
        "seconds": round(seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in stage.items()},
        "failures_drawn": drawn,
    }
    if classify is not None:
        report["confusion"] = confusion_matrix(digit_pred, digit_true).tolist()
    return report


def _pycocotools_ap(predictions: Detections, gt_boxes: Sequence[np.ndarray]) -> dict[str, Any]:
    """The report's ``coco_ap50``/``coco_ap`` (pycocotools' COCOeval, next to our ``ap50``/``ap``), or
    None for both and the reason in ``coco_ap_error`` when pycocotools is not installed."""
    try:
        ap50, ap = pycocotools_average_precision(predictions, gt_boxes)
    except ImportError:
        return {"coco_ap50": None, "coco_ap": None,
                "coco_ap_error": "pycocotools is not installed: pip install pycocotools"}
    return {"coco_ap50": nan_to_none(ap50), "coco_ap": nan_to_none(ap), "coco_ap_error": None}


def crop_log_probs(model: Any, crops: np.ndarray, device: Any, batch_size: int = 512, *, tta: bool = True) -> np.ndarray:
    """Classifier log-probabilities ``(N, C)`` float32 for ``(N, 32, 32, 3)`` uint8 RGB crops.

    ``tta``: average over the engine's test-time views (as the recognizer classifies still
    images by default); see :func:`recognizer.models.engine.classifier_log_probs`.
    """
    import torch

    from recognizer.models.engine import classifier_log_probs

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
    p.add_argument("--score-thresh", "--det-threshold", dest="score_thresh", type=float, default=None,
                   help="detector score threshold of the pipeline (default: the one stored in the detector file; "
                        "--det-threshold is the old spelling)")
    p.add_argument("--min-digit-score", type=float, default=None, help="classifier probability below which a digit is dropped")
    p.add_argument("--not-digit-thresh", type=float, default=None,
                   help="drop a detection whose 'not a digit' probability is at least this (classifiers with that class)")
    p.add_argument("--no-tta", action="store_true",
                   help="classify each crop once instead of averaging over shifted/zoomed views (the recognizer's default)")
    p.add_argument("--reader", choices=("digits", "fast", "accurate", "text"), default="digits",
                   help="digits: the detector + classifier alone (default); fast/accurate: fused with the text reader "
                        "(recognizer.models.fusion, as recognizer image runs it); text: the text reader alone on the same regions")
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
    from train.common import load_model_checkpoint
    from train.inputs import load_crops

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
        "digit_accuracy": nan_to_none(acc),
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

    from recognizer.models.engine import Recognizer, config_from_metadata
    from train.common import UsageError, load_model_checkpoint

    if not args.detector:
        raise UsageError("--data needs --detector CKPT (or use --crops to evaluate the classifier alone)")
    det = load_model_checkpoint(args.detector, "detector", "--detector")
    cls = load_model_checkpoint(args.classifier, "classifier", "--classifier")
    split = read_split(args.data)
    records = select_records(split.records, names=args.names, numbers=args.image_numbers, limit=args.limit)
    # Without --score-thresh, the threshold the detector file recommends (as the CLI uses it).
    # The thresholds the files recommend unless an option overrides them, as the CLI does.
    extra = {"min_digit_score": args.min_digit_score} if args.min_digit_score is not None else {}
    try:
        config = config_from_metadata(det.metadata, cls.metadata, det_score_thresh=args.score_thresh,
                                      not_digit_thresh=args.not_digit_thresh, tta=not args.no_tta, **extra)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    recognizer = Recognizer(det.model, cls.model, device=device, config=config)
    digits_path = recognizer
    recognizer = with_reader(recognizer, args.reader, args.threads)
    # AP needs every detection the model makes, not only those the pipeline keeps: a second
    # view of the same models with no score threshold.
    raw = Recognizer(det.model, cls.model, device=device, config=replace(config, det_score_thresh=0.0))
    out = Path(args.out)
    log.info("evaluating %d images of %s", len(records), args.data)
    report = evaluate_split(
        recognizer, records, split.image_root, batch_size=args.batch_size, detect=raw.detect,
        classify=lambda crops: digits_path.classify(crops)[0], out_dir=out,
        max_failures=args.max_failures, show_progress=not args.no_progress,
    )
    if report["images"] == 0:
        raise UsageError(f"--data {args.data!r}: none of the {len(records)} selected images could be read")
    report = {
        "mode": "data", "data": str(args.data), "detector": str(args.detector), "classifier": str(args.classifier),
        "filters": {"names": args.names, "image_numbers": args.image_numbers, "limit": args.limit},
        "device": str(recognizer.device), "config": asdict(config), "reader": args.reader,
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
    if report["coco_ap_error"] is None:
        print(f"detection AP by pycocotools (COCOeval, 101 recall points): AP@0.5: {_fmt(report['coco_ap50'])}  "
              f"AP@[.5:.95]: {_fmt(report['coco_ap'])}")
    else:
        print(f"detection AP by pycocotools: n/a ({report['coco_ap_error']})")
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
