"""Two readers on still images: the digit models find and read, the text reader checks and reads again.

For each image (:class:`FusedRecognizer`):

1. the digit path (:class:`recognizer.models.engine.Recognizer`) finds digits, groups them into
   numbers and reads them;
2. in the ``accurate`` mode the text detector (:meth:`recognizer.models.textreader.TextReader.detect`)
   also finds text lines at a resolution of its own: a line that overlaps a number widens that
   number's region (a digit the detector missed is then inside it), a line that overlaps none
   is a region of its own;
3. every region is cut from the **original** pixels, padded, and read by the text reader in one
   batched call;
4. fusion, per region: a region the text reader reads as letters is not a number (letters
   veto); where both read a number and disagree, the text reader's number wins when its score
   is at least ``override_score`` and ours is below ``keep_own`` (both calibrated on validation
   images by ``python -m train.tune_fusion``); a region only the text detector found becomes a
   reading when the text reader reads a number there with at least ``new_score``. A house
   number with letters (``12A``, ``C-24``) keeps them in :attr:`Reading.label`, its digits in
   :attr:`Reading.text`.

Modes: ``digits`` (the digit path alone), ``fast`` (steps 1, 3, 4 on the digit path's regions),
``accurate`` (all four), ``text`` (the text reader alone on the regions of ``accurate``: no
digit reading is kept unless the text reader reads it; for measurement).
"""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recognizer.models.textreader import TextRead, TextReader, merge_lines, overlap_of_smaller, pad_box
from recognizer.types import DigitBox, Reading

MODES = ("digits", "fast", "accurate", "text")
DEFAULT_IMAGE_MODE = "accurate"
"""Still images (``recognizer image``, ``train.evaluate``) run this mode unless told otherwise
(chosen by measurement: see ``weights/README.md``)."""


@dataclass(frozen=True)
class FusionConfig:
    """How the two readers are combined (see the module docstring).

    Attributes:
        mode: ``digits``, ``fast``, ``accurate`` or ``text``.
        pad_x, pad_y: a region of the digit models grows by these fractions of its height
            left/right and up/down before it is read (context helps the recognizer; too much
            brings in neighbours).
        line_pad_x, line_pad_y: the same for a line only the text detector found (its boxes
            already hold a margin).
        veto_score: a letters read at least this sure drops the number.
        override_score: the text reader's different number replaces ours when at least this sure...
        keep_own: ...and our reading's confidence is below this.
        new_score: a region only the text detector found becomes a reading at this score.
        det_max_side: the text detector sees the image with this longer side (pixels).
        tile_above: an image longer than this on a side is also scanned by the text detector in
            1280 px tiles at full resolution (:meth:`recognizer.models.textreader.TextReader.detect_tiled`),
            so that a number 20 px tall in a 12-megapixel photo is found; 0 turns this off.
        crop_max_side: an image no longer than this on either side is taken for a crop
            around one number (an SVHN image, a cut-out plate): in ``accurate``/``text`` mode
            the whole image is read as the region of its one reading (or as a region of its
            own when the digit models read nothing). 0 turns this off.
    """

    mode: str = "fast"
    # Calibrated on the dev images of every real set with the shipped pair (train.tune_fusion,
    # runs of 2026-12-06; weights/README.md): the best mean whole-number accuracy of SVHN,
    # building close-ups and street photos, less the letters-only words read as digits.
    pad_x: float = 0.6
    pad_y: float = 0.25
    veto_score: float = 0.3
    override_score: float = 0.7
    keep_own: float = 0.97
    new_score: float = 0.7
    # Chosen after, on the street photos' dev part: 80% of photos at 960 px and line padding
    # 0.05, against 78% at 1280 and 0.05 and 72% at 1280 and 0.6/0.25.
    line_pad_x: float = 0.05
    line_pad_y: float = 0.05
    det_max_side: int = 960
    tile_above: int = 2000
    crop_max_side: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; expected one of {', '.join(MODES)}")
        for name in ("veto_score", "override_score", "new_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected a number in [0, 1]")
        if not 0.0 <= self.pad_x <= 3.0 or not 0.0 <= self.pad_y <= 3.0:
            raise ValueError(f"pad_x={self.pad_x!r}, pad_y={self.pad_y!r}; expected numbers in [0, 3]")
        if self.tile_above < 0:
            raise ValueError(f"tile_above={self.tile_above!r}; expected pixels >= 0 (0: no tiles)")
        if not 64 <= self.det_max_side <= 8192:
            raise ValueError(f"det_max_side={self.det_max_side!r}; expected 64..8192 pixels")


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def spread_digits(text: str, box: Sequence[float], score: float) -> tuple[DigitBox, ...]:
    """Digit boxes for a number the text reader read in ``box``: the box cut into one equal
    column per character of ``text`` (``"502C"``: four columns), the digits' columns kept."""
    x1, y1, x2, y2 = (float(v) for v in box)
    n = max(1, len(text))
    w = (x2 - x1) / n
    return tuple(DigitBox((x1 + i * w, y1, x1 + (i + 1) * w, y2), int(ch), float(score), float(score))
                 for i, ch in enumerate(text) if ch.isdigit())


