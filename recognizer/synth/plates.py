"""Close-up photos of house-number plates: the number fills 20-95% of the frame.

SVHN's crops (:mod:`recognizer.synth.scene`) and the facades of ``tools/synth_scenes.py`` show
a number small or tightly framed in a low-resolution Street View crop. A phone photo of a
building-number plate is another picture: the number is large (real close-ups, 640x640
exports: the number spans 84-95% of the width and height), its digits are often thin and
widely spaced (the light detector read "108" as "8" and "211" as "21"), the plate is engraved,
brushed or shiny, the photo is taken at an angle, and the export may stretch it.

:func:`render_plate` draws one such photo with the generator's pieces: glyphs
(:mod:`~recognizer.synth.glyphs`), walls (:mod:`~recognizer.synth.textures`), plates
(:mod:`~recognizer.synth.painting`), light and camera effects (:mod:`~recognizer.synth.degrade`).
The number is laid out on a flat wall-plane canvas, the plate's material is painted, and one
perspective warp maps a rotated, skewed, maybe anisotropic view of it onto the output; every
character's box is its ink's convex hull pushed through the same warp. A letter suffix ("502C")
is boxed like the digits but marked as not a digit (:attr:`PlateSample.is_digit`), so an SVHN
export (:attr:`PlateSample.boxes`, :attr:`PlateSample.digits`) leaves it out and crops can
label it "not a digit" (:attr:`PlateSample.text_boxes`, as :class:`~recognizer.synth.SynthSample`).

Image ``i`` of seed ``s`` comes from its own stream (:func:`plate_rng`), so any worker renders it
identically, and the stream differs from the SVHN-like generator's for the same seed.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from recognizer.synth import degrade, glyphs, textures
from recognizer.synth.generate import generate_with
from recognizer.synth.painting import blend_mask, draw_plate, hull_points, paint_sign, plate_colors, shape_mask
from recognizer.synth.scene import hull_boxes, keep_legible, warp_view, zoom_to_fit

log = logging.getLogger(__name__)

__all__ = [
    "MATERIALS",
    "PlateConfig",
    "PlateGenerator",
    "PlateSample",
    "WALL_WEIGHTS",
    "generate_plates",
    "plate_rng",
    "render_plate",
]

MATERIALS: tuple[str, ...] = ("painted", "engraved", "brushed", "reflective", "wall")
"""Plate materials: a flat painted or enamel plate; an engraved (or raised) plate of stone,
brass or steel with relief shading; brushed metal with streaks; a glossy plate with a specular
band and highlight; no plate (digits mounted on the wall with depth and shadow, or painted on it)."""

WALL_WEIGHTS: dict[str, float] = {
    "brick": 0.3, "plain": 0.2, "stucco": 0.14, "metal": 0.1, "stone": 0.08, "siding": 0.07, "wood": 0.05, "noise": 0.06,
}
"""Odds of the walls behind close-ups (:data:`recognizer.synth.textures.WALL_TEXTURES`): building
numbers are mostly on brick, render and cladding panels."""

_STREAM_TAG = 0x504C41  # "PLA": plates draw from streams of their own, not the SVHN generator's


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class PlateConfig:
    """Knobs of the close-up renderer.

    Attributes:
        size: ``(height, width)`` of the output in pixels (240x320 is the light detector's input;
            320x320 mimics the square 640x640 exports).
        fill_range: the number's box (all characters) spans this fraction of the frame in its
            tighter direction: ``max(span_w / W, span_h / H)`` is drawn uniformly in this range
            (slightly less when perspective forces a zoom-out to keep every digit in view).
        digit_count_weights: relative odds of 1, 2, 3 and 4 digits.
        suffix_prob: odds of a letter after the number ("502C").
        material_weights: relative odds of :data:`MATERIALS`.
        stretch_prob: odds of an anisotropic stretch (an export resized without keeping the
            aspect ratio); the x/y scale ratio is then log-uniform in ``stretch_range``. Mostly
            a squeeze: the real 640x640 close-ups' digit boxes are 0.26-0.45 as wide as tall.
        geometry: scale of rotation and perspective (0 = frontal).
        camera_strength: scale of the camera effects (0 = none).
        clean: flat background and colours, no plate, light, clutter or camera effects;
            geometry and stretch are kept. For tests of the boxes.
    """

    size: tuple[int, int] = (240, 320)
    fill_range: tuple[float, float] = (0.2, 0.95)
    digit_count_weights: tuple[float, ...] = (0.08, 0.22, 0.5, 0.2)
    suffix_prob: float = 0.1
    material_weights: tuple[float, ...] = (0.2, 0.15, 0.15, 0.15, 0.35)
    stretch_prob: float = 0.6
    stretch_range: tuple[float, float] = (0.4, 1.5)
    geometry: float = 1.0
    camera_strength: float = 1.0
    clean: bool = False

    def __post_init__(self) -> None:
        h, w = self.size
        if h < 32 or w < 32:
            raise ValueError(f"size {self.size}: expected height and width of at least 32 px")
        lo, hi = self.fill_range
        if not 0.05 <= lo <= hi <= 1.0:
            raise ValueError(f"fill_range {self.fill_range}: expected 0.05 <= low <= high <= 1")
        if len(self.material_weights) != len(MATERIALS):
            raise ValueError(f"material_weights {self.material_weights}: expected {len(MATERIALS)} weights for {MATERIALS}")


@dataclass(frozen=True)
class PlateSample:
    """One close-up.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR.
        char_boxes: ``(N, 4)`` float32 xyxy boxes of every character, left to right (``x2``
            exclusive, as in :class:`~recognizer.synth.SynthSample`).
        chars: the character of each box (``"0"``-``"9"`` or a letter).
        info: what was drawn (material, glyphs, fill, gap, stretch, ...), for sheets and debugging.
    """

    image: np.ndarray = field(repr=False)
    char_boxes: np.ndarray
    chars: tuple[str, ...]
    info: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_digit(self) -> np.ndarray:
        """``(N,)`` bool: which characters are digits (the rest are letters, not digits)."""
        return np.array([c.isdigit() for c in self.chars], bool)

    @property
    def boxes(self) -> np.ndarray:
        """``(D, 4)`` float32 xyxy boxes of the digits only (what the detector is taught)."""
        return self.char_boxes[self.is_digit]

    @property
    def digits(self) -> np.ndarray:
        """``(D,)`` int64 digits, left to right."""
        return np.array([int(c) for c in self.chars if c.isdigit()], np.int64)

    @property
    def text_boxes(self) -> np.ndarray:
        """``(M, 4)`` float32 xyxy boxes of the letters (not digits), as ``SynthSample.text_boxes``."""
        return self.char_boxes[~self.is_digit]

    @property
    def text_chars(self) -> tuple[str, ...]:
        """The letters of :attr:`text_boxes`."""
        return tuple(c for c in self.chars if not c.isdigit())

    @property
    def text(self) -> str:
        """Everything written, e.g. ``"502C"``."""
        return "".join(self.chars)


def plate_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of close-up ``index`` under base ``seed`` (both non-negative ints)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed {seed} and index {index} must be >= 0")
    return np.random.default_rng([int(seed), int(index), _STREAM_TAG])


# --------------------------------------------------------------------------- colours


def _color(rng: np.random.Generator, luma: float, tinted: bool) -> np.ndarray:
    """A BGR colour in [0, 1] with luma close to ``luma``: a grey, or a muted tint."""
    if tinted:
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(40, 170), 255]]])
        c = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32) / 255.0
    else:
        c = np.ones(3, np.float32) + rng.normal(0, 0.02, 3).astype(np.float32)
    lum = float(0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2])
    return np.clip(c * (luma / max(lum, 1e-3)), 0.0, 1.0).astype(np.float32)


def _pair(rng: np.random.Generator, light_on_dark: bool, low_contrast: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(background, digit)`` colours of one polarity; low contrast: luma 0.13-0.3 apart."""
    if low_contrast:
        mid = rng.uniform(0.3, 0.7)
        d = rng.uniform(0.13, 0.3)
        dark, light = mid - d / 2, mid + d / 2
    else:
        dark, light = rng.uniform(0.04, 0.35), rng.uniform(0.62, 0.96)
    bg_l, fg_l = (dark, light) if light_on_dark else (light, dark)
    bg = _color(rng, bg_l, rng.random() < 0.45)
    fg = _color(rng, fg_l, rng.random() < 0.25)
    return bg, fg


