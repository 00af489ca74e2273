"""Real photos of building numbers (``../shared/data/building_numbers``): loaders and exports.

Two parts, each with its own ``labels.json`` (the data's README describes them):

* ``closeups/``: close-up crops of a building number, a box per character (a digit 0-9 or a
  letter such as the C of 502C), 640x640 as exported;
* ``scenes/``: photos of buildings (800 px on the longer side) with each building number boxed
  as a whole and transcribed; no box per digit.

The data comes split ``train``/``val`` (Roboflow's own split). This project fixes its use:

| part | images | use |
| --- | --- | --- |
| ``fit`` | ``train`` entries whose position in the file is not a multiple of 5 | training |
| ``dev`` | every 5th ``train`` entry (positions 0, 5, 10, ...) | choosing checkpoints, thresholds, recipes |
| ``val`` | ``val`` entries | measured by the scorecard; never trained on, never used to choose |

Commands::

    # an SVHN-format folder (labels.json + linked images) of the close-ups' digit boxes, for
    # train.detector, train.mine, train.evaluate and tools/synth_scenes.py merge
    python -m train.building export --data ../shared/data/building_numbers --part fit --out data/bn_fit
    # real character crops (digits as themselves, letters as "not a digit") for train.classifier
    python -m train.building crops --data ../shared/data/building_numbers --part fit --out data/bn_fit_crops.npz
    # hard negatives from the street photos: detector hits far from every boxed number
    python -m train.building negatives --data ../shared/data/building_numbers --part fit \
        --detector weights/detector_light.pt --out data/bn_fit_negatives.npz
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("train.building")

PARTS = ("fit", "dev", "val")
"""The project's parts of the data (see the module docstring)."""

DEV_EVERY = 5
"""Every DEV_EVERY-th ``train`` entry (by position in its labels.json) is ``dev``."""

# Letters that many fonts draw exactly like a digit; they are never taught as "not a digit"
# (as train.scene_text does for I, l and O).
DIGIT_LIKE_LETTERS = frozenset("IlOoDQSZBG|")


@dataclass(frozen=True)
class Closeup:
    """One close-up photo: its file, text and a box per character.

    Attributes:
        path: the image file.
        text: the whole building number, e.g. ``"502C"``.
        boxes: ``(N, 4)`` float64 xyxy pixels, one per character, in reading order.
        chars: the characters, ``"0"``-``"9"`` or a letter.
        split: ``"train"`` or ``"val"`` as the data gives it.
        part: ``"fit"``, ``"dev"`` or ``"val"`` (see :data:`PARTS`).
    """

    path: Path
    text: str
    boxes: np.ndarray = field(repr=False)
    chars: tuple[str, ...]
    split: str
    part: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def digits_text(self) -> str:
        """The digits of the number alone, in order (``"502C"`` -> ``"502"``)."""
        return digits_of(self.text)

    def digit_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes (K, 4) xyxy float64, digits (K,) int64)`` of the characters that are digits."""
        keep = [i for i, c in enumerate(self.chars) if c.isdigit()]
        return self.boxes[keep].reshape(-1, 4), np.array([int(self.chars[i]) for i in keep], np.int64)


@dataclass(frozen=True)
class SceneNumber:
    """One building number boxed in a street photo."""

    text: str
    box: tuple[float, float, float, float]
    """xyxy pixels of the whole number."""

    @property
    def digits_text(self) -> str:
        """The digits of the number alone."""
        return digits_of(self.text)


@dataclass(frozen=True)
class Scene:
    """One street photo with its boxed building numbers."""

    path: Path
    numbers: tuple[SceneNumber, ...]
    split: str
    part: str

    @property
    def name(self) -> str:
        return self.path.name


def digits_of(text: str) -> str:
    """The digits of a building number, in order (``"502C"`` -> ``"502"``)."""
    return "".join(c for c in text if c.isdigit())


def part_of(split: str, position: int) -> str:
    """The project's part (``fit``/``dev``/``val``) of the entry at ``position`` of a labels.json."""
    if split == "val":
        return "val"
    return "dev" if position % DEV_EVERY == 0 else "fit"


def _read_labels(root: Path, folder: str) -> list[dict[str, Any]]:
    path = root / folder / "labels.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; expected the building_numbers data folder "
                                "(../shared/data/building_numbers) holding closeups/ and scenes/") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable labels.json ({exc})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: top level is {type(entries).__name__}; expected a list of entries")
    return entries


