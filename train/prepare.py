"""Crop every digit of SVHN format-1 splits into 32x32 PNGs for the classifier (the notebook's step).

    python -m train.prepare --data data/svhn --split train,test --out SVHN_crops [--pad 0.0] [--workers 4]

reads ``DATA/<split>/digitStruct.mat`` (or ``labels.json``) and the images next to it, and
writes ``OUT/<split>/<digit>/<image>_<k>.png`` (``k``: the box's position in the image), cut
with :func:`recognizer.models.preprocess.crop_digits` so training crops match inference crops. Each
split also gets ``index.csv`` (one row per crop: file, digit, source image, box) and
``prepare.json`` (settings and counts). Re-running is idempotent: crops already there are
kept, the index is rewritten the same. ``--data`` may also name a split folder itself.
Images listed but missing or unreadable are counted and skipped.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from recognizer.models.preprocess import DEFAULT_CROP_PAD, crop_digits

log = logging.getLogger("train.prepare")

PROG = "train.prepare"
INDEX_FIELDS = ("file", "digit", "image", "box", "left", "top", "width", "height")
STATE_FILE = "prepare.json"


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Crop every digit of SVHN format-1 splits into OUT/<split>/<digit>/<image>_<k>.png.",
    )
    p.add_argument("--data", required=True, help="folder holding the split folders (train/, test/, extra/) "
                   "or one split folder (digitStruct.mat or labels.json + images)")
    p.add_argument("--split", default="train", help="split name(s), comma-separated (default: train)")
    p.add_argument("--out", default="SVHN_crops", help="output folder (default: SVHN_crops)")
    p.add_argument("--pad", type=float, default=DEFAULT_CROP_PAD,
                   help="margin around the square digit window, as a fraction of its side (default: %(default)s, "
                   "SVHN's 32x32 framing)")
    p.add_argument("--workers", type=int, default=1, help="processes cropping images (default: 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite every crop (needed to change --pad of an existing output)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


# --------------------------------------------------------------------------- work


def _write_png(path: Path, crop_rgb: np.ndarray) -> None:
    """Write atomically, so an interrupted run never leaves half a PNG behind."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(crop_rgb[:, :, ::-1])):
        raise OSError(f"cannot write {path}")
    os.replace(tmp, path)


