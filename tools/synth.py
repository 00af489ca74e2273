"""Write synthetic SVHN-like house numbers in SVHN's own formats.

    python tools/synth.py full  --out data/synth/train --n 20000 --seed 1
        -> data/synth/train/1.png ... 20000.png + digitStruct.mat (read by train.svhn)
    python tools/synth.py crops --out data/synth/crops.npz --n 100000 --seed 2
        -> X (N, 32, 32, 3) uint8 RGB, y (N,) digits, source_image, source_box (.npz),
           or the official train_32x32.mat layout when the name ends in .mat
    python tools/synth.py sheet --out /tmp/sheet.png
        -> real SVHN images (if ../shared/data/svhn_real is there) next to synthetic ones
    python tools/synth.py plates --out data/synth_plates --n 3000 --seed 1 --size 240x320
        -> close-up photos of plates (recognizer.synth.plates), 1.png ... + digitStruct.mat;
           a letter suffix ("502C") is drawn but only the digits are labelled
    python tools/synth.py plate-crops --out data/plate_crops.npz --n 20000 --seed 2 [--text-crops]
        -> 32x32 crops of their digits (and, with --text-crops, of their letters, labelled -1)

Image ``i`` of a seed is always the same picture, whatever ``--workers`` is.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # run from a checkout: make train/ and recognizer/ importable
    sys.path.insert(0, str(_ROOT))

from recognizer.errors import UsageError, finite_float, run_main  # noqa: E402
from recognizer.models.preprocess import crop_digits  # noqa: E402
from recognizer.synth import SynthConfig, SynthSample, generate  # noqa: E402
from recognizer.synth.plates import PlateConfig, generate_plates  # noqa: E402
from recognizer.synth.words import DIGIT_LIKE  # noqa: E402

DEFAULT_REAL = _ROOT.parent / "shared" / "data" / "svhn_real"


def svhn_boxes(sample: SynthSample) -> np.ndarray:
    """xyxy float boxes -> SVHN's integer ``[left, top, width, height]`` (float32 ``(N, 4)``)."""
    b = np.round(sample.boxes.astype(np.float64))
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).astype(np.float32)


def _progress(it: Iterator[tuple[int, SynthSample]], n: int, what: str, quiet: bool) -> Iterator[tuple[int, SynthSample]]:
    t0 = time.perf_counter()
    for k, item in enumerate(it, 1):
        yield item
        if not quiet and (k % 1000 == 0 or k == n):
            dt = time.perf_counter() - t0
            print(f"\r{what}: {k}/{n} images, {k / max(dt, 1e-9):.0f} images/s", end="", file=sys.stderr, flush=True)
    if not quiet and n:
        print(file=sys.stderr)


Source = Callable[..., Iterator[tuple[int, SynthSample]]]
"""A sample stream like :func:`recognizer.synth.generate` (``n, seed, start=, workers=, config=``);
:func:`recognizer.synth.plates.generate_plates` is the other one (its samples have the same fields)."""


