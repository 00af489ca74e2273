"""Real letters in real scenes as classifier crops: ``python -m train.scene_text``.

The classifier's "not a digit" class has to know letters, or a name plate's letters are read
as digits. This command cuts 32x32 crops, framed exactly as the recognizer frames a detection
(:func:`recognizer.models.preprocess.crop_digits`: the box widened to a square, neighbours showing),
from a folder laid out like ``../shared/data/scene_text`` (see its README):

* ``chars.json`` + ``chars/``: single characters from street-view images (the whole image is
  the character's box);
* ``words_iiit5k.json`` + ``words_iiit5k/``: words with one box per character;
* ``words_svt.json`` + ``words_svt/``: shop-sign word crops (the whole image is the word), cut
  into windows like the ICDAR words;
* ``scenes_icdar2015.json`` + ``scenes_icdar2015/``: street photos with every word boxed; only
  letters-only words are used, cut into character-sized windows along the word (``--icdar-step``).

Letters (and any character that is not a digit) are labelled -1, "not a digit", except I, l
and O, which many fonts draw like 1 and 0 (``recognizer.synth.words.DIGIT_LIKE``: skipped); with
``--digits`` the real digits of the first two sets are kept as their digit too. The output is
an ``.npz`` (``X`` (N, 32, 32, 3) uint8 RGB, ``y``, ``source`` the set each crop came from,
``char`` the character) that ``python -m train.classifier --train`` reads.

``--photos-out DIR`` writes instead an SVHN-format folder of the ICDAR photos (of
``--icdar-images``) that hold no word with a digit, with no digit box: images the detector
learns to find nothing in (``train.detector --train``, ``tools/synth_scenes.py merge``).
Unreadable "###" words may hide a digit now and then; they are left as they are.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recognizer.synth.words import DIGIT_LIKE
from train.common import UsageError, run_main, save_npz, setup_logging
from train.inputs import photo_number

log = logging.getLogger("train.scene_text")

NOT_DIGIT = -1
SETS = ("chars", "iiit5k", "icdar", "svt")


def label_of(char: str, keep_digits: bool) -> int | None:
    """The classifier label of one character: its digit, -1 for anything else, None to skip."""
    if len(char) != 1 or char.isspace():
        return None
    if char.isdigit() and char in "0123456789":
        return int(char) if keep_digits else None
    if char in DIGIT_LIKE:  # I, l, O: drawn like 1 and 0 in many fonts; not taught either way
        return None
    return NOT_DIGIT


def word_windows(quad: Sequence[float], step: float) -> np.ndarray:
    """Character-sized xyxy windows along a word's quadrilateral (axis-aligned hull).

    Each window is as tall as the word and half as wide (a typical letter), placed every
    ``step`` word heights from the left end to the right end.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2)
    x1, y1 = q.min(0)
    x2, y2 = q.max(0)
    h = y2 - y1
    if h < 6 or x2 - x1 < 0.4 * h:
        return np.zeros((0, 4), np.float32)
    w = 0.5 * h
    xs = np.arange(x1, max(x2 - w, x1) + 1e-6, max(step * h, 1.0))
    return np.array([[x, y1, x + w, y2] for x in xs], np.float32)


