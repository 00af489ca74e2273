"""Are letters read as digits? A check on real street photos: ``python -m train.letters_check``.

The ICDAR 2015 photos of ``../shared/data/scene_text`` (1280x720 street, shop and sign
scenes) have every word boxed. Inside a box whose text has no digit, any digit the recognizer
reads is certainly false. This command runs the recognizer over the photos (as
``recognizer image`` would, with the thresholds the weight files recommend unless given) and
reports:

* letters-only words with a false digit on them (a read digit whose centre lies in the word's box);
* false digits per photo, and numbers invented from letters (readings all of whose digits lie
  in letters-only words);
* per photo, every reading (``per_image.jsonl``), for looking at what was read where.

Use photos that were never trained on: ``train.scene_text --icdar-images 1-250`` keeps
photos 251-500 out of the classifier's letters, and this command checks ``--images 251-500``.
Other text in the photos is not boxed, so readings outside the boxes are not judged.
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
from train.metrics import centres_inside, digit_boxes

log = logging.getLogger("train.letters_check")


def letters_only_boxes(words: Sequence[dict[str, Any]]) -> np.ndarray:
    """xyxy boxes (axis-aligned hulls of the quads) of the words that are letters only."""
    boxes = []
    for w in words:
        text = str(w.get("text", ""))
        if text == "###" or not text.strip() or any(ch.isdigit() for ch in text):
            continue
        q = np.asarray(w["quad"], np.float64).reshape(4, 2)
        boxes.append([*q.min(0), *q.max(0)])
    return np.asarray(boxes, np.float64).reshape(-1, 4)


def score_photo(readings: Sequence[Any], words: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Counts for one photo: letters-only words, those with a false digit, false digits, invented numbers."""
    return letter_hits(readings, letters_only_boxes(words))


def letter_hits(readings: Sequence[Any], wb: np.ndarray) -> dict[str, int]:
    """:func:`score_photo`'s counts for the letters-only word boxes ``wb`` (``(W, 4)`` xyxy)."""
    out = {"words": len(wb), "words_hit": 0, "false_digits": 0, "invented_numbers": 0}
    if not len(wb):
        return out
    hit_words = np.zeros(len(wb), dtype=bool)
    for r in readings:
        on = centres_inside(digit_boxes(r), wb)
        hit_words |= on.any(axis=0)
        inside = on.any(axis=1)
        out["false_digits"] += int(inside.sum())
        out["invented_numbers"] += int(len(inside) > 0 and inside.all())
    out["words_hit"] = int(hit_words.sum())
    return out


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.letters_check", description=__doc__.split("\n\n")[0], add_help=add_help)
    p.add_argument("--data", required=True, metavar="DIR", help="folder laid out like ../shared/data/scene_text")
    p.add_argument("--images", metavar="RANGES", help="only photos img_N with N in RANGES, e.g. 251-500")
    p.add_argument("--detector", required=True, metavar="CKPT")
    p.add_argument("--classifier", required=True, metavar="CKPT")
    p.add_argument("--score-thresh", type=float, help="detector threshold (default: the detector file's)")
    p.add_argument("--not-digit-thresh", type=float, help="'not a digit' threshold (default: the classifier file's)")
    p.add_argument("--no-tta", action="store_true", help="classify each crop once (as video commands do)")
    p.add_argument("--reader", choices=("digits", "fast", "accurate", "text"), default="digits",
                   help="digits: the detector + classifier alone (default); fast/accurate/text: with the text reader (recognizer.models.fusion)")
    p.add_argument("--out", metavar="DIR", help="write report.json and per_image.jsonl here")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    for name in ("score_thresh", "not_digit_thresh"):
        v = getattr(args, name)
        if v is not None and not 0.0 <= v <= 1.0:
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected a number in [0, 1]")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: expected at least 1")
    root = Path(args.data)
    index = root / "scenes_icdar2015.json"
    if not index.is_file():
        raise UsageError(f"--data {root}: no scenes_icdar2015.json; expected a folder laid out like ../shared/data/scene_text")
    import torch

    from recognizer.models.engine import Recognizer, config_from_metadata
    from train.common import in_ranges, load_model_checkpoint, parse_ranges
    from train.inputs import photo_number, read_batches, with_reader

    if args.threads:
        torch.set_num_threads(args.threads)
    ranges = parse_ranges(args.images) if args.images else None
    photos = [p for p in json.loads(index.read_text())
              if ranges is None or ((n := photo_number(p["file"])) is not None and in_ranges(n, ranges))]
    if not photos:
        raise UsageError(f"--images {args.images}: no photo selected")
    det = load_model_checkpoint(args.detector, "detector", "--detector")
    cls = load_model_checkpoint(args.classifier, "classifier", "--classifier")
    config = config_from_metadata(det.metadata, cls.metadata, det_score_thresh=args.score_thresh,
                                  not_digit_thresh=args.not_digit_thresh, tta=not args.no_tta)
    rec = Recognizer(det.model, cls.model, device=args.device, config=config)
    rec = with_reader(rec, args.reader, args.threads)
    totals = {"photos": 0, "words": 0, "words_hit": 0, "false_digits": 0, "invented_numbers": 0, "readings": 0}
    per_image = []
    for kept, images, _ in read_batches(photos, lambda p: root / p["file"], args.batch_size):
        for p, readings in zip(kept, rec.recognize(images) if images else []):
            s = score_photo(readings, p["words"])
            totals["photos"] += 1
            totals["readings"] += len(readings)
            for k in ("words", "words_hit", "false_digits", "invented_numbers"):
                totals[k] += s[k]
            per_image.append({"file": p["file"], **s, "readings": [r.to_dict() for r in readings]})
    if not totals["photos"]:
        raise UsageError(f"--data {root}: none of the selected photos could be read")
    n = totals["photos"]
    report = {
        **totals,
        "words_with_false_digit": round(totals["words_hit"] / max(totals["words"], 1), 4),
        "false_digits_per_photo": round(totals["false_digits"] / n, 4),
        "invented_numbers_per_photo": round(totals["invented_numbers"] / n, 4),
        "detector": args.detector, "classifier": args.classifier, "images": args.images, "reader": args.reader,
        "det_score_thresh": config.det_score_thresh, "not_digit_thresh": config.not_digit_thresh, "tta": config.tta,
    }
    print(f"{n} photos, {totals['words']} letters-only words: {totals['words_hit']} "
          f"({100 * report['words_with_false_digit']:.1f}%) with a digit read on them; "
          f"{totals['false_digits']} false digits ({report['false_digits_per_photo']:.2f} per photo), "
          f"{totals['invented_numbers']} numbers invented from letters ({report['invented_numbers_per_photo']:.2f} per photo); "
          f"{totals['readings']} readings in all")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        with open(out / "per_image.jsonl", "w", encoding="utf-8") as fh:
            for row in per_image:
                fh.write(json.dumps(row) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input)."""
    return run_main(_main, argv, "train.letters_check")


if __name__ == "__main__":
    sys.exit(main())
