"""Every real image set the project can see, one loader and one score for each.

| set | what | dev (choosing) | val (measuring only) |
| --- | --- | --- | --- |
| ``svhn`` | real SVHN train images (``svhn_real/full``), the number of interest boxed per digit | images 1701-1850 | images 1851-2000 |
| ``closeups`` | close-ups of building numbers, a box per character | every 5th ``train`` entry | the data's ``val`` |
| ``scenes`` | street photos of buildings, the whole number boxed | every 5th ``train`` entry | the data's ``val`` |
| ``letters`` | ICDAR 2015 street photos, letters-only words boxed | photos 1-250 (the classifier's letters come from them: not held out) | photos 251-500 |

Scores (per image, summed by :func:`summarise`):

* ``svhn``, ``closeups``: whole number right when the most confident reading spells the
  number's digits (``502C`` -> ``502``; the label with its letter is scored apart where the
  reader gives one); extra digits (outside every true digit box) and invented numbers (all
  digits extra), as ``train.evaluate`` counts them.
* ``scenes``: a photo is right when every boxed number is read exactly by a reading whose
  centre lies inside its box (grown by half its height); readings elsewhere are counted as
  ``outside`` (other numbers are visible in some photos, so not all are false).
* ``letters``: letters-only words with a digit read on them, numbers invented from letters
  (``train.letters_check``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SETS = ("svhn", "closeups", "scenes", "letters")
NOISE_NOTE = "binomial standard error sqrt(p(1-p)/n) of the set's accuracy"


@dataclass(frozen=True)
class RealImage:
    """One real image of a set, with what is known about it.

    Attributes:
        set: the set's name (:data:`SETS`).
        path: the image file.
        truth: the digits of the number (``""`` for ``letters``; the first number for ``scenes``).
        label: the number with its letters (``"502C"``), else equal to ``truth``.
        boxes: ``(N, 4)`` float64 xyxy: digit boxes (svhn, closeups), number boxes (scenes) or
            letters-only word boxes (letters).
        numbers: for ``scenes``, the digits of each boxed number, in the order of ``boxes``.
    """

    set: str
    path: Path
    truth: str
    label: str
    boxes: np.ndarray = field(repr=False)
    numbers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name


def _svhn(root: Path, part: str) -> list[RealImage]:
    from train.datasets import image_number, load_split

    split = load_split(root / "svhn_real" / "full")
    lo, hi = (1701, 1850) if part == "dev" else (1851, 2000)
    out = []
    for r in split.records:
        n = image_number(r.name)
        if n is not None and lo <= n <= hi:
            out.append(RealImage("svhn", split.image_root / r.name, r.text, r.text, np.asarray(r.xyxy, np.float64)))
    return out


def _closeups(root: Path, part: str) -> list[RealImage]:
    from train.building import load_closeups

    out = []
    for c in load_closeups(root / "building_numbers", part):
        boxes, _ = c.digit_boxes()
        out.append(RealImage("closeups", c.path, c.digits_text, c.text, boxes))
    return out


def _scenes(root: Path, part: str) -> list[RealImage]:
    from train.building import load_scenes

    out = []
    for s in load_scenes(root / "building_numbers", part):
        if not s.numbers:
            continue
        boxes = np.array([n.box for n in s.numbers], np.float64).reshape(-1, 4)
        nums = tuple(n.digits_text for n in s.numbers)
        out.append(RealImage("scenes", s.path, nums[0], s.numbers[0].text, boxes, nums))
    return out


def _letters(root: Path, part: str) -> list[RealImage]:
    from train.inputs import photo_number
    from train.letters_check import letters_only_boxes

    folder = root / "scene_text"
    photos = json.loads((folder / "scenes_icdar2015.json").read_text(encoding="utf-8"))
    lo, hi = (1, 250) if part == "dev" else (251, 500)
    out = []
    for p in photos:
        n = photo_number(p["file"])
        if n is not None and lo <= n <= hi:
            boxes = letters_only_boxes(p["words"])
            if len(boxes):
                out.append(RealImage("letters", folder / p["file"], "", "", boxes))
    return out


def load_set(name: str, part: str, data_root: str | Path = "../shared/data", *, limit: int | None = None) -> list[RealImage]:
    """The images of set ``name`` (:data:`SETS`), part ``dev`` or ``val``, at most ``limit``
    (spread evenly over the set when fewer than all are asked for).

    Raises:
        ValueError: an unknown set or part, or data that cannot be read (``DatasetError`` is
            one). FileNotFoundError: the data is not there.
    """
    loaders = {"svhn": _svhn, "closeups": _closeups, "scenes": _scenes, "letters": _letters}
    if name not in loaders:
        raise ValueError(f"set {name!r}: expected one of {', '.join(SETS)}")
    if part not in ("dev", "val"):
        raise ValueError(f"part {part!r}: expected dev or val")
    items = loaders[name](Path(data_root), part)
    if limit is not None and limit < len(items):
        pick = np.linspace(0, len(items) - 1, max(1, limit)).round().astype(int)
        items = [items[i] for i in sorted(set(pick.tolist()))]
    return items


def score(item: RealImage, readings: Sequence[Any]) -> dict[str, Any]:
    """One image's counts (see the module docstring); summed over a set by :func:`summarise`."""
    from train.metrics import centres_inside, grow_by_height, reading_precision, top_text

    if item.set in ("svhn", "closeups"):
        read = top_text(readings)
        top = max(readings, key=lambda r: r.confidence) if readings else None
        label = (getattr(top, "label", "") or read) if top is not None else ""
        extra, invented = reading_precision(readings, item.boxes)
        return {"correct": int(read == item.truth), "label_correct": int(label == item.label),
                "extra_digits": extra, "invented": int(invented > 0), "read": read}
    if item.set == "scenes":
        read_boxes = np.array([r.box for r in readings], np.float64).reshape(-1, 4)
        inside = centres_inside(read_boxes, grow_by_height(item.boxes, 0.5))
        found = [any(inside[k, j] and r.text == num for k, r in enumerate(readings)) for j, num in enumerate(item.numbers)]
        outside = int((~inside.any(axis=1)).sum()) if len(readings) else 0
        return {"correct": int(all(found)), "numbers": len(found), "numbers_found": int(sum(found)),
                "outside": outside, "read": ",".join(r.text for r in readings)}
    from train.letters_check import letter_hits

    s = letter_hits(readings, item.boxes)
    return {"words": s["words"], "words_hit": s["words_hit"], "invented": s["invented_numbers"],
            "read": ",".join(r.text for r in readings)}