def _luma(img: np.ndarray) -> np.ndarray:
    return 0.114 * img[..., 0] + 0.587 * img[..., 1] + 0.299 * img[..., 2]


# --------------------------------------------------------------------------- glyphs and layout


def _make_style(rng: np.random.Generator, fonts: Sequence[Sequence[str]]) -> glyphs.GlyphStyle:
    """A glyph style for plates: fonts (serif, sans, condensed, light, bold), geometric stroke
    digits (a plain bar 1, as on many modern plates) or Hershey; thin to bold; mostly upright."""
    w = np.array([0.62 if fonts else 0.0, 0.24, 0.14])
    src = ("font", "stroke", "hershey")[int(rng.choice(3, p=w / w.sum()))]
    r = rng.random()
    stretch = float(np.exp(rng.normal(0, 0.06)) if r < 0.5 else (rng.uniform(0.55, 0.9) if r < 0.9 else rng.uniform(1.08, 1.35)))
    shear = float(rng.normal(0, 0.015)) if rng.random() < 0.88 else float(rng.uniform(0.08, 0.25))
    r = rng.random()
    weight = -float(rng.uniform(0.01, 0.035)) if r < 0.3 else (float(rng.uniform(0.01, 0.045)) if r > 0.72 else 0.0)
    if src == "font":
        base = glyphs.make_style(rng, fonts, (1.0, 0.0, 0.0, 0.0))
        return dataclasses.replace(base, stretch=stretch, shear=shear, weight=weight, params=(0.0,))
    if src == "stroke":
        # Clean, unjittered strokes: the geometric sans of modern building numbers.
        return glyphs.GlyphStyle("stroke", "", stretch, shear, 0.0,
                                 (float(rng.uniform(0.05, 0.17)), float(rng.integers(0, 6)), float(rng.choice([0.0, 0.0, 0.006]))))
    faces = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
    return glyphs.GlyphStyle("hershey", str(faces[int(rng.integers(len(faces)))]), stretch, shear, 0.0,
                             (float(rng.uniform(0.05, 0.15)), 0.0))