def write_full(out: Path, n: int, seed: int, *, start: int = 0, workers: int | None = None,
               config: SynthConfig | PlateConfig | None = None, overwrite: bool = False, quiet: bool = True,
               source: Source | None = None) -> dict[str, float]:
    """Render ``n`` images into ``out/{index+1}.png`` plus ``out/digitStruct.mat``
    (from ``source``, default :func:`recognizer.synth.generate`).

    Returns:
        ``{"images": n, "seconds": wall time, "images_per_s": rate}``.
    """
    from train.svhn import SVHNImage, write_digitstruct

    if n < 1:
        raise UsageError(f"--n {n}: expected at least 1 image")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; expected a folder for the PNGs and digitStruct.mat")
    ds = out / "digitStruct.mat"
    if ds.exists() and not overwrite:
        raise UsageError(f"{ds} exists; pass --overwrite to replace it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    images: list[SVHNImage] = []
    samples = (source or generate)(n, seed, start=start, workers=workers, config=config)
    for i, s in _progress(samples, n, "full" if source is None else "plates", quiet):
        name = f"{i + 1}.png"
        if not cv2.imwrite(str(out / name), s.image):
            raise OSError(f"could not write {out / name}")
        images.append(SVHNImage(name, svhn_boxes(s), s.digits))
    write_digitstruct(ds, images)
    dt = time.perf_counter() - t0
    return {"images": n, "seconds": dt, "images_per_s": n / dt}


def make_crops(n: int, seed: int, *, start: int = 0, workers: int | None = None,
               config: SynthConfig | PlateConfig | None = None, quiet: bool = True, text_crops: bool = False,
               source: Source | None = None) -> dict[str, np.ndarray]:
    """Render images (from ``source``, default :func:`recognizer.synth.generate`) until ``n``
    digit crops are collected (SVHN format-2 framing).

    Each digit box is widened to a square and resized to 32x32 by
    :func:`recognizer.models.preprocess.crop_digits`, so neighbouring digits show at the sides.
    With ``text_crops`` the letters and symbols drawn around the numbers are cropped the same
    way and labelled -1, "not a digit" (they count towards ``n``), except those that many fonts
    draw like a digit (:data:`recognizer.synth.words.DIGIT_LIKE`).

    Returns:
        ``X`` (n, 32, 32, 3) uint8 RGB, ``y`` (n,) int64 digits, ``source_image`` (n,) int64
        (image index + 1) and ``source_box`` (n, 4) float32 ``[left, top, width, height]``.
    """
    if n < 1:
        raise UsageError(f"--n {n}: expected at least 1 crop")
    X = np.empty((n, 32, 32, 3), np.uint8)
    y = np.empty(n, np.int64)
    src = np.empty(n, np.int64)
    sbox = np.empty((n, 4), np.float32)
    k = 0
    # About 2.5 digits per image; over-ask a little and stop once there are enough.
    budget = int(n / 2.2) + 64
    it = (source or generate)(budget * 4, seed, start=start, workers=workers, config=config)
    t0 = time.perf_counter()
    for i, s in it:
        boxes, labels = s.boxes, s.digits
        if text_crops and len(s.text_boxes):
            # Letters that look like digits in many fonts (I, l, O) are left out, not taught as "not a digit".
            tb = s.text_boxes[[c not in DIGIT_LIKE for c in s.text_chars]] if s.text_chars else s.text_boxes
            boxes = np.concatenate([boxes, tb])
            labels = np.concatenate([labels, np.full(len(tb), -1, np.int64)])
        crops = crop_digits(s.image, boxes)
        take = min(len(crops), n - k)
        X[k : k + take] = crops[:take]
        y[k : k + take] = labels[:take]
        src[k : k + take] = i + 1
        b = np.round(boxes[:take].astype(np.float64))
        sbox[k : k + take] = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
        k += take
        if not quiet and (k % 5000 < take or k == n):
            print(f"\rcrops: {k}/{n}, {k / (time.perf_counter() - t0):.0f} crops/s", end="", file=sys.stderr, flush=True)
        if k >= n:
            break
    it.close()  # stops the worker pool
    if not quiet:
        print(file=sys.stderr)
    return {"X": X, "y": y, "source_image": src, "source_box": sbox}


def write_crops(out: Path, n: int, seed: int, *, overwrite: bool = False, **kwargs: object) -> dict[str, float]:
    """:func:`make_crops` into ``out`` (``.npz`` with X/y/source_image/source_box, or ``.mat``)."""
    suffix = out.suffix.lower()
    if suffix not in (".npz", ".mat"):
        raise UsageError(f"--out {out}: expected a file name ending in .npz or .mat")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it or choose another --out")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    t0 = time.perf_counter()
    data = make_crops(n, seed, **kwargs)  # type: ignore[arg-type]
    tmp = out.with_name(out.name + ".tmp" + suffix)
    if suffix == ".npz":
        np.savez_compressed(tmp, **data)
    else:
        from train.svhn import write_32x32_mat

        write_32x32_mat(tmp, data["X"], data["y"])
    os.replace(tmp, out)
    dt = time.perf_counter() - t0
    return {"crops": n, "seconds": dt, "crops_per_s": n / dt}


# --------------------------------------------------------------------------- sample sheet


def _tile(img: np.ndarray, th: int, tw: int) -> np.ndarray:
    """Fit an image into a ``th`` x ``tw`` tile (scaled to height, shrunk if too wide)."""
    h, w = img.shape[:2]
    s = min(th / h, tw / w)
    interp = cv2.INTER_NEAREST if s > 1.5 else (cv2.INTER_LINEAR if s >= 1 else cv2.INTER_AREA)
    r = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=interp)
    t = np.full((th, tw, 3), 32, np.uint8)
    y0, x0 = (th - r.shape[0]) // 2, (tw - r.shape[1]) // 2
    t[y0 : y0 + r.shape[0], x0 : x0 + r.shape[1]] = r
    return t


