"""Helpers for the tests of the text reader, fusion and the real-set scorecard: drawn plates and
a tiny fake data root laid out like ``../shared/data`` (never real data).

Import with ``from text_helpers import ...`` (pytest puts ``tests/`` on the path)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT), size) if FONT.is_file() else None


def draw_text(image: np.ndarray, text: str, xy: tuple[int, int], size: int = 48, color: tuple[int, int, int] = (20, 20, 20)) -> tuple[int, int, int, int]:
    """Draw ``text`` on a BGR ``image`` in place with its top-left ink at ``xy``; its ink box (xyxy).

    DejaVu Sans Bold through PIL when the font is there, else OpenCV's Hershey font."""
    font = _font(size)
    if font is None:
        scale = size / 30.0
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 3)
        cv2.putText(image, text, (xy[0], xy[1] + h), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 3, cv2.LINE_AA)
        return xy[0], xy[1], xy[0] + w, xy[1] + h + base
    from PIL import Image, ImageDraw

    pil = Image.fromarray(image[:, :, ::-1])
    draw = ImageDraw.Draw(pil)
    left, top, right, bottom = font.getbbox(text)
    draw.text((xy[0] - left, xy[1] - top), text, font=font, fill=color[::-1])
    image[:] = np.asarray(pil)[:, :, ::-1]
    return xy[0], xy[1], xy[0] + right - left, xy[1] + bottom - top


def text_size(text: str, size: int = 48) -> tuple[int, int]:
    """Width and height of ``text``'s ink as :func:`draw_text` draws it."""
    font = _font(size)
    if font is None:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size / 30.0, 3)
        return w, h + base
    left, top, right, bottom = font.getbbox(text)
    return right - left, bottom - top


def plate(text: str, size: int = 48, pad: int = 14, fg: tuple[int, int, int] = (20, 20, 20), bg: tuple[int, int, int] = (235, 235, 235)) -> np.ndarray:
    """A light plate just around dark ``text``: ``(h, w, 3)`` uint8 BGR."""
    w, h = text_size(text, size)
    image = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    image[:] = bg
    draw_text(image, text, (pad, pad), size, fg)
    return image


def scene_with_plate(text: str, shape: tuple[int, int] = (360, 480), at: tuple[int, int] = (260, 200), size: int = 44) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A grey wall ``shape`` (h, w) with a light plate holding ``text`` at ``at`` (x, y): the image
    and the text's ink box (xyxy)."""
    image = np.empty((*shape, 3), np.uint8)
    image[:] = (110, 120, 130)
    w, h = text_size(text, size)
    x, y = at
    cv2.rectangle(image, (x - 16, y - 12), (x + w + 16, y + h + 12), (235, 235, 235), -1)
    return image, draw_text(image, text, (x, y), size)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def holds(box, ink, max_area_ratio: float = 5.0) -> bool:
    """``box`` holds (90% of) the ink box ``ink`` and is at most ``max_area_ratio`` times its
    area: a text detector's line box is grown around its text, more so at a low resolution."""
    ink_area = (ink[2] - ink[0]) * (ink[3] - ink[1])
    ix = max(0.0, min(box[2], ink[2]) - max(box[0], ink[0]))
    iy = max(0.0, min(box[3], ink[3]) - max(box[1], ink[1]))
    return ix * iy >= 0.9 * ink_area and (box[2] - box[0]) * (box[3] - box[1]) <= max_area_ratio * ink_area


def real_text_reader():
    """The real text reader (PP-OCR from the rapidocr wheel), for a module-scoped fixture; the
    test is skipped only when rapidocr is not installed: installed and not loading is a failure."""
    pytest.importorskip("rapidocr")
    from recognizer.models.textreader import load_text_reader

    reader = load_text_reader()
    assert reader is not None, "rapidocr is installed but the text reader did not load"
    return reader


# ----------------------------------------------------------------------------- fake data root