def _parts(parts: str | Sequence[str] | None) -> set[str]:
    if parts is None:
        return set(PARTS)
    wanted = {parts} if isinstance(parts, str) else set(parts)
    bad = wanted - set(PARTS)
    if bad:
        raise ValueError(f"part {sorted(bad)[0]!r} is not one of {', '.join(PARTS)}")
    return wanted


def load_closeups(root: str | os.PathLike[str], parts: str | Sequence[str] | None = None) -> list[Closeup]:
    """The close-ups of ``parts`` (default all), in file order.

    Raises:
        FileNotFoundError, ValueError: no such folder, or a labels.json that cannot be read.
    """
    root, wanted = Path(root), _parts(parts)
    out = []
    for i, e in enumerate(_read_labels(root, "closeups")):
        part = part_of(str(e.get("split", "train")), i)
        if part not in wanted:
            continue
        rows = e.get("boxes") or []
        boxes = np.array([[r[0], r[1], r[0] + r[2], r[1] + r[3]] for r in rows], np.float64).reshape(-1, 4)
        chars = tuple(str(r[4]) for r in rows)
        out.append(Closeup(root / e["file"], str(e["text"]), boxes, chars, str(e.get("split")), part))
    return out


def load_scenes(root: str | os.PathLike[str], parts: str | Sequence[str] | None = None) -> list[Scene]:
    """The street photos of ``parts`` (default all), in file order."""
    root, wanted = Path(root), _parts(parts)
    out = []
    for i, e in enumerate(_read_labels(root, "scenes")):
        part = part_of(str(e.get("split", "train")), i)
        if part not in wanted:
            continue
        numbers = tuple(
            SceneNumber(str(n["text"]), (float(n["box"][0]), float(n["box"][1]),
                                         float(n["box"][0] + n["box"][2]), float(n["box"][1] + n["box"][3])))
            for n in e.get("numbers", [])
        )
        out.append(Scene(root / e["file"], numbers, str(e.get("split")), part))
    return out


def closeups_as_svhn(closeups: Sequence[Closeup]) -> list[Any]:
    """The close-ups as ``SVHNImage`` records of their digit boxes (letters left out), named
    by file name, for the SVHN-format readers of ``train/``."""
    from train.svhn import SVHNImage

    records = []
    for c in closeups:
        boxes, digits = c.digit_boxes()
        ltwh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]) if len(boxes) else np.zeros((0, 4))
        records.append(SVHNImage(c.name, ltwh, digits))
    return records


def export_svhn_folder(closeups: Sequence[Closeup], out: str | os.PathLike[str]) -> Path:
    """Write an SVHN-format folder: the images (hard links, else copies) and ``labels.json``
    of their digit boxes. ``out`` must be new or empty (nothing is overwritten)."""
    from train.svhn_write import write_labels_json

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for c in closeups:
        dst = out / c.name
        try:
            os.link(c.path, dst)
        except OSError:
            shutil.copyfile(c.path, dst)
    return write_labels_json(out / "labels.json", closeups_as_svhn(closeups))