def _letter_style(rng: np.random.Generator, style: glyphs.GlyphStyle, fonts: Sequence[Sequence[str]]) -> glyphs.GlyphStyle | None:
    """The style a suffix letter is drawn in: the number's own when it has letters, else a font."""
    if style.can_draw_letters:
        return style
    if not fonts:
        return None
    base = glyphs.make_style(rng, fonts, (1.0, 0.0, 0.0, 0.0))
    return dataclasses.replace(base, stretch=style.stretch, shear=style.shear, weight=0.0, params=(0.0,))


MIN_INK = 0.08
"""A glyph mask with less mean ink than this is slivers, not a character (redrawn)."""


@dataclass
class _Layout:
    masks: list[np.ndarray]
    xy: list[tuple[int, int]]  # top-left of each mask, number coordinates
    hulls: list[np.ndarray]  # per character, (K, 2) float32 ink hull, number coordinates
    span: np.ndarray  # xyxy union of the ink
    gh: int


def _lay_out(chars: Sequence[str], styles: Sequence[glyphs.GlyphStyle], gh: int, gaps: Sequence[float], tabular: bool,
             letter_scale: float, rng: np.random.Generator) -> _Layout:
    """Render ``chars`` ``gh`` px tall and place them on one baseline.

    ``gaps[i]`` is the space after character ``i`` in units of the median digit ink width;
    ``tabular`` centres every digit in a cell as wide as the widest (so a 1 gets room on both
    sides, as in monospaced plate fonts).
    """
    masks = []
    for ch, st in zip(chars, styles):
        h = gh if ch.isdigit() else max(6, int(round(gh * letter_scale)))
        m = glyphs.render_glyph(st, int(ch) if ch.isdigit() else ch, h, rng)
        if float(m.mean()) < MIN_INK:
            # A light font thinned further falls apart into slivers (YanoneKaffeesatz-Light's
            # 9 and 6): draw it at its own weight, else in plain strokes.
            m = glyphs.render_glyph(dataclasses.replace(st, weight=max(st.weight, 0.0)), int(ch) if ch.isdigit() else ch, h, rng)
            if float(m.mean()) < MIN_INK and ch.isdigit():
                plain = glyphs.GlyphStyle("stroke", "", st.stretch, st.shear, 0.0, (0.1, 0.0, 0.0))
                m = glyphs.render_glyph(plain, int(ch), h, rng)
            elif float(m.mean()) < MIN_INK:  # a letter the font does not draw: OpenCV's simplex face
                plain = glyphs.GlyphStyle("hershey", str(cv2.FONT_HERSHEY_SIMPLEX), st.stretch, st.shear, 0.0, (0.1, 0.0))
                m = glyphs.render_glyph(plain, ch, h, rng)
        masks.append(m)
    dw = [m.shape[1] for m, c in zip(masks, chars) if c.isdigit()]
    unit = float(np.median(dw)) if dw else float(gh) * 0.55
    cell = max(dw) if dw else unit
    xy: list[tuple[int, int]] = []
    hulls: list[np.ndarray] = []
    x = 0.0
    for i, (m, ch) in enumerate(zip(masks, chars)):
        h, w = m.shape
        left = x + ((cell - w) / 2 if tabular and ch.isdigit() else 0.0)
        if xy:  # never stack two characters (negative gaps of tight fonts)
            left = max(left, xy[-1][0] + 0.4 * masks[i - 1].shape[1])
        px, py = int(round(left)), int(round(gh - h))
        xy.append((px, py))
        hulls.append(hull_points(m) + np.array([px, py], np.float32))
        x = left + (cell if tabular and ch.isdigit() else w) - 2 + gaps[i] * unit
    pts = np.vstack(hulls)
    span = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max() + 1, pts[:, 1].max() + 1], np.float64)
    return _Layout(masks, xy, hulls, span, gh)


