"""Wide synthetic scenes for the detector, and merging SVHN-format folders into one.

SVHN's full-format images are tight crops: digits fill most of the image height. A camera or
dashcam frame shows house numbers small, beside windows, doors and plain wall. The light
detector sees 640x480 frames at 320x240, where a digit is 10-80 px tall, so it must also be
trained on such frames. This tool pastes generated house numbers (``recognizer.synth``) at
random sizes onto generated facades and writes them in SVHN's format (PNGs + digitStruct.mat).

    python tools/synth_scenes.py scenes --out data/scenes --n 6000 --seed 7
    python tools/synth_scenes.py merge --out data/det_train data/synth_full data/scenes \
        ../shared/data/svhn_real/full:1-128:x20

``merge`` links (or copies) the images of several SVHN-format folders (digitStruct.mat or
labels.json) into one folder with one digitStruct.mat; ``DIR:RANGES:xK`` keeps only images whose
file number is in RANGES and repeats them K times (to give a small real set weight).
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # run from a checkout: make train/ importable
    sys.path.insert(0, str(_ROOT))

from recognizer.errors import UsageError, run_main  # noqa: E402
from recognizer.synth import Generator  # noqa: E402
from recognizer.synth.painting import paint_sign  # noqa: E402
from recognizer.synth.textures import add_clutter, random_wall  # noqa: E402
from train.common import in_ranges, parse_ranges  # noqa: E402
from train.datasets import image_number  # noqa: E402
from train.svhn import SVHNFormatError, SVHNImage, read_digitstruct, read_labels_json, write_digitstruct  # noqa: E402

log = logging.getLogger("synth_scenes")

_GEN: Generator | None = None


def render_scene(
    rng: np.random.Generator, gen: Generator, first_index: int, size: tuple[int, int] = (240, 320)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One facade with 1-3 house numbers pasted at random sizes, and 0-3 signs or words (unlabelled).

    Args:
        rng: the scene's random stream.
        gen: house-number generator; samples ``first_index``, ``first_index + 1``, ... are used.
        size: ``(height, width)`` of the scene in pixels.

    Returns:
        ``(image (H, W, 3) uint8 BGR, boxes (N, 4) float32 xyxy, digits (N,) int64)``.
    """
    h, w = size
    unit = float(rng.uniform(8, 30))
    _, wall = random_wall(rng, h, w, unit)
    kx, ky = float(rng.uniform(0, w)), float(rng.uniform(0, h))
    add_clutter(rng, wall, unit, (kx, ky, kx + unit, ky + unit))
    placed: list[tuple[int, int, int, int]] = []
    # Signs, names and words on the wall: text the detector must leave alone.
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        th = float(np.exp(rng.uniform(np.log(10), np.log(60))))
        tx, ty = float(rng.uniform(-0.2 * w, 0.8 * w)), float(rng.uniform(-0.1 * h, h - th))
        tb = paint_sign(rng, wall, gen.families, tx, ty, th)
        if len(tb):
            m = th * 0.5
            x1, y1 = int(tb[:, 0].min() - m), int(tb[:, 1].min() - m)
            placed.append((x1, y1, int(tb[:, 2].max() + m) - x1, int(tb[:, 3].max() + m) - y1))
    canvas = np.clip(wall * 255, 0, 255).astype(np.uint8)
    boxes, digits = [], []
    for k in range(int(rng.integers(1, 4))):
        sample = gen.sample(first_index + k)
        sh = float(np.median(sample.boxes[:, 3] - sample.boxes[:, 1]))
        target = float(np.exp(rng.uniform(np.log(10), np.log(80))))
        scale = target / max(sh, 1.0)
        ph, pw = (int(round(d * scale)) for d in sample.image.shape[:2])
        if ph < 4 or pw < 4 or ph > h or pw > w:
            continue
        for _ in range(12):
            x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
            if all(x + pw <= a or a + c <= x or y + ph <= b or b + d <= y for a, b, c, d in placed):
                break
        else:
            continue
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        patch = cv2.resize(sample.image, (pw, ph), interpolation=interp)
        canvas[y : y + ph, x : x + pw] = patch
        placed.append((x, y, pw, ph))
        b = sample.boxes * scale + np.array([x, y, x, y], np.float32)
        boxes.append(b)
        digits.append(sample.digits)
    if rng.random() < 0.6:
        canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.6:
        noise = rng.normal(0, rng.uniform(1, 6), canvas.shape)
        canvas = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, enc = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
        canvas = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    if boxes:
        return canvas, np.concatenate(boxes).astype(np.float32), np.concatenate(digits).astype(np.int64)
    return canvas, np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)


