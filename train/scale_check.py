"""At what scale must the digit detector look at a street photo? ``python -m train.scale_check``.

Building numbers in the street photos (``train.realsets`` set ``scenes``) are often 20-40 px
tall in a 1-megapixel photo; the light detector looks at 240x320 pixels, where such a number is
5-10 px tall. This measures the fast path (detector + SmallCNN, no text reader) on the *dev*
part of the street photos (and, for what a setting costs elsewhere, of the close-ups) in each
way of giving the detector more pixels:

* ``input S``: the whole photo at a larger detector input (longest side ``S``; the shipped
  files run at 320);
* ``tiles K``: the photo cut into a ``K x K`` grid of overlapping tiles, each at the shipped
  input, the readings of all tiles put back in the photo's pixels (a number read twice where
  tiles overlap is kept once, the more confident reading);
* ``both S``: the shipped input and input ``S``, their readings merged the same way (a large
  input loses the numbers that fill a close-up: the detector's anchors are made for 240x320).

It prints, per setting and set, whole-number accuracy (a street photo is right when every boxed
number is read), numbers found, readings outside every number box per photo, and seconds per
photo on this machine, and writes them to ``--json``. The ``val`` parts are never read here.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("train.scale_check")

TILE_OVERLAP = 0.25
"""Share of a tile's side that it shares with its neighbour (a number on a border is whole in one)."""


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.scale_check", description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="weights/detector_light.pt", metavar="CKPT")
    p.add_argument("--classifier", default="weights/classifier.pt", metavar="CKPT")
    p.add_argument("--data-root", default="../shared/data", metavar="DIR", help="folder holding building_numbers")
    p.add_argument("--sets", nargs="+", default=["scenes", "closeups"], choices=["scenes", "closeups", "svhn"])
    p.add_argument("--inputs", type=int, nargs="+", default=[320, 640, 960, 1280], metavar="S",
                   help="longest side of the detector's input to try (default: 320 640 960 1280)")
    p.add_argument("--tiles", type=int, nargs="*", default=[2, 3], metavar="K", help="K x K tile grids to try (default: 2 3)")
    p.add_argument("--both", type=int, nargs="*", default=[960, 1280], metavar="S",
                   help="the shipped input and input S together (default: 960 1280)")
    p.add_argument("--limit", type=int, help="at most N photos per set (spread over it): a quick look")
    p.add_argument("--json", metavar="FILE", help="write every figure here")
    p.add_argument("--threads", type=int, default=2)
    return p


def tile_boxes(width: int, height: int, k: int, overlap: float = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """``k x k`` tiles ``(x1, y1, x2, y2)`` covering a ``width x height`` image, neighbours
    sharing ``overlap`` of a tile's side."""
    def spans(size: int) -> list[tuple[int, int]]:
        if k == 1:
            return [(0, size)]
        side = size / (k - (k - 1) * overlap)
        step = side * (1 - overlap)
        return [(int(round(i * step)), min(int(round(i * step + side)), size)) for i in range(k)]

    return [(x1, y1, x2, y2) for (y1, y2) in spans(height) for (x1, x2) in spans(width)]


def shifted(reading: Any, dx: float, dy: float) -> Any:
    """``reading`` with its box and its digits' boxes moved by ``(dx, dy)``."""
    import dataclasses

    def move(box: Sequence[float]) -> tuple[float, float, float, float]:
        return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)

    digits = tuple(dataclasses.replace(d, box=move(d.box)) for d in reading.digits)
    return dataclasses.replace(reading, box=move(reading.box), digits=digits)


def merge_tiles(per_tile: Sequence[Sequence[Any]], overlap: float = 0.5) -> list[Any]:
    """The readings of all tiles (already in the photo's pixels), a reading dropped when a more
    confident one covers more than ``overlap`` of the smaller of the two boxes."""
    from recognizer.models.textreader import overlap_of_smaller

    out: list[Any] = []
    for r in sorted((r for rs in per_tile for r in rs), key=lambda r: -r.confidence):
        kept = np.array([k.box for k in out], np.float64).reshape(-1, 4)
        if not (overlap_of_smaller(np.array([r.box], np.float64), kept) > overlap).any():
            out.append(r)
    return out


def read_tiled(rec: Any, image: np.ndarray, k: int) -> list[Any]:
    """The fast path's readings of ``image`` cut into ``k x k`` tiles, in the image's pixels."""
    h, w = image.shape[:2]
    tiles = tile_boxes(w, h, k)
    per_tile = rec.recognize([np.ascontiguousarray(image[y1:y2, x1:x2]) for (x1, y1, x2, y2) in tiles])
    return merge_tiles([[shifted(r, x1, y1) for r in rs] for (x1, y1, _, _), rs in zip(tiles, per_tile)])


def set_input(rec: Any, longest: int) -> None:
    """Run ``rec``'s detector with its input's longest side ``longest`` (3:4, as shipped)."""
    transform = rec.detector.transform
    transform.max_size = int(longest)
    transform.min_size = (int(round(longest * 0.75)),)


def _main(argv: Sequence[str] | None) -> int:
    import torch

    from recognizer.models.engine import Recognizer
    from train.inputs import read_batches
    from train.realsets import load_set, score, summarise

    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    rec = Recognizer.from_checkpoints(args.detector, args.classifier, device="cpu", tta=False)
    shipped = (tuple(rec.detector.transform.min_size), rec.detector.transform.max_size)
    settings = [("input", s) for s in args.inputs] + [("tiles", k) for k in args.tiles] + [("both", s) for s in args.both]

    def read(kind: str, value: int, image: np.ndarray) -> list[Any]:
        if kind == "input":
            return rec.recognize([image])[0]
        if kind == "tiles":
            return read_tiled(rec, image, value)
        rec.detector.transform.min_size, rec.detector.transform.max_size = shipped
        first = rec.recognize([image])[0]
        set_input(rec, value)
        return merge_tiles([first, rec.recognize([image])[0]])

    photos = {name: [(item, image) for kept, images, _ in read_batches(load_set(name, "dev", args.data_root, limit=args.limit),
                                                                       lambda i: i.path, 8)
                     for item, image in zip(kept, images)]
              for name in args.sets}
    results: list[dict[str, Any]] = []
    for kind, value in settings:
        rec.detector.transform.min_size, rec.detector.transform.max_size = shipped
        if kind == "input":
            set_input(rec, value)
        for name, items in photos.items():
            rows, t0 = [], time.perf_counter()
            for item, image in items:
                rows.append(score(item, read(kind, value, image)))
            seconds = (time.perf_counter() - t0) / max(len(items), 1)
            figures = summarise(name, rows) | {"setting": f"{kind} {value}", "seconds_per_image": round(seconds, 3)}
            results.append(figures)
            found = f", numbers found {figures['numbers_found']}/{figures['numbers']}, outside/photo " \
                    f"{figures['outside_per_photo']:.2f}" if name == "scenes" else \
                    f", extra digits/img {figures['extra_digits_per_image']:.2f}"
            print(f"{kind} {value:>5}  {name:<9} {figures['correct']:>3}/{figures['images']} = {figures['accuracy']:.1%}"
                  f"{found}, {seconds:.2f} s/image", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"detector": args.detector, "classifier": args.classifier, "part": "dev",
                                               "threads": args.threads, "results": results}, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from train.common import run_main

    return run_main(_main, argv, "train.scale_check")


if __name__ == "__main__":
    raise SystemExit(main())