def character_crops(closeups: Sequence[Closeup], *, pad: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every character of the close-ups cut as the recognizer cuts a digit.

    Returns:
        ``(X (N, 32, 32, 3) uint8 RGB, y (N,) int64, source_image (N,) int64)``: digits as
        themselves, letters as -1 ("not a digit"), except letters drawn like digits
        (:data:`DIGIT_LIKE_LETTERS`), which are left out.
    """
    from recognizer.models.preprocess import DEFAULT_CROP_PAD, crop_digits
    from train.datasets import image_number
    from train.inputs import read_batches

    pad = DEFAULT_CROP_PAD if pad is None else pad
    wanted = {id(c): [i for i, ch in enumerate(c.chars) if ch.isdigit() or ch not in DIGIT_LIKE_LETTERS] for c in closeups}
    xs, ys, src = [], [], []
    for kept, images, _ in read_batches([c for c in closeups if wanted[id(c)]], lambda c: c.path, 1):
        for c, image in zip(kept, images):
            keep = wanted[id(c)]
            xs.append(crop_digits(image, c.boxes[keep].astype(np.float32), pad=pad))
            ys.extend(int(c.chars[i]) if c.chars[i].isdigit() else -1 for i in keep)
            src.extend([image_number(c.name) or 0] * len(keep))
    if not xs:
        return np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(xs), np.array(ys, np.int64), np.array(src, np.int64)


def scene_negatives(scenes: Sequence[Scene], detector: Any, *, score_thresh: float = 0.3, margin: float = 0.5,
                    batch_size: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops where ``detector`` finds a digit in a street photo away from every boxed number.

    The number box says where the building number is; a hit whose centre lies outside every
    number box grown by ``margin`` x its height (windows, bricks, signs, door edges) is "not a
    digit" as surely as the data allows (other numbers visible in a photo are rare).

    Args:
        detector: anything with ``detect(images) -> [(boxes (K,4) xyxy, scores (K,))]``
            (:meth:`recognizer.models.engine.Recognizer.detect`), its threshold at or below ``score_thresh``.

    Returns:
        ``(X (N, 32, 32, 3) uint8 RGB, y (N,) int64 all -1, source_image (N,) int64)``.
    """
    from recognizer.models.preprocess import DEFAULT_CROP_PAD, crop_digits
    from train.datasets import image_number
    from train.inputs import read_batches
    from train.metrics import centres_inside, grow_by_height

    xs, src = [], []
    for batch, images, _ in read_batches(scenes, lambda s: s.path, batch_size):
        if not images:
            continue
        for s, image, (boxes, scores) in zip(batch, images, detector.detect(images)):
            boxes = boxes[scores >= score_thresh]
            if not len(boxes):
                continue
            numbers = np.array([n.box for n in s.numbers], np.float64).reshape(-1, 4)
            far = boxes[~centres_inside(boxes, grow_by_height(numbers, margin)).any(axis=1)]
            if len(far):
                xs.append(crop_digits(image, far.astype(np.float32), pad=DEFAULT_CROP_PAD))
                src.extend([image_number(s.name) or 0] * len(far))
    if not xs:
        return np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    x = np.concatenate(xs)
    return x, np.full(len(x), -1, np.int64), np.array(src, np.int64)


# =========================================================================== command line


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.building", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="an SVHN-format folder of the close-ups' digit boxes")
    c = sub.add_parser("crops", help="an .npz of the close-ups' character crops (letters as 'not a digit')")
    n = sub.add_parser("negatives", help="an .npz of detector hits far from every number in the street photos ('not a digit')")
    n.add_argument("--detector", required=True, metavar="CKPT", help="detector checkpoint")
    n.add_argument("--score-thresh", type=float, default=0.3, help="keep hits scoring at least this (default 0.3)")
    for q in (e, c, n):
        q.add_argument("--data", required=True, metavar="DIR", help="the building_numbers folder")
        q.add_argument("--part", nargs="+", default=["fit"], choices=PARTS, help="parts to take (default fit)")
        q.add_argument("--out", required=True, metavar="PATH", help="new folder (export) or .npz file (crops)")
    return p


def _main(argv: Sequence[str] | None) -> int:
    from train.common import UsageError, save_npz

    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        closeups = load_closeups(args.data, args.part)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data {args.data!r}: {exc}") from exc
    out = Path(args.out)
    if args.command == "negatives":
        from recognizer.models.engine import Recognizer, RecognizerConfig
        from train.common import load_model_checkpoint

        if out.exists():
            raise UsageError(f"--out {str(out)!r} exists; give a new .npz file")
        try:
            scenes = load_scenes(args.data, args.part)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--data {args.data!r}: {exc}") from exc
        det = load_model_checkpoint(args.detector, "detector", "--detector")
        from recognizer.models import SmallCNN

        rec = Recognizer(det.model, SmallCNN(), device="cpu", config=RecognizerConfig(det_score_thresh=args.score_thresh))
        x, y, src = scene_negatives(scenes, rec, score_thresh=args.score_thresh)
        save_npz(out, X=x, y=y, source_image=src)
        print(f"{len(y)} 'not a digit' crops from {len(scenes)} street photos -> {out}")
        return 0
    if args.command == "export":
        try:
            path = export_svhn_folder(closeups, out)
        except FileExistsError as exc:
            raise UsageError(f"--out: {exc}") from exc
        print(f"{len(closeups)} close-ups ({sum(len(c.digit_boxes()[1]) for c in closeups)} digit boxes) -> {path}")
        return 0
    if out.exists():
        raise UsageError(f"--out {str(out)!r} exists; give a new .npz file")
    x, y, src = character_crops(closeups)
    save_npz(out, X=x, y=y, source_image=src)
    print(f"{len(y)} crops ({int((y >= 0).sum())} digits, {int((y < 0).sum())} 'not a digit') -> {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from train.common import run_main

    return run_main(_main, argv, "train.building")


if __name__ == "__main__":
    sys.exit(main())