def crop_image(task: tuple[str, str, list[list[float]], list[int], str, float, bool]) -> tuple[list[list[Any]], str | None]:
    """Crop one image's digits and write them (runs in worker processes).

    Args:
        task: ``(image path, record name, boxes ltwh, digits, split output folder, pad, overwrite)``.

    Returns:
        ``(index rows, None)`` or ``([], reason)`` when the image is missing or unreadable.
    """
    from train.datasets import read_image

    image_path, name, boxes, digits, out_dir, pad, overwrite = task
    image, reason = read_image(image_path)
    if image is None:
        return [], reason
    ltwh = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    xyxy = np.concatenate([ltwh[:, :2], ltwh[:, :2] + ltwh[:, 2:]], axis=1)
    crops = crop_digits(image, xyxy, pad=pad)
    stem = Path(name).stem
    rows = []
    for k, (crop, digit, box) in enumerate(zip(crops, digits, ltwh.tolist())):
        rel = f"{digit}/{stem}_{k}.png"
        target = Path(out_dir) / rel
        if overwrite or not target.is_file():
            _write_png(target, crop)
        number = int(stem) if stem.isdigit() else -1
        rows.append([rel, int(digit), number, k, *(_num(v) for v in box)])
    return rows, None


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _run_tasks(tasks: list[tuple], workers: int, show_progress: bool, desc: str) -> Iterator[tuple[list[list[Any]], str | None]]:
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr)
    try:
        if workers <= 1:
            for t in tasks:
                yield crop_image(t)
                if bar is not None:
                    bar.update(1)
            return
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            for result in pool.imap(crop_image, tasks, chunksize=max(1, min(64, len(tasks) // (workers * 8) or 1))):
                yield result
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _split_folder(data: Path, split: str) -> Path:
    """``DATA/<split>`` when it exists, else DATA itself when it is a split folder."""
    from train.common import UsageError

    def annotated(folder: Path) -> bool:
        return (folder / "digitStruct.mat").is_file() or (folder / "labels.json").is_file()

    candidate = data / split
    if annotated(candidate):
        return candidate
    if annotated(data):  # a split folder itself, or labels.json naming "<split>/N.png"
        return data
    raise UsageError(
        f"--data {str(data)!r}: no {split}/ folder and no digitStruct.mat or labels.json in it; "
        "expected the folder train.tar.gz / test.tar.gz were extracted into"
    )


def prepare_split(
    data: Path, split: str, out: Path, *, pad: float, workers: int, overwrite: bool, show_progress: bool
) -> dict[str, Any]:
    """Crop one split; returns the summary written to ``OUT/<split>/prepare.json``."""
    from train.common import TrainingError, UsageError
    from train.datasets import DatasetError, load_split
    from train.svhn import SVHNFormatError

    folder = _split_folder(data, split)
    try:
        loaded = load_split(folder, workers=workers)
    except (DatasetError, SVHNFormatError) as exc:
        raise UsageError(str(exc)) from None
    records = loaded.records
    if not records:
        raise UsageError(f"{loaded.annotation_file}: the split lists no images; nothing to crop")
    out_dir = out / split
    state_path = out_dir / STATE_FILE
    source = str(loaded.annotation_file.resolve())
    if state_path.is_file() and not overwrite:
        try:
            old = json.loads(state_path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("pad") != pad or old.get("source") != source:
            raise UsageError(
                f"{out_dir} holds crops made with pad {old.get('pad')!r} from {old.get('source')!r}; "
                f"use another --out, or --overwrite to re-crop with pad {pad} from {source}"
            )
    try:
        for d in range(10):
            (out_dir / str(d)).mkdir(parents=True, exist_ok=True)
        # Written first, so an interrupted run is still recognised (and its pad checked) next time.
        _write_json(state_path, {"source": source, "pad": pad, "size": 32, "complete": False})
    except OSError as exc:
        raise UsageError(f"--out {str(out)!r}: cannot write there ({exc.strerror or exc})") from None

    t0 = time.perf_counter()
    tasks = [
        (str(loaded.image_root / r.name), r.name, r.boxes.tolist(), r.digits.tolist(), str(out_dir), pad, overwrite)
        for r in records
    ]
    rows: list[list[Any]] = []
    skipped: list[dict[str, str]] = []
    try:
        for task, (task_rows, reason) in zip(tasks, _run_tasks(tasks, workers, show_progress, f"crop {split}")):
            if reason is not None:
                skipped.append({"image": task[1], "reason": reason})
                log.warning("%s: skipping %s (%s)", split, task[1], reason)
            rows.extend(task_rows)
    except OSError as exc:  # disk full, folder removed under us: one line, crops so far stay
        raise TrainingError(f"writing crops to {out_dir} failed: {exc}") from None
    if len(skipped) == len(records):
        raise UsageError(
            f"{loaded.annotation_file}: none of its {len(records)} images could be read "
            f"(first: {skipped[0]['image']}, {skipped[0]['reason']}); are the PNGs next to it?"
        )
    index_tmp = out_dir / ".index.csv.tmp"
    with open(index_tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(INDEX_FIELDS)
        writer.writerows(rows)
    os.replace(index_tmp, out_dir / "index.csv")
    counts = np.bincount([r[1] for r in rows], minlength=10).tolist()
    summary = {
        "source": source,
        "pad": pad,
        "size": 32,
        "complete": True,
        "images": len(records) - len(skipped),
        "crops": len(rows),
        "per_digit": counts,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    _write_json(state_path, summary)
    return summary


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _main(argv: Sequence[str] | None) -> int:
    from train.common import UsageError, setup_logging

    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    data = Path(args.data)
    if not data.is_dir():
        raise UsageError(f"--data {args.data!r}: no such folder")
    if not 0.0 <= args.pad <= 2.0 or not np.isfinite(args.pad):
        raise UsageError(f"--pad {args.pad}: expected a fraction between 0 and 2 (0 = SVHN's framing)")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected 1 or more")
    splits = [s.strip() for s in args.split.split(",") if s.strip()]
    if not splits or any(("/" in s or s in (".", "..")) for s in splits):
        raise UsageError(f"--split {args.split!r}: expected split names such as train,test")
    out = Path(args.out)
    for split in splits:
        summary = prepare_split(data, split, out, pad=args.pad, workers=args.workers, overwrite=args.overwrite,
                                show_progress=not args.no_progress)
        print(
            f"{split}: {summary['crops']} crops from {summary['images']} images -> {out / split} "
            f"({len(summary['skipped'])} images skipped, {summary['seconds']} s)"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input, with a one-line error)."""
    from train.common import run_main

    return run_main(_main, argv, PROG)


if __name__ == "__main__":
    sys.exit(main())