def summarise(name: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A set's figures from its per-image :func:`score` rows."""
    n = len(rows)
    out: dict[str, Any] = {"set": name, "images": n}
    if n == 0:
        return out
    if name == "letters":
        words = sum(r["words"] for r in rows)
        hit = sum(r["words_hit"] for r in rows)
        out.update(words=words, words_hit=hit, words_with_digit=hit / max(words, 1),
                   invented_per_photo=sum(r["invented"] for r in rows) / n,
                   noise=float(np.sqrt(max(hit / max(words, 1) * (1 - hit / max(words, 1)), 1e-9) / max(words, 1))))
        return out
    acc = sum(r["correct"] for r in rows) / n
    out.update(correct=sum(r["correct"] for r in rows), accuracy=acc, noise=float(np.sqrt(max(acc * (1 - acc), 1 / n) / n)))
    if name == "scenes":
        out.update(numbers=sum(r["numbers"] for r in rows), numbers_found=sum(r["numbers_found"] for r in rows),
                   outside_per_photo=sum(r["outside"] for r in rows) / n)
    else:
        out.update(label_accuracy=sum(r["label_correct"] for r in rows) / n,
                   extra_digits_per_image=sum(r["extra_digits"] for r in rows) / n,
                   invented_share=sum(r["invented"] for r in rows) / n)
    return out
