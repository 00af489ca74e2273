"""Digit glyphs from many sources, as float ink masks.

Four sources, picked per house number so all its digits share one style:

* every TrueType/OpenType font found in the usual system folders (read with PIL),
* OpenCV's Hershey vector fonts (``cv2.putText``),
* drawn seven-segment digits,
* drawn stroke digits (polylines through hand-made skeletons, jittered like hand painting).

A glyph is a ``(h, w)`` float32 mask in [0, 1] (1 = ink), cropped to its ink with a small
margin. Styles add weight (dilate/erode), width (condensed/wide) and slant (shear), so each
source gives many looks.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/usr/share/texmf/fonts/opentype",
    "/usr/share/texmf/fonts/truetype",
    "~/.fonts",
    "~/.local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)
"""Folders searched for font files (recursively) when no folders are given."""

FONT_DIRS_ENV = "RECOGNIZER_FONT_DIRS"
"""Environment variable: ``os.pathsep``-separated folders replacing :data:`FONT_DIRS`."""

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")

FONT_EXCLUDE = (
    "weather", "emoji", "icon", "awesome", "dingbat", "symbol", "mdl2", "ornament",
    # Checked by eye: pictures (Dingbats D050000L, DSEG's face font), hollow outlines that
    # vanish at SVHN's resolution, and display fonts whose digits no house would carry.
    "d050000l", "seggchan", "outline", "apropal", "penguinattack", "el_abogado_loco",
)
"""Font files whose lower-cased name contains one of these are not used."""

_DIGITS = "0123456789"


# --------------------------------------------------------------------------- fonts


def _font_dirs(dirs: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if dirs is None:
        env = os.environ.get(FONT_DIRS_ENV)
        dirs = env.split(os.pathsep) if env else FONT_DIRS
    return [Path(os.path.expanduser(str(d))) for d in dirs]


def _mask_array(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    core = font.getmask(ch)
    w, h = core.size
    return np.asarray(core, dtype=np.uint8).reshape(h, w)


def _digits_are_real(font: ImageFont.FreeTypeFont) -> bool:
    """True when the font draws ten distinct, non-empty digits that are not its 'missing' box."""
    missing = _mask_array(font, "\ue000")
    seen: list[bytes] = []
    fills: list[float] = []
    for ch in _DIGITS:
        m = _mask_array(font, ch)
        if m.size == 0 or int(m.max(initial=0)) < 128:
            return False
        if m.shape == missing.shape and np.array_equal(m, missing):
            return False
        key = m.tobytes() + bytes(str(m.shape), "ascii")
        if key in seen:
            return False
        seen.append(key)
        # Digits that are tiny next to the font size are icons or superscripts, not digits.
        ys = np.nonzero(m.max(axis=1) > 64)[0]
        if len(ys) < 0.25 * font.size:
            return False
        fills.append(float((m > 127).mean()))
    # Hairline fonts vanish at SVHN's resolution; solid blocks (OCR-B's box glyphs) are no digits.
    return 0.1 <= float(np.mean(fills)) <= 0.6


@functools.lru_cache(maxsize=8)
def _find_fonts_cached(dirs: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if (p.suffix.lower() in FONT_SUFFIXES and p.is_file()
                    and not any(x in p.name.lower() for x in FONT_EXCLUDE)):
                found.append(str(p))
    good: list[str] = []
    seen_real: set[str] = set()
    for path in sorted(set(found)):
        real = os.path.realpath(path)
        if real in seen_real:  # the same file linked from two folders
            continue
        seen_real.add(real)
        try:
            font = ImageFont.truetype(path, 40)
            ok = _digits_are_real(font)
        except Exception as exc:  # a broken or unsupported file: skip it, keep going
            log.debug("skipping font %s: %s", path, exc)
            continue
        if ok:
            good.append(path)
        else:
            log.debug("skipping font %s: no usable digits", path)
    return tuple(good)


def find_fonts(dirs: Iterable[str | os.PathLike[str]] | None = None) -> tuple[str, ...]:
    """Font files under ``dirs`` (default :data:`FONT_DIRS` or ``$RECOGNIZER_FONT_DIRS``) that
    draw all ten digits.

    Returns:
        Sorted absolute paths (may be empty: the drawn sources still work without fonts).
    """
    return _find_fonts_cached(tuple(str(d) for d in _font_dirs(dirs)))


def font_families(fonts: Sequence[str]) -> list[tuple[str, ...]]:
    """Group font files by folder (one folder is usually one package: a family with its
    weights), so a family with 50 files is not drawn 50 times as often as one with a single file.

    Returns:
        Groups of paths, sorted by folder.
    """
    groups: dict[str, list[str]] = {}
    for f in fonts:
        groups.setdefault(str(Path(f).parent), []).append(f)
    return [tuple(groups[k]) for k in sorted(groups)]


@functools.lru_cache(maxsize=512)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=1024)
def _digit_height_ratio(path: str) -> float:
    """Ink height of the digits (all ten together) per unit of font size."""
    font = _load_font(path, 100)
    top, bottom = 10**9, -(10**9)
    for ch in _DIGITS:
        _left, t, _right, b = font.getbbox(ch)
        top, bottom = min(top, t), max(bottom, b)
    return max((bottom - top) / 100.0, 0.2)


def _trim(mask: np.ndarray, margin: int = 1) -> np.ndarray:
    """Crop a mask to its ink (values > 0.02) plus ``margin`` zero pixels on each side."""
    ys, xs = np.nonzero(mask > 0.02)
    if len(ys) == 0:
        return np.zeros((1, 1), np.float32)
    m = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return np.pad(m, margin).astype(np.float32, copy=False)


def render_font_digit(path: str, digit: int | str, height: int, stroke: int = 0) -> np.ndarray:
    """One character from a font file, scaled so the font's digits are ``height`` px tall.

    Returns:
        ``(h, w)`` float32 ink mask in [0, 1], trimmed to the ink.
    """
    size = max(4, int(round(height / _digit_height_ratio(path))))
    font = _load_font(path, size)
    ch = str(digit)
    left, t, r, b = font.getbbox(ch, stroke_width=stroke)
    w, h = max(r - left, 1) + 4, max(b - t, 1) + 4
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((2 - left, 2 - t), ch, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return _trim(np.asarray(img, dtype=np.float32) / 255.0)


# --------------------------------------------------------------------------- Hershey

HERSHEY_FACES: tuple[int, ...] = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)


def render_hershey_digit(face: int, digit: int | str, height: int, weight: float, italic: bool) -> np.ndarray:
    """One character in an OpenCV Hershey font; ``weight`` is stroke width / height."""
    f = face | (cv2.FONT_ITALIC if italic else 0)
    (_, h0), _ = cv2.getTextSize("0", f, 1.0, 1)
    scale = height / max(h0, 1)
    thick = max(1, int(round(weight * height)))
    (tw, th), base = cv2.getTextSize(str(digit), f, scale, thick)
    pad = thick + 4
    canvas = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(canvas, str(digit), (pad, pad + th), f, scale, 255, thick, cv2.LINE_AA)
    return _trim(canvas.astype(np.float32) / 255.0)


# --------------------------------------------------------------------------- seven segments

_SEGMENTS = {  # a b c d e f g (top, upper right, lower right, bottom, lower left, upper left, middle)
    0: "abcdef", 1: "bc", 2: "abdeg", 3: "abcdg", 4: "bcfg",
    5: "acdfg", 6: "acdefg", 7: "abc", 8: "abcdefg", 9: "abcdfg",
}


def render_segment_digit(digit: int, height: int, thick: float, gap: float, aspect: float, tails: bool) -> np.ndarray:
    """A seven-segment digit drawn as bevelled bars.

    Args:
        thick: bar thickness / height.
        gap: gap between bars / height.
        aspect: width / height.
        tails: draw 6, 7 and 9 with their optional bars (as many displays do).
    """
    h = float(height)
    w = aspect * h
    t = max(thick * h, 1.5)
    g = gap * h
    pad = 2
    canvas = np.zeros((int(h + 2 * pad + 1), int(w + 2 * pad + 1)), np.uint8)
    ss = 4  # subpixel bits for fillPoly
    mid = h / 2

    def hbar(y: float) -> np.ndarray:
        x0, x1 = t / 2 + g, w - t / 2 - g
        return np.array([[x0, y], [x0 + t / 2, y - t / 2], [x1 - t / 2, y - t / 2], [x1, y],
                         [x1 - t / 2, y + t / 2], [x0 + t / 2, y + t / 2]])

    def vbar(x: float, y0: float, y1: float) -> np.ndarray:
        y0, y1 = y0 + g, y1 - g
        return np.array([[x, y0], [x + t / 2, y0 + t / 2], [x + t / 2, y1 - t / 2], [x, y1],
                         [x - t / 2, y1 - t / 2], [x - t / 2, y0 + t / 2]])

    polys = {
        "a": hbar(t / 2), "g": hbar(mid), "d": hbar(h - t / 2),
        "f": vbar(t / 2, t / 2, mid), "b": vbar(w - t / 2, t / 2, mid),
        "e": vbar(t / 2, mid, h - t / 2), "c": vbar(w - t / 2, mid, h - t / 2),
    }
    segs = _SEGMENTS[int(digit)]
    if tails:
        segs = {6: "acdefg", 7: "abcf", 9: "abcdfg"}.get(int(digit), segs)
    elif int(digit) == 6:
        segs = "cdefg"
    elif int(digit) == 9:
        segs = "abcfg"
    pts = [np.round((polys[s] + pad) * (1 << ss)).astype(np.int32) for s in segs]
    cv2.fillPoly(canvas, pts, 255, cv2.LINE_AA, ss)
    return _trim(canvas.astype(np.float32) / 255.0)


# --------------------------------------------------------------------------- stroke digits


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> list[tuple[float, float]]:
    a = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * np.cos(t), cy + ry * np.sin(t)) for t in a]


# Skeletons in a unit box (x right 0..0.6, y down 0..1). Angles in degrees, y down (90 = bottom).
_STROKES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[_arc(0.3, 0.5, 0.28, 0.48, 0, 360, 40)]],
    1: [[[(0.12, 0.2), (0.32, 0.02), (0.32, 1.0)]],
        [[(0.3, 0.0), (0.3, 1.0)]],
        [[(0.12, 0.2), (0.32, 0.02), (0.32, 1.0)], [(0.12, 1.0), (0.52, 1.0)]]],
    2: [[_arc(0.3, 0.27, 0.26, 0.25, 200, 360, 16) + _arc(0.3, 0.27, 0.26, 0.25, 0, 50, 6) + [(0.03, 1.0), (0.58, 1.0)]],
        [_arc(0.3, 0.27, 0.26, 0.25, 190, 380, 20) + [(0.04, 0.98), (0.58, 0.98)]]],
    3: [[_arc(0.29, 0.25, 0.25, 0.23, 200, 450, 20), _arc(0.29, 0.73, 0.28, 0.26, 270, 520, 22)],
        [[(0.04, 0.02), (0.55, 0.02), (0.25, 0.42)] + _arc(0.29, 0.70, 0.28, 0.28, 270, 510, 22)]],
    4: [[[(0.45, 1.0), (0.45, 0.0), (0.02, 0.7), (0.6, 0.7)]],
        [[(0.2, 0.0), (0.04, 0.65), (0.6, 0.65)], [(0.44, 0.3), (0.44, 1.0)]]],
    5: [[[(0.55, 0.02), (0.1, 0.02), (0.06, 0.45)] + _arc(0.3, 0.69, 0.28, 0.29, 235, 510, 24)]],
    6: [[_arc(0.31, 0.70, 0.27, 0.29, 0, 360, 30), [(0.04, 0.7), (0.12, 0.35), (0.45, 0.0)]],
        [_arc(0.32, 0.5, 0.28, 0.48, 300, 180, 14) + _arc(0.31, 0.70, 0.27, 0.29, 180, 540, 30)]],
    7: [[[(0.02, 0.02), (0.58, 0.02), (0.22, 1.0)]],
        [[(0.02, 0.02), (0.58, 0.02), (0.22, 1.0)], [(0.14, 0.5), (0.5, 0.5)]],
        [[(0.02, 0.12), (0.02, 0.02), (0.58, 0.02), (0.3, 0.55), (0.3, 1.0)]]],
    8: [[_arc(0.3, 0.25, 0.22, 0.23, 0, 360, 28), _arc(0.3, 0.73, 0.27, 0.26, 0, 360, 30)]],
    9: [[_arc(0.29, 0.30, 0.27, 0.29, 0, 360, 30), [(0.56, 0.3), (0.48, 0.65), (0.15, 1.0)]],
        [_arc(0.29, 0.30, 0.27, 0.29, 0, 360, 30), [(0.56, 0.3), (0.56, 1.0)]]],
}


def render_stroke_digit(digit: int, height: int, weight: float, variant: int, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """A digit drawn with round-capped strokes through a skeleton (hand-painted look).

    Args:
        weight: stroke width / height.
        variant: which skeleton (taken modulo the number of variants of this digit).
        jitter: random displacement of skeleton points, as a fraction of the height.
    """
    variants = _STROKES[int(digit)]
    strokes = variants[variant % len(variants)]
    h = float(height)
    thick = max(1, int(round(weight * h)))
    pad = thick + 3
    canvas = np.zeros((int(h + 2 * pad + 2), int(0.62 * h + 2 * pad + 2)), np.uint8)
    ss = 3
    for line in strokes:
        pts = np.asarray(line, dtype=np.float64) * h
        if jitter > 0:
            # Smooth jitter: a random offset per stroke plus a small per-point wobble.
            pts = pts + rng.normal(0, jitter * h * 0.5, size=(1, 2)) + rng.normal(0, jitter * h * 0.3, size=pts.shape)
        pts = np.round((pts + pad) * (1 << ss)).astype(np.int32)
        cv2.polylines(canvas, [pts], False, 255, thick, cv2.LINE_AA, ss)
    return _trim(canvas.astype(np.float32) / 255.0)


# --------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class GlyphStyle:
    """How every digit of one house number is drawn.

    Attributes:
        source: ``"font"``, ``"hershey"``, ``"segment"`` or ``"stroke"``.
        font: font file path (source ``"font"``) or Hershey face id as a string.
        stretch: horizontal scale (below 1 condensed, above 1 wide).
        shear: slant, x shift per unit of height (positive leans right).
        weight: dilation (+) or erosion (-) in fractions of the height.
        params: source-specific numbers (see :func:`make_style`).
    """

    source: str
    font: str
    stretch: float
    shear: float
    weight: float
    params: tuple[float, ...] = ()

    @property
    def can_draw_letters(self) -> bool:
        return self.source in ("font", "hershey")


def make_style(rng: np.random.Generator, fonts: Sequence[Sequence[str]], source_weights: Sequence[float] = (0.74, 0.08, 0.06, 0.12)) -> GlyphStyle:
    """Draw a random :class:`GlyphStyle`.

    Args:
        rng: random generator.
        fonts: font families (from :func:`font_families`); when empty the other sources are used.
        source_weights: relative odds of font, Hershey, seven-segment and stroke glyphs.
    """
    w = np.asarray(source_weights, dtype=np.float64)
    if not fonts:
        w[0] = 0.0
    src = ("font", "hershey", "segment", "stroke")[int(rng.choice(4, p=w / w.sum()))]
    # SVHN digits are narrow (box width / height: median 0.49, 10-90% 0.32-0.68 in the train
    # images), narrower than most fonts' figures: condense by 0.67 on average, which brings the
    # generated boxes to median 0.51, 10-90% 0.37-0.68. (At 0.74 the median was 0.55, and a
    # classifier trained on such crops alone read 11 points fewer real crops: see
    # tests/test_synth.py::test_boxes_are_as_narrow_and_as_close_as_svhns.)
    stretch = float(np.exp(rng.normal(-0.4, 0.17)))
    shear = float(rng.normal(0.0, 0.06)) if rng.random() < 0.7 else float(rng.uniform(-0.1, 0.3))
    weight = float(rng.normal(0.0, 0.015)) if rng.random() < 0.5 else 0.0
    if src == "font":
        family = fonts[int(rng.integers(len(fonts)))]
        font = family[int(rng.integers(len(family)))]
        stroke = float(rng.choice([0.0, 0.0, 0.0, 0.03, 0.06]))
        return GlyphStyle(src, font, stretch, shear, weight, (stroke,))
    if src == "hershey":
        face = HERSHEY_FACES[int(rng.integers(len(HERSHEY_FACES)))]
        return GlyphStyle(src, str(face), stretch, shear, 0.0,
                          (float(rng.uniform(0.06, 0.2)), float(rng.random() < 0.2)))
    if src == "segment":
        return GlyphStyle(src, "", stretch, shear + float(rng.choice([0.0, 0.1])), 0.0,
                          (float(rng.uniform(0.1, 0.2)), float(rng.uniform(0.0, 0.025)),
                           float(rng.uniform(0.45, 0.65)), float(rng.random() < 0.6)))
    return GlyphStyle(src, "", stretch, shear, 0.0,
                      (float(rng.uniform(0.08, 0.2)), float(rng.integers(0, 6)), float(rng.uniform(0.0, 0.03))))


def _stretch_shear(mask: np.ndarray, stretch: float, shear: float) -> np.ndarray:
    if abs(stretch - 1.0) < 0.02 and abs(shear) < 0.01:
        return mask
    h, w = mask.shape
    # x' = stretch * x + shear * (h - y) + offset: the baseline stays put, the top leans right.
    offset = 1.0 + max(0.0, -shear * h)
    out_w = int(np.ceil(stretch * w + abs(shear) * h)) + 3
    m = np.array([[stretch, -shear, shear * h + offset], [0.0, 1.0, 0.0]], np.float64)
    out = cv2.warpAffine(mask, m, (out_w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return _trim(out)


def _reweight(mask: np.ndarray, weight: float) -> np.ndarray:
    r = weight * mask.shape[0]
    if abs(r) < 0.5:
        return mask
    k = int(round(abs(r))) * 2 + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    if r > 0:
        return _trim(cv2.dilate(np.pad(mask, k), kernel))
    eroded = cv2.erode(mask, kernel)
    return _trim(eroded) if eroded.max() > 0.5 else mask


def render_glyph(style: GlyphStyle, char: int | str, height: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one character (a digit; letters only for font and Hershey styles) ``height`` px tall.

    Returns:
        ``(h, w)`` float32 ink mask in [0, 1], trimmed to its ink with a 1-px margin.
    """
    height = max(int(height), 6)
    if style.source == "font":
        stroke = int(round(style.params[0] * height)) if style.params else 0
        mask = render_font_digit(style.font, char, height, stroke)
    elif style.source == "hershey":
        mask = render_hershey_digit(int(style.font), char, height, style.params[0], bool(style.params[1]))
    elif style.source == "segment":
        thick, gap, aspect, tails = style.params
        mask = render_segment_digit(int(char), height, thick, gap, aspect, bool(tails))
    elif style.source == "stroke":
        weight, variant, jitter = style.params
        mask = render_stroke_digit(int(char), height, weight, int(variant), jitter, rng)
    else:
        raise ValueError(f"glyph source {style.source!r} is unknown; expected font, hershey, segment or stroke")
    mask = _stretch_shear(mask, style.stretch, style.shear)
    mask = _reweight(mask, style.weight)
    return _thicken_faint(mask)


def _thicken_faint(mask: np.ndarray) -> np.ndarray:
    """Grow strokes that rendered thinner than a pixel (hairline fonts at small sizes), so every
    part of the digit is clearly inked and inside its box."""
    for _ in range(2):
        solid = int((mask >= 0.5).sum())
        faint = int((mask >= 0.1).sum())
        if faint == 0 or solid >= 0.6 * faint:
            break
        mask = cv2.dilate(np.pad(mask, 1), np.ones((2, 2), np.uint8))
    return mask