def text_reading(read: TextRead, box: Sequence[float], *, source: str = "text") -> Reading:
    """A :class:`Reading` of what the text reader read as a number in ``box``."""
    digits = read.digits
    label = read.label if read.label != digits else ""
    spelled = read.label.replace("-", "").replace("/", "").replace(".", "") or digits
    return Reading(text=digits, confidence=float(read.score), box=tuple(float(v) for v in box),
                   digits=spread_digits(spelled, box, read.score), label=label, source=source)


_SPLIT = re.compile(r"[^\s.,;:]+")


def split_numbers(read: TextRead, box: Sequence[float]) -> list[tuple[TextRead, tuple[float, float, float, float]]]:
    """The house numbers in one text line the text detector found: the whole line when it is
    a number, else each blank- or dot-separated word of it that is one (``"213.104"``: two
    plates side by side; ``"212 AAR"``: the number and a word), each with its share of ``box``
    by its place in the line."""
    text = read.text
    if not text.strip():
        return []
    x1, y1, x2, y2 = (float(v) for v in box)
    w = (x2 - x1) / len(text)
    parts = []
    for m in _SPLIT.finditer(text):
        part = TextRead(m.group(0), read.score)
        if part.kind == "number":
            parts.append((part, (x1 + m.start() * w, y1, x1 + m.end() * w, y2)))
    # "4 1" is one widely spaced plate; "213 101" two plates side by side.
    several = len(parts) >= 2 and all(len(p.digits) >= 2 for p, _ in parts)
    if read.kind == "number" and not several:
        return [(read, (x1, y1, x2, y2))]
    return parts


def fuse(reading: Reading, read: TextRead, region: Sequence[float], config: FusionConfig) -> Reading | None:
    """One number read by both readers -> the fused reading, or None when it is not a number."""
    if read.is_letters and read.score >= config.veto_score:
        return None
    if read.kind != "number":
        return reading
    label = read.label if read.label != read.digits else ""
    if read.digits == reading.text:
        both = 1.0 - (1.0 - reading.confidence) * (1.0 - read.score)
        return replace(reading, confidence=float(both), label=label, source="both")
    if read.score >= config.override_score and reading.confidence < config.keep_own:
        if len(read.digits) == len(reading.digits):  # same count: keep our boxes, take its digits
            digits = tuple(replace(d, digit=int(ch), cls_score=float(read.score)) for d, ch in zip(reading.digits, read.digits))
            return replace(reading, text=read.digits, digits=digits, confidence=float(read.score), label=label, source="text")
        return text_reading(read, region)
    return reading


@dataclass
class RegionPlan:
    """The regions of one image: which reading (or none) each belongs to."""

    readings: list[Reading]
    regions: list[tuple[float, float, float, float]]  # unpadded xyxy
    owner: list[int]  # index into readings, or -1 for a region only the text detector found


