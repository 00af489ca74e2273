"""Small SVHN-format fixtures written the way SVHN ships them, for any test to reuse.

Import with ``from svhn_fixtures import make_svhn_dir`` (pytest puts ``tests/`` on the path).

* :func:`make_svhn_dir` / :func:`make_svhn_split`: a format-1 split folder, PNG images with
  digits drawn by OpenCV plus ``digitStruct.mat`` in SVHN's exact HDF5 layout (or a
  ``labels.json``). Image 1 has one box, image 2 has several and the digit 0 (raw label 10).
* :func:`make_32x32_mat`: a format-2 file (``X`` (32, 32, 3, N), ``y`` with 10 for 0).
* :func:`make_crops_npz`: an npz like ``data/svhn_real/crops`` (X, y, source_image, source_box).
* :func:`corrupt_file`: truncate or overwrite a file to test damaged input.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from train.svhn import SVHNImage, write_32x32_mat, write_digitstruct, write_labels_json

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_number(
    digits: Sequence[int], rng: np.random.Generator, *, scale: float = 1.2, margin: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a house number on a flat background.

    Args:
        digits: digits 0..9, left to right.
        rng: randomness for colours and margins.
        scale: OpenCV font scale (1.2 gives digits about 26 px tall).
        margin: minimum free pixels around the number.

    Returns:
        ``image`` ``(H, W, 3)`` uint8 BGR and ``boxes`` ``(N, 4)`` float32
        ``[left, top, width, height]`` around each drawn digit.
    """
    thickness = 2
    sizes = [cv2.getTextSize(str(d), _FONT, scale, thickness) for d in digits]
    text_h = max((s[0][1] for s in sizes), default=20)
    left0 = margin + int(rng.integers(0, 8))
    top0 = margin + int(rng.integers(0, 6))
    width = left0 + sum(s[0][0] + 2 for s in sizes) + margin
    height = top0 + text_h + margin + 6
    bg = rng.integers(0, 90, 3)
    fg = 255 - rng.integers(0, 60, 3)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = bg.astype(np.uint8)
    boxes = []
    x = left0
    baseline_y = top0 + text_h
    for d, ((w, h), _) in zip(digits, sizes):
        cv2.putText(image, str(d), (x, baseline_y), _FONT, scale, tuple(int(c) for c in fg), thickness, cv2.LINE_AA)
        # The glyph ink spans about [x, x + w] x [baseline - h, baseline]; pad by the stroke.
        boxes.append([x - 1, baseline_y - h - 2, w + 2, h + 4])
        x += w + 2
    return image, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def default_numbers(n_images: int, rng: np.random.Generator) -> list[list[int]]:
    """Digit lists for ``n_images`` images: image 1 one digit, image 2 several including 0."""
    numbers: list[list[int]] = []
    for i in range(n_images):
        if i == 0:
            numbers.append([int(rng.integers(1, 10))])
        elif i == 1:
            numbers.append([1, 0, int(rng.integers(0, 10))])
        else:
            numbers.append(rng.integers(0, 10, int(rng.integers(1, 5))).tolist())
    return numbers


def make_svhn_split(
    root: str | Path,
    n_images: int = 4,
    seed: int = 0,
    *,
    annotations: str = "mat",
    numbers: Sequence[Sequence[int]] | None = None,
) -> tuple[Path, list[SVHNImage]]:
    """Write a format-1 split: ``root/1.png .. root/N.png`` plus annotations.

    Args:
        root: the split folder (created).
        n_images: how many images.
        seed: randomness of colours, positions and digits.
        annotations: ``"mat"`` writes ``digitStruct.mat`` (SVHN's HDF5 layout, raw label 10
            for 0); ``"json"`` writes ``labels.json`` with names ``train/N.png`` below
            ``root/train`` like ``data/svhn_real/full``; ``"both"`` writes both layouts.
        numbers: the digits of each image (default: :func:`default_numbers`).

    Returns:
        The split folder and the ground truth, one :class:`SVHNImage` per image in file order.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    numbers = [list(n) for n in numbers] if numbers is not None else default_numbers(n_images, rng)
    image_dir = root / "train" if annotations == "json" else root
    image_dir.mkdir(parents=True, exist_ok=True)
    records: list[SVHNImage] = []
    for i, digits in enumerate(numbers, start=1):
        image, boxes = draw_number(digits, rng)
        name = f"{i}.png"
        if not cv2.imwrite(str(image_dir / name), image):
            raise OSError(f"could not write {image_dir / name}")
        records.append(SVHNImage(name, boxes, np.asarray(digits, dtype=np.int64)))
    if annotations in ("mat", "both"):
        write_digitstruct(root / "digitStruct.mat", records)
    if annotations in ("json", "both"):
        json_records = [SVHNImage(f"train/{r.name}", r.boxes, r.digits) for r in records]
        if annotations == "both":
            (root / "train").mkdir(exist_ok=True)
            for r in records:
                (root / "train" / r.name).write_bytes((root / r.name).read_bytes())
        write_labels_json(root / "labels.json", json_records, image_root=root)
        if annotations == "json":
            records = json_records
    if annotations not in ("mat", "json", "both"):
        raise ValueError(f"annotations={annotations!r}; expected 'mat', 'json' or 'both'")
    return root, records


def make_svhn_dir(tmp_path: str | Path, n_images: int = 4, seed: int = 0, *, split: str = "train") -> Path:
    """A format-1 split folder ``tmp_path/<split>`` (PNGs + digitStruct.mat); returns it."""
    return make_svhn_split(Path(tmp_path) / split, n_images, seed)[0]


def make_32x32_mat(path: str | Path, n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write a format-2 file of ``n`` drawn digit crops; returns ``(X (n,32,32,3) uint8 RGB, digits)``.

    Every digit 0..9 occurs when ``n >= 10`` (so raw label 10 is in the file).
    """
    rng = np.random.default_rng(seed)
    digits = np.arange(n, dtype=np.int64) % 10
    rng.shuffle(digits)
    X = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i, d in enumerate(digits):
        X[i] = draw_crop(int(d), rng)
    write_32x32_mat(path, X, digits)
    return X, digits


def draw_crop(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(32, 32, 3)`` uint8 RGB crop with ``digit`` drawn in the middle."""
    crop = np.empty((32, 32, 3), dtype=np.uint8)
    crop[:] = rng.integers(0, 100, 3).astype(np.uint8)
    cv2.putText(crop, str(digit), (8, 26), _FONT, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    return crop


def make_crops_npz(path: str | Path, n: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """Write an npz like ``data/svhn_real/crops/train_crops_1083.npz``; returns its arrays.

    ``source_image`` runs 1..n (so both sides of the project's held-out range 129..256 occur
    once ``n`` > 128).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int64)
    X = np.stack([draw_crop(int(d), rng) for d in y]) if n else np.zeros((0, 32, 32, 3), np.uint8)
    arrays = {
        "X": X,
        "y": y,
        "source_image": np.arange(1, n + 1, dtype=np.int64),
        "source_box": rng.integers(0, 50, (n, 4)).astype(np.int64),
    }
    np.savez(path, **arrays)
    return arrays


def corrupt_file(path: str | Path, how: str = "truncate") -> Path:
    """Damage a file in place.

    Args:
        path: the file.
        how: ``"truncate"`` keeps the first half; ``"garbage"`` replaces it with text;
            ``"empty"`` leaves 0 bytes.
    """
    path = Path(path)
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"this is not an image or an HDF5 file\n" * 4)
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(f"how={how!r}; expected 'truncate', 'garbage' or 'empty'")
    return path
