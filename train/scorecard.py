"""Score a weight pair on every real set we can see: ``python -m train.scorecard``.

::

    python -m train.scorecard --detector D --classifier C [--readers digits fast accurate] [--out DIR]
    python -m train.scorecard --detector NEW_D --classifier NEW_C --against OLD_D OLD_C   # the shipping gate

Sets (:mod:`train.realsets`; the ``val`` parts, which nothing is trained or tuned on):

| row | what | figures |
| --- | --- | --- |
| svhn | SVHN held-out images 1851-2000 | whole number, per digit (classifier on the true crops), extra digits per image, images with an invented number |
| closeups | building-number close-ups, ``val`` | the same |
| scenes | whole street photos of buildings, ``val`` | photos with every number read, numbers found, readings outside the number boxes per photo |
| letters | letters-only words of ICDAR street photos 251-500 | words with a digit read, numbers invented from letters per photo |
| nameplates | the name-plate check (``recognizer demo --nameplates``, seeds given) | numbers confirmed, extra confirmed |
| street | the street demo (``recognizer demo``, seeds given) | numbers confirmed, extra confirmed |

Each figure is given for every reader asked for (``digits``: the detector + SmallCNN alone;
``fast``/``accurate``: with the text reader, :mod:`recognizer.models.fusion`, and in video
:mod:`recognizer.live.textworker`). With ``--against OLD_D OLD_C`` the old pair is scored too and
the command exits 1 when the new pair is worse than the old on any set by more than that set's
noise (the binomial standard error of the old pair's figure, at least one image's worth):
such a pair is not shipped.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("train.scorecard")

IMAGE_SETS = ("svhn", "closeups", "scenes", "letters")
DEMO_SETS = ("nameplates", "street")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.scorecard", description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="weights/detector_light.pt", metavar="CKPT")
    p.add_argument("--classifier", default="weights/classifier.pt", metavar="CKPT")
    p.add_argument("--against", nargs=2, metavar=("OLD_DETECTOR", "OLD_CLASSIFIER"),
                   help="also score this pair and exit 1 when the first pair loses on any set by more than its noise")
    p.add_argument("--readers", nargs="+", default=["digits"], choices=("digits", "fast", "accurate", "text", "rapidocr"),
                   help="readers to score (default: digits, the shipping gate of the fast path); rapidocr: RapidOCR's own "
                        "full pipeline, the peer (still-image sets only)")
    p.add_argument("--sets", nargs="+", default=[*IMAGE_SETS, *DEMO_SETS], choices=(*IMAGE_SETS, *DEMO_SETS))
    p.add_argument("--data-root", default="../shared/data", metavar="DIR", help="folder holding svhn_real, building_numbers, scene_text")
    p.add_argument("--limit", type=int, help="at most N images per set (spread over it): a quick look, not a measurement")
    p.add_argument("--seeds", default="0-3", metavar="RANGES", help="demo seeds (default 0-3: 20 numbers each demo)")
    p.add_argument("--frames", type=int, default=None, help="frames per demo clip (default: the demo's)")
    p.add_argument("--part", default="val", choices=("val", "dev"), help="val (default) or dev (for choosing)")
    p.add_argument("--out", metavar="DIR", help="write scorecard.json and per-image rows here")
    p.add_argument("--threads", type=int, default=1)
    return p


class RapidOCRPeer:
    """RapidOCR's own full pipeline (its text detector, angle classifier and recognizer, its
    default settings) as a house-number reader: each text line it reads as a number
    (:attr:`recognizer.models.textreader.TextRead.kind`) is a reading. The peer row of the scorecard."""

    def __init__(self, threads: int = 1) -> None:
        from rapidocr import RapidOCR

        self.engine = RapidOCR(params={"Global.log_level": "error",
                                       "EngineConfig.onnxruntime.intra_op_num_threads": max(1, threads)})

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Any]]:
        from recognizer.models.fusion import text_reading
        from recognizer.models.textreader import TextRead

        out = []
        for image in images:
            res = self.engine(image)
            readings = []
            for quad, text, score in zip(res.boxes if res.boxes is not None else [], res.txts or (), res.scores or ()):
                q = np.asarray(quad, np.float64).reshape(-1, 2)
                read = TextRead(str(text), float(score))
                if read.kind == "number":
                    readings.append(text_reading(read, (*q.min(0), *q.max(0))))
            out.append(readings)
        return out


def _image_rows(rec: Any, items: Sequence[Any]) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Per-image score rows and, for sets with digit boxes, the classifier's digits on the true crops."""
    from recognizer.models.preprocess import crop_digits
    from train.inputs import read_batches
    from train.realsets import score

    rows, pred, true = [], [], []
    digits_path = getattr(rec, "recognizer", rec)  # the digit models of a fused reader
    pad = float(getattr(getattr(digits_path, "config", None), "crop_pad", 0.0))
    can_classify = hasattr(digits_path, "classify")
    for kept, images, _ in read_batches(items, lambda i: i.path, 1):  # one image per call, as recognizer image reads
        for item, image in zip(kept, images):
            readings = rec.recognize([image])[0]
            row = score(item, readings)
            row["name"] = str(item.path.name)
            rows.append(row)
            if can_classify and item.set in ("svhn", "closeups") and len(item.boxes) == len(item.truth):
                crops = crop_digits(image, item.boxes.astype(np.float32), pad=pad)
                pred.extend(int(d) for d in digits_path.classify(crops)[0])
                true.extend(int(ch) for ch in item.truth)
    return rows, pred, true