class FusedRecognizer:
    """The digit path and the text reader on still images (see the module docstring).

    Args:
        recognizer: the digit path (:class:`recognizer.models.engine.Recognizer`).
        reader: the text reader, or None (then every mode is the digit path alone).
        config: :class:`FusionConfig`.
    """

    def __init__(self, recognizer: Any, reader: TextReader | None, config: FusionConfig | None = None) -> None:
        self.recognizer = recognizer
        self.reader = reader
        self.config = config or FusionConfig()

    @property
    def mode(self) -> str:
        """The mode that actually runs (``digits`` when there is no text reader)."""
        return self.config.mode if self.reader is not None else "digits"

    def __getattr__(self, name: str) -> Any:  # device, config of the digit path, classify, detect ...
        if name in ("recognizer", "reader", "config"):
            raise AttributeError(name)
        return getattr(self.recognizer, name)

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        return self.recognize_timed(images)[0]

    def reads_whole(self, image: np.ndarray, readings: Sequence[Reading]) -> bool:
        """Whether :meth:`plan` takes ``image`` for a crop around one number and reads it whole
        (``crop_max_side``)."""
        return self.config.mode in ("accurate", "text") and max(image.shape[:2]) <= self.config.crop_max_side and len(readings) <= 1

    def plan(self, image: np.ndarray, readings: list[Reading]) -> RegionPlan:
        """The regions to read in ``image`` for its digit readings (and its text lines in
        ``accurate``/``text`` mode)."""
        cfg = self.config
        regions = [tuple(float(v) for v in r.box) for r in readings]
        owner = list(range(len(readings)))
        H, W = image.shape[:2]
        if self.reads_whole(image, readings):
            whole = (0.0, 0.0, float(W), float(H))
            return RegionPlan(list(readings), [whole], [0] if readings else [-1])
        if cfg.mode in ("accurate", "text") and self.reader is not None:
            tboxes, tscores = self.reader.detect(image, max_side=cfg.det_max_side)
            if cfg.tile_above and max(H, W) > cfg.tile_above and hasattr(self.reader, "detect_tiled"):
                small, small_scores = self.reader.detect_tiled(image)
                tboxes, tscores = merge_lines(np.concatenate([tboxes, small]), np.concatenate([tscores, small_scores]))
            ours = np.asarray(regions, np.float64).reshape(-1, 4)
            overlap = overlap_of_smaller(ours, tboxes.astype(np.float64))
            for j, tb in enumerate(tboxes):
                # A line over one of our numbers, of about its height, is that number's line:
                # read their union (a digit the detector missed is then inside it). A line of
                # another height (a plate inside a false box of ours) is a region of its own; a
                # line over two of our numbers ("12  14") leaves them two.
                h_line = float(tb[3] - tb[1])
                hits = [i for i in range(len(ours)) if overlap[i, j] >= 0.5
                        and 0.5 * (ours[i, 3] - ours[i, 1]) <= h_line <= 2.0 * (ours[i, 3] - ours[i, 1])]
                if not hits:
                    regions.append(tuple(float(v) for v in tb))
                    owner.append(-1)
                elif len(hits) == 1:
                    i = hits[0]
                    r = regions[i]
                    regions[i] = (min(r[0], tb[0]), min(r[1], tb[1]), max(r[2], tb[2]), max(r[3], tb[3]))
        return RegionPlan(list(readings), regions, owner)

    def region_crops(self, image: np.ndarray, plan: RegionPlan, pad: tuple[float, float] | None = None) -> list[np.ndarray]:
        """The plan's regions cut from ``image`` (views, not copies), each with its padding
        (``pad`` replaces the digit models' regions' padding)."""
        cfg = self.config
        px, py = pad if pad is not None else (cfg.pad_x, cfg.pad_y)
        out = []
        for region, who in zip(plan.regions, plan.owner):
            a, b, c, d = pad_box(region, px if who >= 0 else cfg.line_pad_x, py if who >= 0 else cfg.line_pad_y, image.shape)
            out.append(image[b:d, a:c])
        return out

    def decide(self, plan: RegionPlan, reads: Sequence[TextRead]) -> list[Reading]:
        """The fused readings of one image from its plan and the text reader's reads of its regions."""
        cfg = self.config
        out: list[Reading] = []
        for region, who, read in zip(plan.regions, plan.owner, reads):
            if who < 0:
                if read.score >= cfg.new_score:
                    for part, box in split_numbers(read, region):
                        new = text_reading(part, box)
                        # the same number already read where this line lies (ours, or another line)
                        if not any(r.text == new.text and _overlaps(r.box, new.box) for r in out):
                            out.append(new)
                continue
            reading = plan.readings[who]
            if cfg.mode == "text":
                if read.kind == "number":
                    out.append(text_reading(read, region))
                continue
            fused = fuse(reading, read, region, cfg)
            if fused is not None:
                out.append(fused)
        return out

    def recognize_timed(self, images: Sequence[np.ndarray]) -> tuple[list[list[Reading]], dict[str, float]]:
        """Like :meth:`recognizer.models.engine.Recognizer.recognize_timed`, with ``text`` (text
        detector and reader seconds) added to the timings."""
        timed = getattr(self.recognizer, "recognize_timed", None)
        readings, timings = timed(images) if timed is not None else (self.recognizer.recognize(images), {})
        timings = dict(timings or {})
        if self.mode == "digits" or not images:
            timings["text"] = 0.0
            return readings, timings
        t0 = time.perf_counter()
        plans = [self.plan(img, list(r)) for img, r in zip(images, readings)]
        crops, spans = [], []
        for img, plan in zip(images, plans):
            start = len(crops)
            crops.extend(self.region_crops(img, plan))
            spans.append((start, len(crops)))
        reads = self.reader.read(crops) if crops else []
        fused = [self.decide(plan, reads[s:e]) for plan, (s, e) in zip(plans, spans)]
        timings["text"] = time.perf_counter() - t0
        return fused, timings