def _init(seed: int) -> None:
    global _GEN
    cv2.setNumThreads(1)
    _GEN = Generator(seed=seed + 7919)


def _render_to_file(job: tuple[int, int, str, tuple[int, int]]) -> SVHNImage:
    seed, index, out, size = job
    assert _GEN is not None
    rng = np.random.default_rng([seed, index, 31])
    image, boxes, digits = render_scene(rng, _GEN, index * 3, size)
    name = f"{index + 1}.png"
    cv2.imwrite(os.path.join(out, name), image)
    ltwh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1) if len(boxes) else boxes
    return SVHNImage(name=name, boxes=ltwh.astype(np.float32), digits=digits)


def make_scenes(out: Path, n: int, seed: int, workers: int, size: tuple[int, int]) -> list[SVHNImage]:
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, str(out), size) for i in range(n)]
    if workers <= 1:
        _init(seed)
        records = [_render_to_file(j) for j in jobs]
    else:
        with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(seed,)) as pool:
            records = list(pool.imap(_render_to_file, jobs, chunksize=16))
    records = [r for r in records if len(r.digits)]
    write_digitstruct(out / "digitStruct.mat", records)
    return records


def _read_split(folder: Path) -> list[SVHNImage]:
    if (folder / "digitStruct.mat").exists():
        return read_digitstruct(folder / "digitStruct.mat")
    if (folder / "labels.json").exists():
        return read_labels_json(folder / "labels.json")
    raise SVHNFormatError(f"{folder}: no digitStruct.mat or labels.json; expected an SVHN-format folder")


def merge(out: Path, specs: Sequence[str]) -> list[SVHNImage]:
    """Merge SVHN-format folders into ``out`` (images linked or copied, one digitStruct.mat)."""
    out.mkdir(parents=True, exist_ok=True)
    merged: list[SVHNImage] = []
    for spec in specs:
        parts = spec.split(":")
        folder = Path(parts[0])
        ranges = parse_ranges(parts[1]) if len(parts) > 1 and parts[1] else None
        repeat = int(parts[2][1:]) if len(parts) > 2 else 1
        records = _read_split(folder)
        if ranges:
            records = [r for r in records if (n := image_number(r.name)) is not None and in_ranges(n, ranges)]
        for _rep in range(repeat):
            for r in records:
                name = f"{len(merged) + 1}.png"
                src, dst = folder / r.name, out / name
                if dst.exists():
                    dst.unlink()
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
                merged.append(SVHNImage(name=name, boxes=r.boxes, digits=r.digits))
        log.info("%s: %d images x %d", folder, len(records), repeat)
    write_digitstruct(out / "digitStruct.mat", merged)
    return merged


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("scenes", help="wide facades with small house numbers")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    s.add_argument("--size", default="240x320", help="HEIGHTxWIDTH (default 240x320, the light detector's input)")
    m = sub.add_parser("merge", help="merge SVHN-format folders")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("specs", nargs="+", help="DIR[:RANGES[:xK]]")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_main("synth_scenes", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    t0 = time.time()
    try:
        if args.mode == "scenes":
            if args.n <= 0:
                raise UsageError(f"--n {args.n}: expected a positive count")
            hh, _, ww = args.size.partition("x")
            records = make_scenes(args.out, args.n, args.seed, args.workers, (int(hh), int(ww)))
        else:
            records = merge(args.out, args.specs)
    except (SVHNFormatError, OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {len(records)} images to {args.out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
