"""What a training or evaluation command reads: annotated splits, image selections, crops.

Each helper turns a command-line selection (``--data DIR``, ``--image-numbers 1851-2000``,
``--names``, ``--crops SPEC``, ``--npz-source-images RANGES``) into data, and any problem with
it into a one-line :class:`train.common.UsageError` that names the option.

Heavy modules (torch through ``train.datasets``) are imported when a helper runs, so
``--help`` of the commands that import this stays fast.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")


# --------------------------------------------------------------------------- annotated images


def read_split(root: str | Path, option: str = "--data") -> Any:
    """Annotations of an SVHN-format folder (``train.datasets.load_split``), as a one-line UsageError on failure.

    Args:
        root: the folder (``digitStruct.mat`` or ``labels.json`` + images).
        option: the option that named it (for messages).

    Returns:
        ``train.datasets.Split``: ``records`` (``SVHNImage``) and ``image_root``.
    """
    from train.common import UsageError
    from train.datasets import load_split

    if not Path(root).exists():
        raise UsageError(f"{option} {str(root)!r}: no such folder; expected an SVHN-format folder")
    try:
        return load_split(root)
    except (OSError, ValueError) as exc:  # DatasetError, SVHNFormatError
        raise UsageError(f"{option} {str(root)!r}: {exc}") from exc


def select_records(
    records: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    numbers: str | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Filter records by exact name (``"train/5.png"`` or ``"5.png"``), image number ranges and a count.

    Raises:
        UsageError: a requested name is absent or nothing is selected.
    """
    from train.common import UsageError, in_ranges, parse_ranges
    from train.datasets import image_number

    selected = list(records)
    if names:
        by_name = {}
        for r in selected:
            by_name.setdefault(r.name, r)
            by_name.setdefault(Path(r.name).name, r)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UsageError(f"--names: {missing[0]!r} is not in the annotations (e.g. {selected[0].name!r})"
                             if selected else f"--names: {missing[0]!r} is not in the annotations")
        selected = [by_name[n] for n in names]
    if numbers:
        ranges = parse_ranges(numbers)
        selected = [r for r in selected if (k := image_number(r.name)) is not None and in_ranges(k, ranges)]
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit {limit} must be at least 1")
        selected = selected[:limit]
    if not selected:
        raise UsageError("no images selected: the split is empty or the filters match nothing")
    return selected


def select_images(root: str, ranges_text: str | None, option: str) -> list[int]:
    """Positions in ``root``'s annotation file of the images whose number is in ``ranges_text``.

    Args:
        root: SVHN-format folder.
        ranges_text: e.g. ``"1-128"``; None selects every image.
        option: the option that named the folder (for messages).

    Raises:
        UsageError: the folder cannot be read or nothing is selected.
    """
    from train.common import UsageError, in_ranges, parse_ranges
    from train.datasets import image_number

    records = read_split(root, option).records
    if not ranges_text:
        indices = list(range(len(records)))
    else:
        ranges = parse_ranges(ranges_text)
        indices = [i for i, r in enumerate(records)
                   if (k := image_number(r.name)) is not None and in_ranges(k, ranges)]
    if not indices:
        raise UsageError(f"{option} {root!r}: no images selected from {len(records)} "
                         "(check the folder and the image-number filter)")
    return indices


def photo_number(name: str) -> int | None:
    """The trailing number of a photo's file name (``"scenes_icdar2015/img_12.jpg"`` -> 12), by
    which ``--images RANGES`` selects street photos; None when the name ends in no number."""
    m = re.search(r"(\d+)$", Path(name).stem)
    return int(m.group(1)) if m else None


def clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(N, 4)`` xyxy ``boxes`` clipped to an image of ``shape`` (H, W, ...): the ground truth
    the metrics compare against (SVHN boxes may start at -1 or run past the edge)."""
    h, w = shape[:2]
    return np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [w, h, w, h])


def read_batches(
    items: Sequence[T], path_of: Callable[[T], str | os.PathLike], batch_size: int
) -> Iterator[tuple[list[T], list[np.ndarray], list[tuple[T, str]]]]:
    """Decode ``items`` in batches of ``batch_size`` with ``train.datasets.read_image``.

    Yields ``(kept items, their BGR images, skipped (item, reason) pairs)`` per batch; an
    unreadable image is logged as a warning, left out of the batch and reported as skipped.
    """
    from train.datasets import read_image

    for start in range(0, len(items), max(1, batch_size)):
        kept: list[T] = []
        images: list[np.ndarray] = []
        skipped: list[tuple[T, str]] = []
        for item in items[start : start + batch_size]:
            path = path_of(item)
            image, reason = read_image(path)
            if image is None:
                log.warning("%s: %s, skipped", path, reason)
                skipped.append((item, str(reason)))
                continue
            kept.append(item)
            images.append(image)
        yield kept, images, skipped


def with_reader(recognizer: Any, mode: str, threads: int = 1) -> Any:
    """``recognizer`` read as ``--reader MODE`` reads (:mod:`recognizer.models.fusion`): itself for
    ``digits``, else fused with the text reader.

    Raises:
        UsageError: the text reader cannot be loaded (a measurement of a reader that is not
            there would be the digit models' figures under its name).
    """
    if mode == "digits":
        return recognizer
    from recognizer.models.fusion import FusedRecognizer, FusionConfig
    from recognizer.models.textreader import load_text_reader
    from train.common import UsageError

    reader = load_text_reader(threads=max(1, threads))
    if reader is None:
        raise UsageError(f"--reader {mode}: the text reader could not be loaded (pip install rapidocr onnxruntime)")
    return FusedRecognizer(recognizer, reader, FusionConfig(mode=mode))


# --------------------------------------------------------------------------- crops


def load_crops(specs: Sequence[str], npz_ranges: str | None, option: str) -> Any:
    """Open and concatenate crop SPECs with ``train.datasets.open_crops``.

    Args:
        specs: crop sources (folders, .mat, .npz, SVHN folders).
        npz_ranges: keep only crops of ``.npz`` sources whose ``source_image`` is in these
            ranges (e.g. ``"1-128,257-"``); other kinds of source are kept whole.
        option: the option that named them (for messages).

    Returns:
        One ``train.datasets.CropDataset`` (``.images`` uint8 RGB, ``.labels`` int64).

    Raises:
        UsageError: a SPEC cannot be read, or nothing is left.
    """
    from train import datasets
    from train.common import UsageError, in_ranges, parse_ranges

    ranges = parse_ranges(npz_ranges) if npz_ranges else None
    parts = []
    for spec in specs:
        try:
            ds = datasets.open_crops(spec)
        except (OSError, ValueError) as exc:  # DatasetError and SVHNFormatError are ValueErrors
            raise UsageError(f"{option} {spec!r}: {exc}") from exc
        if ranges is not None and str(spec).lower().endswith(".npz"):
            if ds.source_image is None:
                raise UsageError(f"{option} {spec!r} has no source_image array; drop the source-image filter")
            ds = ds.subset(np.array([in_ranges(int(k), ranges) for k in ds.source_image], dtype=bool))
        log.info("%s %s: %d crops", option, spec, len(ds))
        parts.append(ds)
    total = sum(len(p) for p in parts)
    if total == 0:
        raise UsageError(f"{option} {' '.join(specs)}: no crops left (check the files and the source-image filter)")
    return datasets.CropDataset.concat(*[p for p in parts if len(p)])