def _draw_gaps(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    """Spaces between characters, in median digit widths: tight, open or very wide (up to 1)."""
    r = rng.random()
    if r < 0.4:
        kind, base = "tight", float(np.clip(rng.normal(0.04, 0.06), -0.1, 0.15))
    elif r < 0.72:
        kind, base = "open", float(rng.uniform(0.15, 0.45))
    else:
        kind, base = "wide", float(rng.uniform(0.45, 1.0))
    gaps = np.clip(base + rng.normal(0, 0.03, n), -0.12, 1.05)
    return gaps, kind


# --------------------------------------------------------------------------- materials


def _ink_layer(shape: tuple[int, int], lay: _Layout, ox: int, oy: int, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """All glyph masks pasted (max) into one ``(h, w)`` float32 layer of the canvas."""
    ink = np.zeros(shape, np.float32)
    H, W = shape
    for m, (x, y) in zip(lay.masks, lay.xy):
        x0, y0 = int(round(x - ox + dx)), int(round(y - oy + dy))
        h, w = m.shape
        x1, y1, x2, y2 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        if x1 < x2 and y1 < y2:
            region = ink[y1:y2, x1:x2]
            np.maximum(region, m[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0], out=region)
    return ink


def _fill(canvas: np.ndarray, ink: np.ndarray, color: np.ndarray, alpha: float = 1.0) -> None:
    a = (ink * alpha)[:, :, None]
    canvas *= 1.0 - a
    canvas += a * color


def _relief(rng: np.random.Generator, canvas: np.ndarray, ink: np.ndarray, gh: int, sign: float) -> None:
    """Bevel shading along the glyph edges: light from one side, ``sign`` +1 raised, -1 carved."""
    s = max(0.8, gh * rng.uniform(0.015, 0.04))
    b = cv2.GaussianBlur(ink, (0, 0), s)
    ang = rng.uniform(0, 2 * np.pi)
    g = np.cos(ang) * cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3) + np.sin(ang) * cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3)
    peak = float(np.abs(g).max())
    if peak > 1e-6:
        canvas *= (1.0 + sign * rng.uniform(0.3, 0.6) * g / peak)[:, :, None]


def _drop_shadow(rng: np.random.Generator, canvas: np.ndarray, ink: np.ndarray, gh: int, dist: float) -> None:
    ang = rng.uniform(0.2, 1.4)  # light from the upper left-ish: shadow down and to the side
    side = 1.0 if rng.random() < 0.7 else -1.0
    m = np.float32([[1, 0, side * np.cos(ang) * dist], [0, 1, np.sin(ang) * dist]])
    sh = cv2.warpAffine(ink, m, (ink.shape[1], ink.shape[0]))
    sh = cv2.GaussianBlur(sh, (0, 0), max(0.7, dist * rng.uniform(0.4, 1.0)))
    _fill(canvas, sh, np.zeros(3, np.float32), rng.uniform(0.25, 0.6))


def _surface(rng: np.random.Generator, kind: str, h: int, w: int, gh: int, base: np.ndarray) -> np.ndarray:
    """The body of a plate: ``(h, w, 3)`` float32 BGR around colour ``base``."""
    body = np.empty((h, w, 3), np.float32)
    body[:] = base
    if kind == "brushed":
        streak = rng.random((h, w), dtype=np.float32) - 0.5
        k = max(3, int(w * rng.uniform(0.1, 0.5))) | 1
        streak = cv2.blur(streak, (k, 1)) * np.sqrt(k) * rng.uniform(0.04, 0.1)
        streak += (rng.random((h, w), dtype=np.float32) - 0.5) * rng.uniform(0.02, 0.06)
        if rng.random() < 0.3:  # grain running the other way (a plate mounted on its side)
            streak = cv2.blur(rng.random((h, w), dtype=np.float32) - 0.5, (1, max(3, int(h * 0.3)) | 1)) * 0.5
        xs = np.linspace(0, 1, w, dtype=np.float32)[None, :]
        sheen = 0.18 * np.cos(xs * np.pi * rng.uniform(0.5, 2.0) + rng.uniform(0, 6))
        body *= (1.0 + streak + sheen)[:, :, None]
    elif kind == "engraved":  # stone, marble, cast metal: blotches and grain
        g = textures.fractal_noise(rng, h, w, max(4.0, gh * rng.uniform(0.3, 1.5)), 3) * rng.uniform(0.05, 0.2)
        g += (rng.random((h, w), dtype=np.float32) - 0.5) * rng.uniform(0.0, 0.08)
        body *= (1.0 + g)[:, :, None]
    else:  # painted or glossy: an almost flat coat
        body *= (1.0 + textures.value_noise(rng, h, w, max(2.0, gh * 0.5)) * rng.uniform(0, 0.06))[:, :, None]
    return np.clip(body, 0, 1)