def _number_image(path: Path, text: str, size: tuple[int, int] = (160, 120), font: int = 40,
                  bg: tuple[int, int, int] = (225, 225, 225)) -> list[tuple[int, int, int, int]]:
    """Write an image (background ``bg``, BGR) with ``text`` drawn one character at a time; the
    characters' ink boxes (xyxy)."""
    w, h = size
    image = np.empty((h, w, 3), np.uint8)
    image[:] = bg
    x = 12
    boxes = []
    for ch in text:
        cw, ch_h = text_size(ch, font)
        boxes.append(draw_text(image, ch, (x, (h - ch_h) // 2), font))
        x += cw + 6
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return boxes


def _ltwh(box: tuple[int, int, int, int]) -> list[int]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


# (text, split) of the close-ups, in file order: position 0 and 5 of train are dev, the rest fit.
CLOSEUPS = [("215", "train"), ("502C", "val"), ("47", "train"), ("B12", "train"), ("12X", "train"), ("108", "train"), ("31", "val")]
# (numbers, split) of the street photos; the entry without numbers is skipped by realsets.
CLOSEUP_BG = (60, 150, 235)  # BGR orange: an RGB crop of it has more red than blue
SCENES = [(["216"], "train"), (["48", "7"], "val"), ([], "val"), (["602D"], "val"), (["33"], "train")]
SVHN = {1700: "5", 1701: "17", 1850: "85", 1851: "18", 1900: "190", 2000: "20", 2001: "9"}
# ICDAR-like photos: number -> word texts ("###" is unreadable; words with a digit are not letters-only)
LETTER_PHOTOS = {3: ["HOTEL"], 250: ["BAR"], 251: ["SMITH", "###", "A1"], 300: ["12"], 500: ["OPEN", "CAFE"], 501: ["SHOP"]}


def make_data_root(root: Path) -> Path:
    """A tiny folder laid out like ``../shared/data``: ``svhn_real/full``, ``building_numbers/
    {closeups,scenes}`` and ``scene_text/scenes_icdar2015.json`` with drawn images."""
    # SVHN-format: labels.json with [left, top, width, height, label] rows, raw 10 for digit 0
    entries = []
    for n, text in SVHN.items():
        name = f"train/{n}.png"
        boxes = _number_image(root / "svhn_real" / "full" / name, text)
        entries.append({"file": name, "boxes": [[*_ltwh(b), 10 if ch == "0" else int(ch)] for b, ch in zip(boxes, text)]})
    (root / "svhn_real" / "full" / "labels.json").write_text(json.dumps(entries), encoding="utf-8")

    bn = root / "building_numbers"
    entries = []
    for i, (text, split) in enumerate(CLOSEUPS):
        name = f"closeups/{i}.jpg"
        boxes = _number_image(bn / name, text, (200, 120), bg=CLOSEUP_BG)
        rows = [[*_ltwh(b), int(ch) if ch.isdigit() else ch] for b, ch in zip(boxes, text)]
        entries.append({"file": name, "width": 200, "height": 120, "text": text, "boxes": rows, "split": split})
    (bn / "closeups" / "labels.json").write_text(json.dumps(entries), encoding="utf-8")

    entries = []
    for i, (numbers, split) in enumerate(SCENES):
        name = f"scenes/{i}.jpg"
        image = np.empty((240, 320, 3), np.uint8)
        image[:] = (120, 130, 140)
        boxed = []
        for k, text in enumerate(numbers):
            x, y = 30 + 150 * k, 90
            w, h = text_size(text, 36)
            cv2.rectangle(image, (x - 8, y - 8), (x + w + 8, y + h + 8), (235, 235, 235), -1)
            box = draw_text(image, text, (x, y), 36)
            boxed.append({"text": text, "box": _ltwh(box)})
        (bn / "scenes").mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(bn / name), image)
        entries.append({"file": name, "width": 320, "height": 240, "numbers": boxed, "split": split})
    (bn / "scenes" / "labels.json").write_text(json.dumps(entries), encoding="utf-8")

    st = root / "scene_text"
    photos = []
    for n, words in LETTER_PHOTOS.items():
        name = f"scenes_icdar2015/img_{n}.jpg"
        image = np.empty((240, 480, 3), np.uint8)
        image[:] = (90, 100, 110)
        out = []
        for k, word in enumerate(words):
            x, y = 20 + 150 * k, 40 + 60 * k
            box = draw_text(image, word, (x, y), 30, (240, 240, 240))
            x1, y1, x2, y2 = box
            out.append({"quad": [x1, y1, x2, y1, x2, y2, x1, y2], "text": word})
        (st / "scenes_icdar2015").mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(st / name), image)
        photos.append({"file": name, "words": out})
    (st / "scenes_icdar2015.json").write_text(json.dumps(photos), encoding="utf-8")
    return root