def _grid(tiles: Sequence[np.ndarray], cols: int, gap: int = 2) -> np.ndarray:
    th, tw = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    g = np.zeros((rows * (th + gap), cols * (tw + gap), 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        g[r * (th + gap) : r * (th + gap) + th, c * (tw + gap) : c * (tw + gap) + tw] = t
    return g


def _fit_width(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[1] >= width:
        return a[:, :width]
    return np.hstack([a, np.zeros((a.shape[0], width - a.shape[1], 3), np.uint8)])


def _header(text: str, width: int) -> np.ndarray:
    h = np.zeros((28, width, 3), np.uint8)
    cv2.putText(h, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return h


def make_sheet(seed: int, n: int, real_dir: Path | None, *, boxes: bool = False, config: SynthConfig | None = None) -> np.ndarray:
    """Real SVHN full images and crops (left) beside synthetic ones (right), as one BGR image."""
    th, tw, cols = 72, 168, 4
    synth = [s for _, s in generate(n, seed, workers=1, config=config)]
    syn_tiles, syn_crops = [], []
    for s in synth:
        img = s.image.copy()
        if boxes:
            for b in s.boxes:
                cv2.rectangle(img, (int(b[0]), int(b[1])), (int(np.ceil(b[2])) - 1, int(np.ceil(b[3])) - 1), (0, 255, 0), 1)
        syn_tiles.append(_tile(img, th, tw))
        for c in crop_digits(s.image, s.boxes):
            syn_crops.append(cv2.resize(c[:, :, ::-1], (64, 64), interpolation=cv2.INTER_NEAREST))
    width = cols * (tw + 2)
    ccols = width // 66
    right = np.vstack([_header(f"synthetic (seed {seed})", width), _grid(syn_tiles, cols),
                       _fit_width(_grid(syn_crops[: 3 * ccols], ccols), width)])
    if real_dir is None or not (real_dir / "full" / "labels.json").is_file():
        return right
    labels = json.loads((real_dir / "full" / "labels.json").read_text())
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(labels), size=min(n, len(labels)), replace=False)
    real_tiles = [_tile(cv2.imread(str(real_dir / "full" / labels[i]["file"])), th, tw) for i in pick]
    real_crops: list[np.ndarray] = []
    npz = real_dir / "crops" / "train_crops_1083.npz"
    if npz.is_file():
        X = np.load(npz)["X"]
        for i in rng.choice(len(X), size=min(len(X), len(syn_crops)), replace=False):
            real_crops.append(cv2.resize(X[i][:, :, ::-1], (64, 64), interpolation=cv2.INTER_NEAREST))
    left_parts = [_header("real SVHN (never commit)", width), _grid(real_tiles, cols)]
    if real_crops:
        left_parts.append(_fit_width(_grid(real_crops[: 3 * ccols], ccols), width))
    left = np.vstack(left_parts)
    h = max(left.shape[0], right.shape[0])
    pad = lambda a: np.vstack([a, np.zeros((h - a.shape[0], a.shape[1], 3), np.uint8)])  # noqa: E731
    return np.hstack([pad(left), np.full((h, 8, 3), 255, np.uint8), pad(right)])


# --------------------------------------------------------------------------- CLI


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True, metavar="MODE")

    def common(sp: argparse.ArgumentParser, n_help: str) -> None:
        sp.add_argument("--out", type=Path, required=True)
        sp.add_argument("--n", type=int, required=True, help=n_help)
        sp.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
        sp.add_argument("--start", type=int, default=0, help="first image index (default 0)")
        sp.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
        sp.add_argument("--overwrite", action="store_true", help="replace an existing output")
        sp.add_argument("--quiet", action="store_true", help="no progress on stderr")
        sp.add_argument("--text-prob", type=float, default=SynthConfig.text_prob,
                        help=f"odds of unlabelled words and letters around a number (default {SynthConfig.text_prob}; "
                             "1 for a name-plate test set)")

    common(sub.add_parser("full", help="PNG images + digitStruct.mat"), "number of images")
    sp = sub.add_parser("crops", help="32x32 digit crops (.npz or .mat)")
    common(sp, "number of crops")
    sp.add_argument("--text-crops", action="store_true",
                    help="also crop the letters and symbols drawn around the numbers, labelled -1 ('not a digit'; .npz only)")
    sp = sub.add_parser("sheet", help="synthetic samples next to real SVHN ones (PNG)")
    sp.add_argument("--out", type=Path, required=True)
    sp.add_argument("--n", type=int, default=32, help="images per side (default 32)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--real", type=Path, default=DEFAULT_REAL, help=f"real SVHN folder (default {DEFAULT_REAL})")
    sp.add_argument("--boxes", action="store_true", help="draw the synthetic digit boxes")

    def plate_options(sp: argparse.ArgumentParser, n_help: str) -> None:
        sp.add_argument("--out", type=Path, required=True)
        sp.add_argument("--n", type=int, required=True, help=n_help)
        sp.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
        sp.add_argument("--start", type=int, default=0, help="first image index (default 0)")
        sp.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
        sp.add_argument("--size", default="240x320", metavar="HxW",
                        help="image HEIGHTxWIDTH (default 240x320, the light detector's input; 320x320 mimics square exports)")
        sp.add_argument("--fill", default="{},{}".format(*PlateConfig.fill_range), metavar="LO,HI",
                        help="the number spans LO-HI of the frame in its tighter direction (default %(default)s)")
        sp.add_argument("--suffix-prob", type=finite_float, default=PlateConfig.suffix_prob,
                        help=f"odds of a letter after the number, drawn but not labelled (default {PlateConfig.suffix_prob})")
        sp.add_argument("--overwrite", action="store_true", help="replace an existing output")
        sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    plate_options(sub.add_parser("plates", help="close-up photos of number plates: PNG images + digitStruct.mat"), "number of images")
    sp = sub.add_parser("plate-crops", help="32x32 crops of the close-ups' digits (.npz or .mat)")
    plate_options(sp, "number of crops")
    sp.add_argument("--text-crops", action="store_true",
                    help="also crop the suffix letters, labelled -1 ('not a digit'; .npz only)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("synth", lambda: _run(get_args_parser().parse_args(argv)))


def _parse_size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    if not sep or not h.strip().isdigit() or not w.strip().isdigit() or int(h) < 32 or int(w) < 32:
        raise UsageError(f"--size {text}: expected HEIGHTxWIDTH in pixels, each at least 32 (e.g. 240x320)")
    return int(h), int(w)


def _run_plates(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected a non-negative integer")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected at least 1")
    if not 0.0 <= args.suffix_prob <= 1.0:
        raise UsageError(f"--suffix-prob {args.suffix_prob}: expected a number in [0, 1]")
    size = _parse_size(args.size)
    try:
        lo, hi = (float(v) for v in args.fill.split(","))
        config = PlateConfig(size=size, suffix_prob=args.suffix_prob, fill_range=(lo, hi))
    except ValueError as exc:
        raise UsageError(f"--fill {args.fill}: expected LO,HI with 0.05 <= LO <= HI <= 1 ({exc})") from None
    if args.mode == "plates":
        r = write_full(args.out, args.n, args.seed, start=args.start, workers=args.workers, overwrite=args.overwrite,
                       quiet=args.quiet, config=config, source=generate_plates)
        print(f"wrote {r['images']} close-ups and digitStruct.mat to {args.out} in {r['seconds']:.1f} s "
              f"({r['images_per_s']:.1f} images/s)")
    else:
        if args.text_crops and args.out.suffix.lower() != ".npz":
            raise UsageError(f"--out {args.out}: --text-crops needs an .npz file (a .mat holds digits only)")
        r = write_crops(args.out, args.n, args.seed, start=args.start, workers=args.workers, overwrite=args.overwrite,
                        quiet=args.quiet, text_crops=args.text_crops, config=config, source=generate_plates)
        print(f"wrote {r['crops']} crops to {args.out} in {r['seconds']:.1f} s ({r['crops_per_s']:.0f} crops/s)")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.mode in ("plates", "plate-crops"):
        return _run_plates(args)
    if args.mode != "sheet" and args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected a non-negative integer")
    if args.mode != "sheet" and args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected at least 1")
    config = None
    if args.mode != "sheet":
        if not 0.0 <= args.text_prob <= 1.0:
            raise UsageError(f"--text-prob {args.text_prob}: expected a number in [0, 1]")
        config = SynthConfig(text_prob=args.text_prob)
    if args.mode == "full":
        r = write_full(args.out, args.n, args.seed, start=args.start, workers=args.workers,
                       overwrite=args.overwrite, quiet=args.quiet, config=config)
        print(f"wrote {r['images']} images and digitStruct.mat to {args.out} in {r['seconds']:.1f} s "
              f"({r['images_per_s']:.0f} images/s)")
    elif args.mode == "crops":
        if args.text_crops and args.out.suffix.lower() != ".npz":
            raise UsageError(f"--out {args.out}: --text-crops needs an .npz file (a .mat holds digits only)")
        r = write_crops(args.out, args.n, args.seed, start=args.start, workers=args.workers,
                        overwrite=args.overwrite, quiet=args.quiet, text_crops=args.text_crops, config=config)
        print(f"wrote {r['crops']} crops to {args.out} in {r['seconds']:.1f} s ({r['crops_per_s']:.0f} crops/s)")
    else:
        if args.n < 1:
            raise UsageError(f"--n {args.n}: expected at least 1 image")
        if args.out.suffix.lower() not in (".png", ".jpg"):
            raise UsageError(f"--out {args.out}: expected a .png or .jpg file name")
        sheet = make_sheet(args.seed, args.n, args.real, boxes=args.boxes)
        if not cv2.imwrite(str(args.out), sheet):
            raise UsageError(f"--out {args.out}: could not write the image there")
        print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