def _plate(rng: np.random.Generator, canvas: np.ndarray, rect: np.ndarray, kind: str, base: np.ndarray, gh: int) -> np.ndarray:
    """Draw a plate body of ``kind`` into ``rect`` (xyxy, canvas pixels).

    Returns:
        ``(H, W)`` float32 plate mask on the canvas (for the reflective overlay).
    """
    H, W = canvas.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in rect)
    w, h = x2 - x1, y2 - y1
    shape = str(rng.choice(["rect", "rounded", "chamfer"], p=[0.5, 0.4, 0.1]))
    mask = shape_mask(shape, w, h, min(w, h) * rng.uniform(0.03, 0.2))
    if rng.random() < 0.7:  # thickness: a dark offset edge and shadow on the wall
        off = max(1, int(gh * rng.uniform(0.02, 0.08)))
        sh = cv2.GaussianBlur(np.pad(mask, off + 2), (0, 0), max(0.6, off * 0.7))
        blend_mask(canvas, sh, x1 - 2 + off // 2, y1 - 2 + off // 2, np.zeros(3, np.float32), rng.uniform(0.3, 0.7))
    blend_mask(canvas, mask, x1, y1, _surface(rng, kind, h, w, gh, base))
    out = np.zeros((H, W), np.float32)
    _paste(out, mask, x1, y1)
    if rng.random() < 0.25:  # bevelled edge
        _relief(rng, canvas, out, gh * 2, 1.0)
    return out


def _paste(layer: np.ndarray, m: np.ndarray, x: int, y: int) -> None:
    H, W = layer.shape
    h, w = m.shape
    xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if xa < xb and ya < yb:
        layer[ya:yb, xa:xb] = np.maximum(layer[ya:yb, xa:xb], m[ya - y : yb - y, xa - x : xb - x])


def _specular(rng: np.random.Generator, canvas: np.ndarray, where: np.ndarray, gh: int) -> None:
    """A glossy surface: a soft bright band across it and a highlight, screen-blended."""
    H, W = canvas.shape[:2]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    d = np.cos(ang) * (xs - rng.uniform(0, W)) + np.sin(ang) * (ys - rng.uniform(0, H))
    width = max(H, W) * rng.uniform(0.05, 0.3)
    spec = np.exp(-((d / width) ** 2)) * rng.uniform(0.25, 0.7)
    if rng.random() < 0.6:
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), max(H, W) * rng.uniform(0.04, 0.2)
        spec += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r)) * rng.uniform(0.3, 0.8)
    # A blurry mirror image of the street: low-frequency light and dark.
    spec += textures.value_noise(rng, H, W, max(8.0, gh * 1.5)) * rng.uniform(0.0, 0.3)
    spec = np.clip(spec * where, 0.0, 0.9)[:, :, None]
    canvas[:] = 1.0 - (1.0 - canvas) * (1.0 - spec)


# --------------------------------------------------------------------------- the renderer


def _glyph_height(h: float) -> int:
    """Digit height on the canvas, 16-480 px in steps of 4% (fewer font sizes: the font cache holds)."""
    return int(round(1.04 ** round(np.log(np.clip(h, 16, 480)) / np.log(1.04))))


def _digits(rng: np.random.Generator, cfg: PlateConfig) -> list[str]:
    w = np.asarray(cfg.digit_count_weights, np.float64)
    n = int(rng.choice(len(w), p=w / w.sum())) + 1
    d = [str(int(v)) for v in rng.integers(0, 10, n)]
    if n > 1 and d[0] == "0":  # building numbers do not start with 0
        d[0] = str(int(rng.integers(1, 10)))
    return d