def collect(root: Path, sets: Sequence[str], *, keep_digits: bool = False, icdar_step: float = 0.5,
            limit: int | None = None, icdar_images: str | None = None) -> dict[str, np.ndarray]:
    """Cut every crop of ``sets`` from ``root``; see the module docstring.

    ``icdar_images`` (e.g. ``"1-250"``) keeps only ICDAR photos ``img_N`` whose N is in those
    ranges, so the others can serve as a real-scene check that was never trained on.
    """
    from recognizer.models.preprocess import crop_digits
    from train.common import in_ranges, parse_ranges
    from train.datasets import read_image

    icdar_ranges = parse_ranges(icdar_images) if icdar_images else None

    def _read(path: Path) -> np.ndarray | None:
        return read_image(path)[0]  # a missing or unreadable image is skipped

    X: list[np.ndarray] = []
    y: list[int] = []
    src: list[str] = []
    chars: list[str] = []

    def add(image: np.ndarray, boxes: np.ndarray, labels: list[int], name: str, cs: list[str]) -> None:
        if len(boxes):
            X.append(crop_digits(image, boxes))
            y.extend(labels)
            src.extend([name] * len(labels))
            chars.extend(cs)

    def items(name: str) -> list[dict[str, Any]]:
        f = root / f"{name}.json"
        if not f.is_file():
            raise UsageError(f"--data {root}: no {f.name}; expected a folder laid out like ../shared/data/scene_text")
        data = json.loads(f.read_text())
        return data[:limit] if limit else data

    if "chars" in sets:
        for it in items("chars"):
            lab = label_of(str(it["char"]), keep_digits)
            img = _read(root / it["file"]) if lab is not None else None
            if img is None:
                continue
            h, w = img.shape[:2]
            add(img, np.array([[0, 0, w, h]], np.float32), [lab], "chars", [str(it["char"])])
    if "iiit5k" in sets:
        for it in items("words_iiit5k"):
            img = _read(root / it["file"])
            if img is None:
                continue
            boxes, labels, cs = [], [], []
            for x, yy, w, h, c in it["chars"]:
                lab = label_of(str(c), keep_digits)
                if lab is None or w < 2 or h < 4:
                    continue
                boxes.append([x, yy, x + w, yy + h])
                labels.append(lab)
                cs.append(str(c))
            add(img, np.asarray(boxes, np.float32).reshape(-1, 4), labels, "iiit5k", cs)
    if "icdar" in sets:
        for it in items("scenes_icdar2015"):
            number = photo_number(it["file"])
            if icdar_ranges is not None and (number is None or not in_ranges(number, icdar_ranges)):
                continue
            words = [w for w in it["words"] if w["text"] != "###" and w["text"].strip()
                     and not any(ch.isdigit() for ch in w["text"])]
            if not words:
                continue
            img = _read(root / it["file"])
            if img is None:
                continue
            boxes = np.concatenate([word_windows(w["quad"], icdar_step) for w in words])
            add(img, boxes, [NOT_DIGIT] * len(boxes), "icdar", ["?"] * len(boxes))
    if "svt" in sets:
        for it in items("words_svt"):
            if any(ch.isdigit() for ch in str(it["text"])):
                continue
            img = _read(root / it["file"])
            if img is None:
                continue
            h, w = img.shape[:2]
            boxes = word_windows([0, 0, w, 0, w, h, 0, h], icdar_step)
            add(img, boxes, [NOT_DIGIT] * len(boxes), "svt", ["?"] * len(boxes))
    if not X:
        raise UsageError(f"--data {root}: no crops found in sets {', '.join(sets)}")
    return {"X": np.concatenate(X), "y": np.asarray(y, np.int64), "source": np.asarray(src), "char": np.asarray(chars)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.scene_text", description=__doc__.split("\n\n")[0], add_help=add_help)
    p.add_argument("--data", required=True, metavar="DIR", help="folder laid out like ../shared/data/scene_text")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", metavar="FILE.npz", help="crop file to write (must not exist)")
    out.add_argument("--photos-out", metavar="DIR", help="write the ICDAR photos without digits as an SVHN-format folder of "
                                                         "images with no digit box (for the detector) instead")
    p.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)} (default: all)")
    p.add_argument("--digits", action="store_true", help="keep real digits as their digit (default: skip them)")
    p.add_argument("--icdar-step", type=float, default=0.5, help="window step along ICDAR words, in word heights (default 0.5)")
    p.add_argument("--limit", type=int, help="at most N entries of each set (for tests)")
    p.add_argument("--icdar-images", metavar="RANGES",
                   help="use only ICDAR photos img_N with N in RANGES, e.g. 1-250 (the rest stay a check)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in sets if s not in SETS]
    if bad or not sets:
        raise UsageError(f"--sets {args.sets!r}: expected a comma-separated subset of {','.join(SETS)}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: expected at least 1 entry per set")
    if not args.icdar_step > 0 or not np.isfinite(args.icdar_step):
        raise UsageError(f"--icdar-step {args.icdar_step}: expected a positive number")
    if args.photos_out:
        return _photos_out(Path(args.data), Path(args.photos_out), args.icdar_images)
    out = Path(args.out)
    if not out.name.lower().endswith(".npz"):
        raise UsageError(f"--out {out}: expected a file name ending in .npz")
    if out.exists():
        raise UsageError(f"--out {out} exists; choose another name (nothing is overwritten)")
    root = Path(args.data)
    if not root.is_dir():
        raise UsageError(f"--data {root}: not a folder")
    t0 = time.perf_counter()
    data = collect(root, sets, keep_digits=args.digits, icdar_step=args.icdar_step, limit=args.limit,
                   icdar_images=args.icdar_images)
    save_npz(out, **data)
    n_neg = int((data["y"] == NOT_DIGIT).sum())
    per = {s: int((data["source"] == s).sum()) for s in sets}
    print(f"wrote {out}: {len(data['y'])} crops ({n_neg} not digits, {len(data['y']) - n_neg} digits; "
          + ", ".join(f"{k} {v}" for k, v in per.items()) + f") in {time.perf_counter() - t0:.1f} s")
    return 0


def _photos_out(root: Path, out: Path, ranges_text: str | None) -> int:
    import os
    import shutil

    from train.common import in_ranges, parse_ranges
    from train.svhn import SVHNImage
    from train.svhn_write import write_labels_json

    index = root / "scenes_icdar2015.json"
    if not index.is_file():
        raise UsageError(f"--data {root}: no scenes_icdar2015.json; expected a folder laid out like ../shared/data/scene_text")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--photos-out {out}: exists and is not empty; give a new folder")
    ranges = parse_ranges(ranges_text) if ranges_text else None
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for p in json.loads(index.read_text(encoding="utf-8")):
        n = photo_number(p["file"])
        if ranges is not None and (n is None or not in_ranges(n, ranges)):
            continue
        if any(any(ch.isdigit() for ch in str(w.get("text", ""))) for w in p["words"]):
            continue
        src, name = root / p["file"], Path(p["file"]).name
        try:
            os.link(src, out / name)
        except OSError:
            shutil.copyfile(src, out / name)
        records.append(SVHNImage(name, np.zeros((0, 4)), np.zeros(0, np.int64)))
    write_labels_json(out / "labels.json", records)
    print(f"wrote {out}: {len(records)} photos without digits, no digit boxes")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input)."""
    return run_main(_main, argv, "train.scene_text")


if __name__ == "__main__":
    sys.exit(main())