def _demo(rec: Any, reader: Any, nameplates: bool, seeds: Sequence[int], frames: int | None, mode: str = "fast") -> dict[str, Any]:
    from recognizer.apps.demo import run_demo
    from recognizer.synth.street import ClipConfig

    found = total = 0
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scorecard-demo-") as tmp:
        for seed in seeds:
            kw = {"frames": frames} if frames else {}
            run = run_demo(Path(tmp) / f"s{seed}", rec, ClipConfig(seed=seed, nameplates=nameplates, **kw), batch=4, workers=1,
                           text_reader=reader, reader_mode=mode)
            found += run.report.correct
            total += len(run.report.numbers)
            extra.extend(run.report.extra)
    return {"found": found, "numbers": total, "extra": len(extra), "extra_texts": extra, "accuracy": found / max(total, 1),
            "noise": float(np.sqrt(max(found / max(total, 1) * (1 - found / max(total, 1)), 1 / max(total, 1)) / max(total, 1)))}


def score_pair(detector: str, classifier: str, readers: Sequence[str], sets: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """{reader: {set: figures}} for one pair."""
    from recognizer.models.engine import Recognizer
    from train.common import UsageError, parse_ranges
    from train.inputs import with_reader
    from train.realsets import load_set, summarise

    still = Recognizer.from_checkpoints(detector, classifier, device="cpu", tta=True)
    video = Recognizer.from_checkpoints(detector, classifier, device="cpu", tta=False)
    seeds = [s for lo, hi in parse_ranges(args.seeds) for s in range(lo, (hi if hi is not None else lo) + 1)]
    try:
        items = {name: load_set(name, args.part, args.data_root, limit=args.limit) for name in sets if name in IMAGE_SETS}
    except (OSError, ValueError) as exc:  # DatasetError is a ValueError
        raise UsageError(f"--data-root {args.data_root!r}: {exc}") from exc
    out: dict[str, Any] = {}
    for reader_mode in readers:
        if reader_mode == "rapidocr":
            reader, rec = None, RapidOCRPeer(args.threads)
        else:
            rec = with_reader(still, reader_mode, args.threads)
            reader = getattr(rec, "reader", None)  # for the demos' video path
        res: dict[str, Any] = {}
        for name in sets:
            if reader_mode == "rapidocr" and name in DEMO_SETS:
                continue  # the peer reads still images; every frame of a clip through it is not its use
            if reader_mode == "text" and name in DEMO_SETS:
                continue  # video has no text-reader-alone mode
            t0 = time.perf_counter()
            if name in IMAGE_SETS:
                rows, pred, true = _image_rows(rec, items[name])
                fig = summarise(name, rows)
                if true:
                    fig["digit_accuracy"] = float(np.mean(np.asarray(pred) == np.asarray(true)))
                    fig["digits"] = len(true)
                fig["rows"] = rows
            else:
                fig = _demo(video, reader, name == "nameplates", seeds, args.frames, reader_mode)
            fig["seconds"] = round(time.perf_counter() - t0, 1)
            res[name] = fig
            log.info("%s %s: %s", reader_mode, name, _cell(name, fig))
        out[reader_mode] = res
    return out


def _cell(name: str, f: dict[str, Any]) -> str:
    if not f.get("images", 1) and name not in DEMO_SETS:
        return "no images"
    if name == "letters":
        return f"{f['words_hit']}/{f['words']} words with a digit ({100 * f['words_with_digit']:.1f}%), {f['invented_per_photo']:.2f} invented/photo"
    if name in DEMO_SETS:
        return f"{f['found']}/{f['numbers']} found, {f['extra']} extra"
    if name == "scenes":
        return f"{f['correct']}/{f['images']} photos ({100 * f['accuracy']:.1f}%), {f['numbers_found']}/{f['numbers']} numbers, {f['outside_per_photo']:.2f} outside/photo"
    digit = f" per digit {100 * f['digit_accuracy']:.1f}%" if "digit_accuracy" in f else ""
    return (f"{f['correct']}/{f['images']} ({100 * f['accuracy']:.1f}%){digit}, extra {f['extra_digits_per_image']:.3f}/img, "
            f"invented {100 * f['invented_share']:.1f}%")


def worse(new: dict[str, Any], old: dict[str, Any], name: str) -> str | None:
    """Why ``new`` loses to ``old`` on set ``name`` by more than the set's noise, or None.

    Gated: whole-number accuracy (photos for scenes), per-digit accuracy and the share of
    images with an invented number where the set has them, letters-only words with a digit,
    and the demos' numbers found and extra confirmed."""
    if not new.get("images", 1) or not old.get("images", 1):
        return None
    if name == "letters":
        margin = max(old["noise"], 1 / max(old["words"], 1))
        if new["words_with_digit"] > old["words_with_digit"] + margin:
            return f"letters: {100 * new['words_with_digit']:.1f}% words with a digit vs {100 * old['words_with_digit']:.1f}% (noise {100 * margin:.1f})"
        return None
    if name in DEMO_SETS:
        margin = max(old["noise"], 1 / max(old["numbers"], 1))
        if new["accuracy"] < old["accuracy"] - margin:
            return f"{name}: {new['found']}/{new['numbers']} vs {old['found']}/{old['numbers']}"
        if new["extra"] > old["extra"] + max(2, int(0.25 * old["extra"])):
            return f"{name}: {new['extra']} extra vs {old['extra']}"
        return None
    margin = max(old["noise"], 1 / max(old["images"], 1))
    if new["accuracy"] < old["accuracy"] - margin:
        return f"{name}: {100 * new['accuracy']:.1f}% vs {100 * old['accuracy']:.1f}% (noise {100 * margin:.1f})"
    if "digit_accuracy" in new and "digit_accuracy" in old:
        p, n = old["digit_accuracy"], max(old.get("digits", 1), 1)
        dm = max(float(np.sqrt(max(p * (1 - p), 1 / n) / n)), 1 / n)
        if new["digit_accuracy"] < p - dm:
            return f"{name}: per digit {100 * new['digit_accuracy']:.1f}% vs {100 * p:.1f}% (noise {100 * dm:.1f})"
    if "invented_share" in new and "invented_share" in old:
        p = old["invented_share"]
        im = max(float(np.sqrt(max(p * (1 - p), 1 / old["images"]) / old["images"])), 1 / old["images"])
        if new["invented_share"] > p + im:
            return f"{name}: invented numbers in {100 * new['invented_share']:.1f}% of images vs {100 * p:.1f}% (noise {100 * im:.1f})"
    return None


def format_table(cards: dict[str, dict[str, Any]], sets: Sequence[str]) -> str:
    """A Markdown table: one row per set, one column per (pair, reader)."""
    cols = [(pair, reader) for pair, card in cards.items() for reader in card]
    lines = ["| set | " + " | ".join(f"{pair} / {reader}" for pair, reader in cols) + " |",
             "| --- |" + " --- |" * len(cols)]
    for name in sets:
        cells = [_cell(name, cards[pair][reader][name]) if name in cards[pair][reader] else "" for pair, reader in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    import torch

    from train.common import UsageError
    from train.realsets import NOISE_NOTE

    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(max(1, args.threads))
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: expected at least 1")
    for path in [args.detector, args.classifier, *(args.against or [])]:
        if not Path(path).is_file():
            raise UsageError(f"{path!r}: no such weight file")
    cards = {"new": score_pair(args.detector, args.classifier, args.readers, args.sets, args)}
    if args.against:
        cards["old"] = score_pair(args.against[0], args.against[1], args.readers, args.sets, args)
    print(format_table(cards, args.sets))
    print(f"noise: {NOISE_NOTE}; demo sets: found share, and extra confirmed may grow by at most max(2, 25%)")
    losses = []
    if args.against:
        for reader in args.readers:
            for name in args.sets:
                if name not in cards["new"][reader] or name not in cards["old"][reader]:
                    continue
                why = worse(cards["new"][reader][name], cards["old"][reader][name], name)
                if why:
                    losses.append(f"{reader} {why}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        doc = {"detector": args.detector, "classifier": args.classifier, "against": args.against, "part": args.part,
               "limit": args.limit, "seeds": args.seeds, "cards": cards, "losses": losses}
        tmp = out / "scorecard.json.part"
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        tmp.replace(out / "scorecard.json")
    if losses:
        print("NOT SHIPPABLE: the new pair loses on " + "; ".join(losses))
        return 1
    if args.against:
        print("shippable: the new pair loses on no set by more than its noise")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from train.common import run_main

    return run_main(_main, argv, "train.scorecard")


if __name__ == "__main__":
    sys.exit(main())