def render_plate(rng: np.random.Generator, fonts: Sequence[Sequence[str]], config: PlateConfig | None = None,
                 *, text: str | None = None) -> PlateSample:
    """Render one close-up photo of a house number on a plate or wall.

    Args:
        rng: the only source of randomness (same state -> same image).
        fonts: font families from :func:`recognizer.synth.glyphs.font_families` (may be empty).
        config: renderer settings.
        text: force the characters (digits, then optional letters, e.g. ``"502C"``).

    Returns:
        A :class:`PlateSample` of ``config.size``.
    """
    cfg = config or PlateConfig()
    H, W = cfg.size
    if text is None:
        chars = _digits(rng, cfg)
        if rng.random() < cfg.suffix_prob:
            chars.append(str(rng.choice(list("ABCDABCDEFab"))))
    else:
        chars = list(text)
        if not chars or not chars[0].isdigit() or not all(c.isdigit() or c.isalpha() for c in chars):
            raise ValueError(f"text {text!r}: expected digits, then optional letters")
    info: dict[str, str] = {}

    style = _make_style(rng, fonts)
    lstyle = _letter_style(rng, style, fonts)
    if lstyle is None:  # no font can draw the letter: drop it
        chars = [c for c in chars if c.isdigit()]
    styles = [style if c.isdigit() else lstyle for c in chars]
    info["glyphs"] = style.source if style.source != "font" else style.font.rsplit("/", 1)[-1]
    gaps, gap_kind = _draw_gaps(rng, len(chars))
    if len(chars) > 1 and not chars[-1].isdigit():
        gaps[-2] = gaps[-2] * rng.uniform(0.3, 1.0) + rng.uniform(0.0, 0.15)
    tabular = rng.random() < 0.3
    letter_scale = 1.0 if rng.random() < 0.7 else float(rng.uniform(0.55, 0.8))
    info["gap"] = f"{gap_kind} {float(np.mean(gaps[:-1])) if len(gaps) > 1 else 0.0:.2f}{' tabular' if tabular else ''}"

    # Framing: the view (in canvas pixels) that becomes the output, so that the number spans
    # `fill` of the frame in its tighter direction. `stretch` is the output's x/y scale ratio.
    fill = float(rng.uniform(*cfg.fill_range))
    stretch = float(np.exp(rng.uniform(*np.log(cfg.stretch_range)))) if rng.random() < cfg.stretch_prob else 1.0
    view_aspect = (W / H) / stretch
    gh = _glyph_height(fill * H * 1.1)
    lay = _lay_out(chars, styles, gh, gaps, tabular, letter_scale, rng)
    for _ in range(2):
        sw, sh = lay.span[2] - lay.span[0], lay.span[3] - lay.span[1]
        crop_h = max(sh / fill, sw / (fill * view_aspect))
        ky = H / crop_h  # output px per canvas px, vertically
        # Keep the canvas 1-1.6x the output's resolution: sharp after the warp, not wasteful.
        if 0.6 <= ky <= 1.0 or (gh <= 16 and ky > 1.0):
            break
        gh = _glyph_height(gh * ky / 0.8)
        lay = _lay_out(chars, styles, gh, gaps, tabular, letter_scale, rng)
    sw, sh = lay.span[2] - lay.span[0], lay.span[3] - lay.span[1]
    crop_h = max(sh / fill, sw / (fill * view_aspect))
    crop_w = view_aspect * crop_h
    info["fill"] = f"{fill:.2f}"
    info["stretch"] = f"{stretch:.2f}"

    # The view: rotated, seen at an angle (yaw, pitch), corners jittered; centred near the number.
    span_c = np.array([(lay.span[0] + lay.span[2]) / 2, (lay.span[1] + lay.span[3]) / 2])
    centre = span_c + np.array([rng.normal(0, 0.25) * max(crop_w - sw, 0) / 2, rng.normal(0, 0.25) * max(crop_h - sh, 0) / 2])
    rel = np.array([[-crop_w / 2, -crop_h / 2], [crop_w / 2, -crop_h / 2], [crop_w / 2, crop_h / 2], [-crop_w / 2, crop_h / 2]])
    g = cfg.geometry
    theta = np.radians(rng.normal(0, 4.0) if rng.random() < 0.85 else rng.uniform(-15, 15)) * g
    rel = rel @ np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]).T
    yaw, pitch = float(np.clip(rng.normal(0, 0.1), -0.3, 0.3)) * g, float(np.clip(rng.normal(0, 0.07), -0.2, 0.2)) * g
    rel[[1, 2], 1] *= 1 + yaw
    rel[[0, 3], 1] *= 1 - yaw
    rel[[0, 1], 0] *= 1 + pitch
    rel[[2, 3], 0] *= 1 - pitch
    rel += rng.normal(0, 0.015 * crop_h * g, rel.shape)
    # zoom out (and re-centre) until every character is in view
    ink_pts = np.vstack(lay.hulls).reshape(-1, 1, 2).astype(np.float64)
    quad, M = zoom_to_fit(rel, centre, span_c, ink_pts, (W, H), tries=16, grow=1.05, margin=1)

    # The plate around the number (it may run out of view, as in close-ups).
    mx = gh * (rng.uniform(0.12, 0.7) if rng.random() < 0.8 else rng.uniform(0.7, 2.0))
    my = gh * (rng.uniform(0.08, 0.45) if rng.random() < 0.8 else rng.uniform(0.45, 1.2))
    plate = lay.span + np.array([-mx, -my, mx, my])
    margin = 4
    corners = np.vstack([quad, lay.span.reshape(2, 2)])
    ox, oy = (int(v) for v in np.floor(corners.min(0)) - margin)
    cw, ch = (int(v) for v in np.ceil(corners.max(0)) + margin - np.array([ox, oy]))

    material = "wall" if cfg.clean else str(rng.choice(MATERIALS, p=np.asarray(cfg.material_weights) / sum(cfg.material_weights)))
    info["material"] = material
    light_on_dark = rng.random() < 0.5
    low = rng.random() < 0.15
    canvas, ink = _paint(rng, cfg, fonts, material, lay, plate, ox, oy, (ch, cw), light_on_dark, low, info)

    # Warp to the output, pre-blurring when shrinking so thin strokes do not alias away.
    out = warp_view(canvas, M, (ox, oy), quad, (W, H), blur=0.4)
    boxes = hull_boxes(lay.hulls, M)

    if not cfg.clean:
        digit_h = float(np.median(boxes[:, 3] - boxes[:, 1]))
        out = _camera(rng, out, cfg.camera_strength, digit_h)
        out = keep_legible(rng, out, boxes)
    img = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if not cfg.clean and cfg.camera_strength > 0:
        img = degrade.jpeg(rng, img, prob=0.7)
    return PlateSample(image=img, char_boxes=boxes, chars=tuple(chars), info=info)


