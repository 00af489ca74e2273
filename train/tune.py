"""Choose the recognizer's two thresholds on validation images: ``python -m train.tune``.

The detector's score threshold and the classifier's "not a digit" threshold decide together
how many digits a reading keeps: too low and walls, letters and second boxes on one digit
become extra digits; too high and real digits go missing. This command runs the detector once
(keeping every detection above ``--floor``) and the classifier once on the validation images,
then replays the engine's filtering and composition for every pair of thresholds on a grid and
prints, for each pair, whole-number accuracy, extra digits per image and the share of images
with an invented number (the measures of ``train.evaluate``).

The best pair is the most accurate one; among pairs within ``--tolerance`` of it, the one with
the fewest invented numbers and then extra digits. Store it in the shipped files with
``tools/export_weights.py --score-thresh ... --not-digit-thresh ...``.

Only ever run this on validation images: thresholds chosen on held-out images make their
figures worthless.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from train.common import UsageError, run_main, setup_logging

log = logging.getLogger("train.tune")

DEFAULT_DET = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_ND = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated numbers in [0, 1]") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise UsageError(f"{option} {text!r}: expected comma-separated numbers in [0, 1]")
    return sorted(set(values))


def grid_scores(
    cached: Sequence[dict[str, Any]], det_values: Sequence[float], nd_values: Sequence[float],
    *, min_digit_score: float = 0.0,
) -> list[dict[str, Any]]:
    """Replay filtering (the engine's :func:`recognizer.models.engine.keep_digits`) and composition for each threshold pair.

    Args:
        cached: per image ``{"truth": str, "gt": (G,4) xyxy, "boxes": (K,4), "scores": (K,),
            "digits": (K,), "probs": (K,), "not_digit": (K,)}`` (detections above the floor).
        det_values: detector score thresholds.
        nd_values: "not a digit" thresholds (1.0 keeps every detection).
        min_digit_score: digit probability below which a detection is dropped, as the engine's
            ``RecognizerConfig.min_digit_score`` (default 0.0 keeps every one).

    Returns:
        One row per pair: ``det``, ``not_digit``, ``accuracy``, ``correct``, ``extra_digits_per_image``,
        ``images_with_invented_number``.
    """
    from recognizer.models.compose import compose_readings
    from recognizer.models.engine import keep_digits
    from train.metrics import reading_precision, top_text

    rows = []
    n = max(len(cached), 1)
    for dt in det_values:
        for nt in nd_values:
            correct = extra = invented = 0
            for c in cached:
                keep = (c["scores"] >= dt) & keep_digits(c["probs"], c["not_digit"], min_digit_score=min_digit_score,
                                                        not_digit_thresh=nt)
                readings = compose_readings(c["boxes"][keep], c["digits"][keep], c["scores"][keep], c["probs"][keep])
                correct += top_text(readings) == c["truth"]
                e, i = reading_precision(readings, c["gt"])
                extra += e
                invented += i > 0
            rows.append({"det": dt, "not_digit": nt, "accuracy": correct / n, "correct": correct,
                         "extra_digits_per_image": extra / n, "images_with_invented_number": invented / n})
    return rows


def best_row(rows: Sequence[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """The most accurate pair; within ``tolerance`` of it, fewest invented numbers, then extra digits."""
    top = max(r["accuracy"] for r in rows)
    near = [r for r in rows if r["accuracy"] >= top - tolerance - 1e-12]
    return min(near, key=lambda r: (r["images_with_invented_number"], r["extra_digits_per_image"], -r["accuracy"], -r["det"]))


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.tune", description=__doc__.split("\n\n")[0], add_help=add_help)
    p.add_argument("--data", required=True, metavar="DIR", help="SVHN-format folder of validation images")
    p.add_argument("--image-numbers", metavar="RANGES", help="use only images whose number is in RANGES (validation!)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N images")
    p.add_argument("--detector", required=True, metavar="CKPT")
    p.add_argument("--classifier", required=True, metavar="CKPT")
    p.add_argument("--det", default=",".join(map(str, DEFAULT_DET)), help="detector thresholds to try (comma-separated)")
    p.add_argument("--not-digit", default=",".join(map(str, DEFAULT_ND)), help="'not a digit' thresholds to try")
    p.add_argument("--floor", type=float, default=0.2, help="detections kept for the replay (default 0.2; <= every --det)")
    p.add_argument("--min-digit-score", type=float, default=0.0,
                   help="classifier probability below which a digit is dropped, as the engine's (default 0.0)")
    p.add_argument("--tolerance", type=float, default=0.01, help="accuracy given up for fewer invented numbers (default 0.01)")
    p.add_argument("--no-tta", action="store_true", help="classify each crop once (as video commands do)")
    p.add_argument("--json", metavar="FILE", help="also write the grid and the choice as JSON")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    det_values = _floats(args.det, "--det")
    nd_values = _floats(args.not_digit, "--not-digit")
    if not 0.0 <= args.floor <= min(det_values):
        raise UsageError(f"--floor {args.floor}: expected a number in [0, {min(det_values)}] (the lowest --det)")
    if not 0.0 <= args.min_digit_score <= 1.0:
        raise UsageError(f"--min-digit-score {args.min_digit_score}: expected a number in [0, 1]")
    if not 0.0 <= args.tolerance <= 1.0:
        raise UsageError(f"--tolerance {args.tolerance}: expected a number in [0, 1]")
    import torch

    from recognizer.models.engine import Recognizer, RecognizerConfig
    from recognizer.models.preprocess import crop_digits
    from train.common import load_model_checkpoint
    from train.inputs import clip_boxes, read_batches, read_split, select_records

    if args.threads:
        torch.set_num_threads(args.threads)
    det = load_model_checkpoint(args.detector, "detector", "--detector")
    cls = load_model_checkpoint(args.classifier, "classifier", "--classifier")
    split = read_split(args.data)
    records = select_records(split.records, numbers=args.image_numbers, limit=args.limit)
    config = RecognizerConfig(det_score_thresh=args.floor, not_digit_thresh=1.0, tta=not args.no_tta)
    rec = Recognizer(det.model, cls.model, device=args.device, config=config)
    cached: list[dict[str, Any]] = []
    for kept, images, _ in read_batches(records, lambda r: split.image_root / r.name, args.batch_size):
        if not images:
            continue
        detections = rec.detect(images)
        crops = [crop_digits(image, boxes, pad=config.crop_pad) for image, (boxes, _) in zip(images, detections)]
        # One classifier call per batch, as the engine makes it; then split back per image.
        digits, probs, nd = rec.classify_full(np.concatenate(crops))
        start = 0
        for r, image, (boxes, scores) in zip(kept, images, detections):
            k = slice(start, start + len(boxes))
            start += len(boxes)
            cached.append({"truth": r.text, "gt": clip_boxes(r.xyxy, image.shape), "boxes": boxes, "scores": scores,
                           "digits": digits[k], "probs": probs[k], "not_digit": nd[k]})
    if not cached:
        raise UsageError(f"--data {args.data}: no readable image selected")
    rows = grid_scores(cached, det_values, nd_values, min_digit_score=args.min_digit_score)
    best = best_row(rows, args.tolerance)
    print(f"{len(cached)} images; whole-number accuracy (extra digits per image, images with an invented number)")
    print("det \\ not-digit " + "".join(f"{nt:>20.2f}" for nt in nd_values))
    for dt in det_values:
        cells = []
        for nt in nd_values:
            r = next(x for x in rows if x["det"] == dt and x["not_digit"] == nt)
            cells.append(f"{r['accuracy']:.3f} ({r['extra_digits_per_image']:.2f}, {r['images_with_invented_number']:.2f})")
        print(f"{dt:>16.2f} " + "".join(f"{c:>20}" for c in cells))
    print(f"best: --score-thresh {best['det']} --not-digit-thresh {best['not_digit']}: accuracy {best['accuracy']:.4f} "
          f"({best['correct']}/{len(cached)}), extra digits {best['extra_digits_per_image']:.3f} per image, "
          f"invented numbers in {best['images_with_invented_number']:.3f} of images")
    if args.json:
        Path(args.json).write_text(json.dumps({"images": len(cached), "grid": rows, "best": best,
                                               "detector": args.detector, "classifier": args.classifier,
                                               "tta": not args.no_tta, "min_digit_score": args.min_digit_score},
                                              indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input)."""
    return run_main(_main, argv, "train.tune")


if __name__ == "__main__":
    sys.exit(main())