def _paint(rng: np.random.Generator, cfg: PlateConfig, fonts: Sequence[Sequence[str]], material: str, lay: _Layout,
           plate: np.ndarray, ox: int, oy: int, shape: tuple[int, int], light_on_dark: bool, low: bool,
           info: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Wall, plate and digits on the wall-plane canvas: ``(canvas (h, w, 3) float32 BGR, ink (h, w))``."""
    ch, cw = shape
    gh = lay.gh
    ink = _ink_layer(shape, lay, ox, oy)
    if cfg.clean:
        bg, fg = _pair(rng, light_on_dark, False)
        canvas = np.empty((ch, cw, 3), np.float32)
        canvas[:] = bg
        _fill(canvas, ink, fg)
        info["colors"] = "light on dark" if light_on_dark else "dark on light"
        return canvas, ink

    names = list(WALL_WEIGHTS)
    p = np.array([WALL_WEIGHTS[k] for k in names])
    wall_name = names[int(rng.choice(len(names), p=p / p.sum()))]
    canvas = textures.WALL_TEXTURES[wall_name](rng, ch, cw, gh * rng.uniform(0.5, 1.5))
    info["wall"] = wall_name
    prect = plate - np.array([ox, oy, ox, oy])
    if rng.random() < 0.4:
        keep = prect + np.array([-0.2, -0.2, 0.2, 0.2]) * gh if material != "wall" else prect
        textures.add_clutter(rng, canvas, gh, tuple(float(v) for v in keep))
    if rng.random() < 0.12:  # a sign line above or below the number (unlabelled letters)
        th = gh * rng.uniform(0.15, 0.4)
        above = rng.random() < 0.5
        ty = prect[1] - th * rng.uniform(1.4, 2.5) if above else prect[3] + th * rng.uniform(0.4, 1.5)
        paint_sign(rng, canvas, fonts, prect[0] + rng.uniform(-0.5, 0.5) * gh, ty, th)

    if material == "wall":
        under = canvas[int(max(prect[1], 0)) : int(min(prect[3], ch)), int(max(prect[0], 0)) : int(min(prect[2], cw))]
        lum = float(np.median(_luma(under))) if under.size else 0.5
        light_on_dark = lum < 0.5 if rng.random() < 0.9 else lum >= 0.5  # 10%: light on light, dark on dark
        if low:
            target = lum + rng.uniform(0.13, 0.3) * (1 if light_on_dark else -1)
        elif light_on_dark:
            lo = min(max(lum + 0.3, 0.6), 0.95)
            target = rng.uniform(lo, 0.98)
        else:
            hi = max(min(lum - 0.3, 0.35), 0.05)
            target = rng.uniform(0.02, hi)
        fg = _color(rng, float(np.clip(target, 0.02, 0.98)), rng.random() < 0.2)
        if rng.random() < 0.6:  # mounted letters: side faces, a shadow on the wall
            depth = gh * rng.uniform(0.015, 0.05)
            ang = rng.uniform(0.3, 1.3)
            _drop_shadow(rng, canvas, ink, gh, depth * rng.uniform(1.5, 4))
            side = fg * rng.uniform(0.45, 0.75)
            steps = int(np.clip(np.ceil(depth), 1, 6))
            for k in range(steps, 0, -1):
                t = depth * k / steps
                _fill(canvas, _ink_layer(shape, lay, ox, oy, np.cos(ang) * t, np.sin(ang) * t), side)
            _fill(canvas, ink, fg)
            if rng.random() < 0.3:
                _relief(rng, canvas, ink, gh, 1.0)
            info["digits"] = "mounted"
        else:  # painted: the wall shows through a little
            paint = np.empty((ch, cw, 3), np.float32)
            paint[:] = fg
            paint *= (1.0 + 0.15 * textures.value_noise(rng, ch, cw, max(2.0, gh * 0.15)))[:, :, None]
            _fill_img(canvas, ink * rng.uniform(0.8, 1.0), paint)
            info["digits"] = "painted"
    else:
        plate_mask = None
        if material == "painted":
            if rng.random() < 0.4:  # the classic enamel schemes (white on blue, black on white, ...)
                name, bg, fg = plate_colors(rng)
                info["scheme"] = name
            else:
                bg, fg = _pair(rng, light_on_dark, low)
            draw_plate(rng, canvas, prect, bg, fg, gh)
            _fill(canvas, ink, fg)
        elif material == "engraved":
            metals = [(0.55, 0.62, 0.68), (0.3, 0.55, 0.72), (0.6, 0.6, 0.6), (0.8, 0.8, 0.78), (0.35, 0.35, 0.36), (0.2, 0.22, 0.25)]
            bg = np.array(metals[int(rng.integers(len(metals)))], np.float32) * rng.uniform(0.8, 1.15)
            plate_mask = _plate(rng, canvas, prect, "engraved", np.clip(bg, 0, 1), gh)
            carved = rng.random() < 0.7
            if carved:
                r = rng.random()
                if r < 0.45:  # filled with paint
                    fg = _color(rng, 0.05 if float(_luma(bg)) > 0.4 else 0.92, rng.random() < 0.3)
                    _fill(canvas, ink, fg)
                else:  # bare cut: darker inside
                    _darken(canvas, ink, rng.uniform(0.35, 0.75))
                _relief(rng, canvas, ink, gh, -1.0)
            else:  # raised letters of the same material
                _drop_shadow(rng, canvas, ink, gh, gh * rng.uniform(0.02, 0.06))
                _fill(canvas, ink, np.clip(bg * rng.uniform(0.9, 1.25), 0, 1))
                _relief(rng, canvas, ink, gh, 1.0)
            info["digits"] = "carved" if carved else "raised"
        elif material == "brushed":
            metals = [(0.72, 0.72, 0.7), (0.55, 0.56, 0.56), (0.3, 0.6, 0.78), (0.35, 0.5, 0.72), (0.4, 0.4, 0.42)]
            bg = np.array(metals[int(rng.integers(len(metals)))], np.float32) * rng.uniform(0.85, 1.15)
            plate_mask = _plate(rng, canvas, prect, "brushed", np.clip(bg, 0, 1), gh)
            r = rng.random()
            if r < 0.6:
                fg = _color(rng, rng.uniform(0.03, 0.2), rng.random() < 0.2)
            elif r < 0.8:
                fg = _color(rng, rng.uniform(0.85, 0.98), False)
            else:
                fg = None
            if fg is None:  # etched: darker, with a bevel
                _darken(canvas, ink, rng.uniform(0.4, 0.7))
                _relief(rng, canvas, ink, gh, -1.0)
            else:
                _fill(canvas, ink, fg)
        else:  # reflective: glossy acrylic, glass or polished steel
            bg, fg = _pair(rng, light_on_dark, low)
            plate_mask = _plate(rng, canvas, prect, "glossy", bg, gh)
            if rng.random() < 0.3:
                _drop_shadow(rng, canvas, ink, gh, gh * rng.uniform(0.015, 0.05))
            _fill(canvas, ink, fg)
        info["colors"] = "light on dark" if light_on_dark else "dark on light"
        if material == "reflective" and plate_mask is not None:
            degrade.lighting(rng, canvas, gh)
            _specular(rng, canvas, plate_mask, gh)
            return canvas, ink
    degrade.lighting(rng, canvas, gh)
    return canvas, ink


def _fill_img(canvas: np.ndarray, ink: np.ndarray, img: np.ndarray) -> None:
    a = ink[:, :, None]
    canvas *= 1.0 - a
    canvas += a * img


def _darken(canvas: np.ndarray, ink: np.ndarray, factor: float) -> None:
    canvas *= (1.0 - ink * (1.0 - factor))[:, :, None]


def _camera(rng: np.random.Generator, img: np.ndarray, strength: float, digit_h: float) -> np.ndarray:
    """A phone's capture: the generator's camera effects (milder), defocus, sharpening, vignetting."""
    if strength <= 0:
        return img
    # degrade.camera scales blur and resolution loss with the digit height (up to 9% of it, and
    # down to 9 px digits): right for Street View crops, far too soft for a phone held close to
    # a plate. Capping the height it sees caps the blur at a sigma of 1.6-3.6 px.
    out = degrade.camera(rng, img, strength * rng.uniform(0.3, 0.9), min(digit_h, float(rng.uniform(18, 40))))
    h, w = out.shape[:2]
    if rng.random() < 0.5:  # phones keep more colour than Street View: undo part of camera()'s washing out
        gray = out.mean(axis=2, keepdims=True)
        out = gray + (out - gray) * rng.uniform(1.0, 1.8)
    if rng.random() < 0.15 * strength:  # defocus: a disk
        r = float(min(rng.uniform(1.0, 4.0), max(1.0, 0.05 * digit_h)))
        k = int(np.ceil(r)) * 2 + 1
        disk = np.zeros((k, k), np.float32)
        cv2.circle(disk, (k // 2, k // 2), int(round(r)), 1.0, -1, cv2.LINE_AA)
        out = cv2.filter2D(out, -1, disk / disk.sum(), borderType=cv2.BORDER_REFLECT)
    if rng.random() < 0.15 * strength:  # hand shake
        k = degrade.motion_kernel(float(min(rng.uniform(2, 9), max(2.0, 0.12 * digit_h))), rng.uniform(0, 180))
        out = cv2.filter2D(out, -1, k, borderType=cv2.BORDER_REFLECT)
    if rng.random() < 0.3:  # a phone's sharpening halo
        out = np.clip(out + rng.uniform(0.3, 1.0) * (out - cv2.GaussianBlur(out, (0, 0), rng.uniform(1.0, 2.5))), 0, 1)
    if rng.random() < 0.3:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2
        out = out * (1.0 - rng.uniform(0.1, 0.35) * r2 / 2)[:, :, None]
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------- many samples


@dataclass
class PlateGenerator:
    """Renders close-ups of one seed (same ``seed``, index, config and fonts -> same pixels).

    Attributes:
        seed: base seed.
        config: renderer settings.
        fonts: font files; ``None`` finds the system's fonts.
    """

    seed: int = 0
    config: PlateConfig | None = None
    fonts: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.fonts is None:
            self.fonts = glyphs.find_fonts()
        self._families = glyphs.font_families(list(self.fonts))

    def sample(self, index: int) -> PlateSample:
        """Render close-up ``index``."""
        return render_plate(plate_rng(self.seed, index), self._families, self.config)


def generate_plates(n: int, seed: int = 0, *, start: int = 0, workers: int | None = None, config: PlateConfig | None = None,
                    fonts: Sequence[str] | None = None, chunk: int = 16) -> Iterator[tuple[int, PlateSample]]:
    """Yield ``(index, sample)`` for indices ``start .. start + n - 1`` in order (the same
    pixels whatever ``workers`` is; see :func:`recognizer.synth.generate`)."""
    yield from generate_with(PlateGenerator, n, seed, start=start, workers=workers, config=config, fonts=fonts, chunk=chunk)
