"""Laying out a house number and painting it (and signs) onto a flat wall-plane canvas.

:func:`plan_number` chooses a glyph style and lays the digits out in their own pixel
coordinates (a :class:`NumberPlan`: glyph masks, per-digit ink hulls, the plate rectangle,
unlabelled text around the number); :func:`paint_number` paints a plan into a float32 BGR
canvas (a plate in one of the colour schemes, paint, or digits fixed to the wall with a
shadow); :func:`paint_sign` paints a line of text with no digits (a name, a street sign).

Nothing here frames or degrades an image: the SVHN-like samples (:mod:`recognizer.synth.scene`)
and the demo's street (:mod:`recognizer.synth.street`) both paint their numbers with it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from recognizer.synth import glyphs, textures, words

__all__ = [
    "DEFAULT_SOURCE_WEIGHTS",
    "NumberPlan",
    "blend_mask",
    "hull_points",
    "paint_number",
    "paint_sign",
    "plan_number",
    "random_contrasting",
]

DEFAULT_SOURCE_WEIGHTS: tuple[float, float, float, float] = (0.74, 0.08, 0.06, 0.12)
"""Odds of font, Hershey, seven-segment and stroke glyphs (``SynthConfig.source_weights``' default)."""


# --------------------------------------------------------------------------- colours

_PLATE_SCHEMES: tuple[tuple[str, tuple[int, int, int], tuple[int, int, int], float], ...] = (
    # name, plate RGB, digit RGB, weight
    ("white-on-blue", (28, 62, 140), (242, 242, 240), 0.17),
    ("blue-on-white", (238, 238, 232), (30, 52, 128), 0.10),
    ("black-on-white", (238, 238, 232), (22, 22, 22), 0.14),
    ("white-on-black", (28, 28, 30), (238, 238, 238), 0.07),
    ("gold-on-black", (24, 22, 20), (205, 165, 80), 0.05),
    ("black-on-brass", (192, 152, 72), (32, 26, 16), 0.06),
    ("white-on-green", (24, 92, 52), (238, 238, 238), 0.05),
    ("white-on-red", (150, 32, 30), (244, 244, 244), 0.05),
    ("black-on-yellow", (228, 188, 44), (22, 22, 22), 0.03),
    ("black-on-grey", (150, 150, 148), (22, 22, 22), 0.05),
    ("cream-on-brown", (92, 56, 32), (232, 222, 196), 0.05),
    ("red-on-white", (238, 238, 232), (168, 32, 30), 0.04),
    ("random", (0, 0, 0), (0, 0, 0), 0.14),
)


def _bgr(rgb: Sequence[float]) -> np.ndarray:
    return np.array([rgb[2], rgb[1], rgb[0]], np.float32) / 255.0


def _jitter_color(rng: np.random.Generator, c: np.ndarray, amount: float = 0.05) -> np.ndarray:
    return np.clip(c * rng.uniform(0.8, 1.12) + rng.normal(0, amount, 3), 0, 1).astype(np.float32)


def _luma(c: np.ndarray) -> float:
    return float(0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2])


def random_contrasting(rng: np.random.Generator, bg: np.ndarray, min_diff: float = 0.35) -> np.ndarray:
    """A colour whose luma differs from ``bg`` by at least ``min_diff`` (when possible)."""
    for _ in range(20):
        c = rng.random(3).astype(np.float32)
        if rng.random() < 0.5:  # bias to near-greys, most numbers are black, white or metal
            c = np.full(3, c.mean(), np.float32) + rng.normal(0, 0.05, 3).astype(np.float32)
        c = np.clip(c, 0, 1)
        if abs(_luma(c) - _luma(bg)) >= min_diff:
            return c
    return np.full(3, 0.05 if _luma(bg) > 0.5 else 0.95, np.float32)


def plate_colors(rng: np.random.Generator) -> tuple[str, np.ndarray, np.ndarray]:
    w = np.array([s[3] for s in _PLATE_SCHEMES])
    name, plate, digit, _ = _PLATE_SCHEMES[int(rng.choice(len(w), p=w / w.sum()))]
    if name == "random":
        p = rng.random(3).astype(np.float32)
        p = p.mean() + (p - p.mean()) * rng.uniform(0.2, 0.8)  # real plates are rarely neon
        return name, p.astype(np.float32), random_contrasting(rng, p)
    p, d = _jitter_color(rng, _bgr(plate)), _jitter_color(rng, _bgr(digit))
    if rng.random() < 0.12:  # inverted
        p, d = d, p
    return name, p, d


def _paint_color(rng: np.random.Generator, wall: np.ndarray) -> np.ndarray:
    """Digit colour for numbers painted or fixed straight onto the wall.

    The colour's luma differs from the wall's median luma by at least 0.3, except in the
    deliberately faint case (12%), where it differs by 0.15-0.3 (a darker or lighter shade of
    the wall, as weathered painted numbers look).
    """
    lum = float(np.median(0.114 * wall[..., 0] + 0.587 * wall[..., 1] + 0.299 * wall[..., 2]))
    if rng.random() < 0.12:
        base = np.clip(wall.reshape(-1, 3).mean(0), 0.02, 1)
        target = lum - rng.uniform(0.15, 0.3) if lum > 0.4 else lum + rng.uniform(0.15, 0.3)
        return np.clip(base * (target / max(_luma(base), 0.02)), 0, 1).astype(np.float32)
    dark = [(20, 20, 20), (40, 30, 25), (25, 40, 90), (30, 60, 35), (120, 30, 25), (70, 70, 70)]
    light = [(240, 240, 240), (230, 220, 190), (210, 170, 80), (200, 200, 200)]
    for _ in range(10):
        choices = dark if lum > 0.45 else light
        c = _jitter_color(rng, _bgr(choices[int(rng.integers(len(choices)))]), 0.04)
        if abs(_luma(c) - lum) >= 0.3:
            return c
    return np.full(3, 0.05 if lum > 0.5 else 0.95, np.float32)


# --------------------------------------------------------------------------- drawing helpers


def blend_mask(canvas: np.ndarray, mask: np.ndarray, x: int, y: int, color: np.ndarray | np.ndarray, alpha: float = 1.0) -> None:
    """Alpha-blend a colour (``(3,)`` or a ``(h, w, 3)`` image) through ``mask`` at ``(x, y)``."""
    H, W = canvas.shape[:2]
    h, w = mask.shape
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 >= x2 or y1 >= y2:
        return
    m = mask[y1 - y : y2 - y, x1 - x : x2 - x, None] * alpha
    region = canvas[y1:y2, x1:x2]
    c = color if np.ndim(color) == 1 else color[y1 - y : y2 - y, x1 - x : x2 - x]
    region[:] = region * (1 - m) + c * m


def hull_points(mask: np.ndarray) -> np.ndarray:
    """Convex hull of the ink pixels (mask >= 0.3 of its peak) as ``(K, 2)`` float32 x, y pixel centres."""
    ys, xs = np.nonzero(mask >= 0.3 * max(float(mask.max()), 1e-3))
    pts = np.stack([xs, ys], 1).astype(np.float32)
    if len(pts) >= 3:
        pts = cv2.convexHull(pts).reshape(-1, 2)
    return pts


def shape_mask(shape: str, w: int, h: int, radius: float) -> np.ndarray:
    """Filled plate shape of size ``w`` x ``h`` as float32 mask (antialiased)."""
    m = np.zeros((h, w), np.uint8)
    ss = 3
    S = 1 << ss
    if shape == "oval":
        cv2.ellipse(m, (int(w * S / 2), int(h * S / 2)), (int(w * S / 2 - S), int(h * S / 2 - S)), 0, 0, 360, 255, -1, cv2.LINE_AA, ss)
    elif shape == "rounded" and radius >= 1:
        r = int(min(radius, w / 2 - 1, h / 2 - 1))
        cv2.rectangle(m, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(m, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(m, (cx, cy), r, 255, -1, cv2.LINE_AA)
    elif shape == "chamfer":
        c = int(min(radius, w / 3, h / 3))
        pts = np.array([[c, 0], [w - 1 - c, 0], [w - 1, c], [w - 1, h - 1 - c], [w - 1 - c, h - 1],
                        [c, h - 1], [0, h - 1 - c], [0, c]], np.int32)
        cv2.fillPoly(m, [pts], 255, cv2.LINE_AA)
    else:
        m[:] = 255
    return m.astype(np.float32) / 255.0


# --------------------------------------------------------------------------- layout


@dataclass
class _Glyph:
    mask: np.ndarray  # (h, w) float32 ink
    x: int  # top-left in number coordinates
    y: int
    char: str = ""  # the character drawn, for text around a number


def _layout(rng: np.random.Generator, masks: list[np.ndarray], gh: int, wobbly: bool) -> list[_Glyph]:
    """Place glyphs left to right on a common baseline (bottom), with spacing and jitter."""
    # SVHN's gap between neighbouring digit boxes / digit height: median 0, 10-90% -0.11..0.1.
    # Widely spaced numbers are rare there; with 12% of them here (up to 0.4) the neighbours
    # that SVHN's square crops show at the sides were missing from too many crops.
    spacing = gh * (rng.normal(0.0, 0.07) if rng.random() < 0.96 else rng.uniform(0.1, 0.3))
    stairs = gh * rng.uniform(-0.5, 0.5) if rng.random() < 0.03 else 0.0
    out: list[_Glyph] = []
    x = 0.0
    for i, m in enumerate(masks):
        h, w = m.shape
        dy = rng.normal(0, 0.03 * gh) if wobbly else 0.0
        y = gh - h + dy + stairs * i
        out.append(_Glyph(m, int(round(x)), int(round(y))))
        x += w - 2 + spacing + (rng.normal(0, 0.04 * gh) if wobbly else 0.0)
        x = max(x, out[-1].x + 1.0 + 0.35 * w)  # never stack two digits on each other
    return out


def _union(boxes: np.ndarray) -> np.ndarray:
    return np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()], np.float64)


# --------------------------------------------------------------------------- planning and painting a number


@dataclass
class NumberPlan:
    """A house number laid out in its own pixel coordinates, ready to be painted anywhere.

    Attributes:
        digits: ``(N,)`` int64 digits.
        gh: digit height in px.
        style: glyph style shared by the digits.
        mode: ``"plate"``, ``"paint"`` (painted on the wall), ``"fixed"`` (separate digits
            fixed to the wall, with a shadow) or ``"flat"`` (clean renders).
        glyphs: ink masks placed left to right (outline included).
        cores: the masks without outline (equal to the glyph masks when there is none).
        outline: whether the digits have an outline in a second colour.
        hulls: per digit, ``(K, 2)`` float32 convex hull of its ink (number coordinates).
        ink_box: xyxy union of the digits' ink.
        plate: xyxy plate rectangle (the ink box when there is no plate).
        suffix: every character drawn that is not one of the digits: letters after the number
            ("11B", "42bis"), words before it ("No.", "Apt", "B-") and lines of text above or
            below it (names, streets, signs); drawn but not labelled, as in SVHN.
        suffix_cores: their masks without outline.
        text_hulls: per such character, ``(K, 2)`` float32 convex hull of its ink.
    """

    digits: np.ndarray
    gh: int
    style: glyphs.GlyphStyle
    mode: str
    glyphs: list[_Glyph]
    cores: list[np.ndarray]
    outline: bool
    hulls: list[np.ndarray]
    ink_box: np.ndarray
    plate: np.ndarray
    suffix: list[_Glyph] = field(default_factory=list)
    suffix_cores: list[np.ndarray] = field(default_factory=list)
    text_hulls: list[np.ndarray] = field(default_factory=list)

    @property
    def glyph_name(self) -> str:
        return self.style.source if self.style.source != "font" else self.style.font.rsplit("/", 1)[-1]


def _text_glyphs(rng: np.random.Generator, style: glyphs.GlyphStyle, text: str, height: int,
                 with_outline: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> tuple[list[_Glyph], list[np.ndarray], float]:
    """Lay out ``text`` from x = 0 on a common baseline at y = ``height``.

    Returns ``(glyphs, cores, right edge)``; characters the font lacks are left out.
    """
    out: list[_Glyph] = []
    cores: list[np.ndarray] = []
    x = 0.0
    track = height * rng.uniform(0.0, 0.12)
    for ch in text:
        if ch == " ":
            x += height * rng.uniform(0.3, 0.5)
            continue
        small = ch.islower() or ch in ".-':,"
        h = int(max(6, round(height * (rng.uniform(0.62, 0.75) if small and ch not in "bdfhklt" else 1.0))))
        try:
            m = glyphs.render_glyph(style, ch, h, rng)
        except (ValueError, KeyError, cv2.error):
            continue
        if m.max() < 0.5 or m.shape[0] < 2:  # the font has no such character
            continue
        core, ink = with_outline(m)
        ih, iw = ink.shape
        y = height - ih + (height * 0.22 if ch in "gjpqy" else 0.0) - (height * 0.55 if ch in "'-" else 0.0)
        out.append(_Glyph(ink, int(round(x)), int(round(y)), ch))
        cores.append(core)
        x += iw - 1 + track
    return out, cores, x


def _plan_text(rng: np.random.Generator, style: glyphs.GlyphStyle, fonts: Sequence[Sequence[str]], U: np.ndarray, gh: int,
               suffix_prob: float, text_prob: float,
               with_outline: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> list[tuple[_Glyph, np.ndarray]]:
    """Unlabelled text around a number whose digits' ink box is ``U``.

    With odds ``suffix_prob`` (+ a third of ``text_prob``) letters follow the number ("12A");
    with a third of ``text_prob`` a word or block letter precedes it ("No. 5", "B-7"); with 0.6
    of ``text_prob`` one or two lines of text (a family name, a street, a sign) sit above or
    below it. Text is in the number's style when that style has letters, or in another font.
    """
    # One draw only when text_prob is 0, as before text was added, so callers that draw no text
    # (the demo's street) keep their images; a number that gets letters is drawn differently.
    suffix = rng.random() < suffix_prob + text_prob / 3 and (text_prob > 0 or style.can_draw_letters)
    picks = {
        "suffix": suffix,
        "prefix": text_prob > 0 and rng.random() < text_prob / 3,
        "lines": text_prob > 0 and rng.random() < 0.6 * text_prob,
    }
    if not any(picks.values()):
        return []
    if style.can_draw_letters and rng.random() < 0.7:
        tstyle = style
    else:
        tstyle = glyphs.make_style(rng, fonts, (0.85, 0.15, 0.0, 0.0))
    out: list[tuple[_Glyph, np.ndarray]] = []

    def place(laid: list[_Glyph], cores: list[np.ndarray], dx: float, dy: float) -> None:
        for g, c in zip(laid, cores):
            out.append((_Glyph(g.mask, int(round(g.x + dx)), int(round(g.y + dy)), g.char), c))

    if picks["suffix"]:
        h = int(gh * (rng.uniform(0.5, 0.8) if rng.random() < 0.3 else 1.0))
        laid, cores, _ = _text_glyphs(rng, tstyle, words.suffix(rng), h, with_outline)
        place(laid, cores, U[2] + gh * rng.uniform(0.03, 0.3), U[3] - h)
    if picks["prefix"]:
        h = int(gh * rng.uniform(0.45, 1.0))
        laid, cores, right = _text_glyphs(rng, tstyle, words.prefix(rng), h, with_outline)
        place(laid, cores, U[0] - gh * rng.uniform(0.1, 0.45) - right, U[3] - h)
    if picks["lines"]:
        above = rng.random() < 0.5
        y_edge = U[1] if above else U[3]
        for _ in range(1 if rng.random() < 0.7 else 2):
            h = int(gh * rng.uniform(0.3, 0.9))
            laid, cores, right = _text_glyphs(rng, tstyle, words.sign_text(rng), h, with_outline)
            if not laid:
                continue
            gap = gh * rng.uniform(0.12, 0.45)
            align = rng.random()
            x0 = U[0] if align < 0.4 else ((U[0] + U[2]) / 2 - right / 2 if align < 0.8 else U[2] - right)
            top = y_edge - gap - h if above else y_edge + gap
            place(laid, cores, x0, top)
            y_edge = top if above else top + h
    return out


def plan_number(
    rng: np.random.Generator,
    digits: Sequence[int] | np.ndarray,
    gh: int,
    fonts: Sequence[Sequence[str]],
    *,
    source_weights: Sequence[float] = DEFAULT_SOURCE_WEIGHTS,
    clean: bool = False,
    mode: str | None = None,
    mode_weights: Sequence[float] = (0.6, 0.22, 0.18),
    suffix_prob: float = 0.04,
    text_prob: float = 0.0,
) -> NumberPlan:
    """Choose a style and lay out ``digits`` at ``gh`` px tall (see :class:`NumberPlan`).

    Args:
        mode: force ``"plate"``, ``"paint"`` or ``"fixed"`` (default: drawn by ``mode_weights``).
        suffix_prob: odds of letters after the number.
        text_prob: odds of text around the number (see :func:`_plan_text`).
    """
    digits_arr = np.asarray(digits, np.int64).reshape(-1)
    style = glyphs.make_style(rng, fonts, source_weights)
    masks = [glyphs.render_glyph(style, int(d), gh, rng) for d in digits_arr]
    # How the digits are drawn: on a plate, painted on the wall, or fixed to it (with shadow).
    if clean:
        mode = "flat"
    elif mode is None:
        w = np.asarray(mode_weights, np.float64)
        mode = str(rng.choice(["plate", "paint", "fixed"], p=w / w.sum()))
    outline = (not clean) and rng.random() < 0.1
    k = max(3, int(gh * rng.uniform(0.06, 0.12)) | 1) if outline else 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)) if outline else None

    def with_outline(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The outline is part of the character as seen, so the box covers it.
        if not outline:
            return m, m
        core = np.pad(m, k)
        return core, cv2.dilate(core, kernel)

    cores, ink_masks = (list(t) for t in zip(*(with_outline(m) for m in masks)))
    laid = _layout(rng, ink_masks, gh, wobbly=style.source == "stroke" or mode == "paint")
    hulls = [hull_points(g.mask) + np.array([g.x, g.y], np.float32) for g in laid]
    ink_boxes = np.array([[h[:, 0].min(), h[:, 1].min(), h[:, 0].max() + 1, h[:, 1].max() + 1] for h in hulls])
    U = _union(ink_boxes)
    suffix: list[_Glyph] = []
    suffix_cores: list[np.ndarray] = []
    text_hulls: list[np.ndarray] = []
    if not clean:
        for glyph, core in _plan_text(rng, style, fonts, U, gh, suffix_prob, text_prob, with_outline):
            suffix.append(glyph)
            suffix_cores.append(core)
            text_hulls.append(hull_points(glyph.mask) + np.array([glyph.x, glyph.y], np.float32))
    span = U.copy()
    for g in suffix:
        span[0] = min(span[0], g.x)
        span[1] = min(span[1], g.y)
        span[2] = max(span[2], g.x + g.mask.shape[1])
        span[3] = max(span[3], g.y + g.mask.shape[0])
    if mode == "plate":
        mx = gh * (rng.uniform(0.12, 0.6) if rng.random() < 0.8 else rng.uniform(0.6, 1.2))
        my = gh * rng.uniform(0.08, 0.4)
        plate = np.array([span[0] - mx, span[1] - my, span[2] + mx, span[3] + my])
    else:
        plate = span
    return NumberPlan(digits_arr, gh, style, mode, laid, cores, outline, hulls, U, plate, suffix, suffix_cores, text_hulls)


def paint_sign(rng: np.random.Generator, canvas: np.ndarray, fonts: Sequence[Sequence[str]], x: float, y: float,
               height: float, text: str | None = None) -> np.ndarray:
    """Paint a line of text (a sign, a name, a word on a wall) into ``canvas`` at ``(x, y)`` (top-left).

    ``canvas`` is float32 BGR in [0, 1], changed in place; the text is ``words.sign_text`` when
    not given, in a random font, on a plate half the time. Nothing painted here is a digit
    (digits in ``text`` are dropped).

    Returns:
        ``(M, 4)`` float32 xyxy boxes of the characters painted (canvas pixels, maybe partly outside).
    """
    text = "".join(c for c in (text if text is not None else words.sign_text(rng)) if not c.isdigit())
    style = glyphs.make_style(rng, fonts, (0.85, 0.15, 0.0, 0.0))
    laid, cores, right = _text_glyphs(rng, style, text, int(max(height, 6)), lambda m: (m, m))
    if not laid:
        return np.zeros((0, 4), np.float32)
    h = int(max(height, 6))
    H, W = canvas.shape[:2]
    bg = canvas[int(np.clip(y + h / 2, 0, H - 1)), int(np.clip(x + right / 2, 0, W - 1))]
    if rng.random() < 0.5:
        plate_name, plate_col, col = plate_colors(rng)
        m = h * rng.uniform(0.15, 0.5)
        rect = np.array([x - m, y - m, x + right + m, y + h + m])
        draw_plate(rng, canvas, rect, plate_col, col, h)
    else:
        col = random_contrasting(rng, bg, 0.3)
    boxes = []
    for g, core in zip(laid, cores):
        blend_mask(canvas, core, int(round(x + g.x)), int(round(y + g.y)), col)
        hull = hull_points(g.mask)
        boxes.append([x + g.x + hull[:, 0].min(), y + g.y + hull[:, 1].min(), x + g.x + hull[:, 0].max() + 1,
                      y + g.y + hull[:, 1].max() + 1])
    return np.asarray(boxes, np.float32)


def paint_number(rng: np.random.Generator, canvas: np.ndarray, plan: NumberPlan, ox: int, oy: int) -> dict[str, str]:
    """Paint the plate (if any) and the digits of ``plan`` into ``canvas`` (float32 BGR, in place).

    Number coordinates ``(x, y)`` land on canvas pixel ``(x - ox, y - oy)``.

    Returns:
        ``{"plate": scheme name}`` for plates, else ``{}``.
    """
    info: dict[str, str] = {}
    U = plan.ink_box
    if plan.mode == "plate":
        plate_name, plate_col, digit_col = plate_colors(rng)
        info["plate"] = plate_name
        draw_plate(rng, canvas, plan.plate - [ox, oy, ox, oy], plate_col, digit_col, plan.gh)
    elif plan.mode == "flat":
        digit_col = random_contrasting(rng, canvas[0, 0], 0.4)
    else:
        ch, cw = canvas.shape[:2]
        px1, py1 = int(min(max(U[0] - ox, 0), cw - 1)), int(min(max(U[1] - oy, 0), ch - 1))
        px2, py2 = int(min(U[2] - ox, cw)), int(min(U[3] - oy, ch))
        digit_col = _paint_color(rng, canvas[py1:max(py2, py1 + 1), px1:max(px2, px1 + 1)])
    _draw_digits(rng, canvas, plan.glyphs + plan.suffix, plan.cores + plan.suffix_cores, digit_col, plan.outline,
                 plan.mode, plan.gh, ox, oy)
    return info


def draw_plate(rng: np.random.Generator, canvas: np.ndarray, rect: np.ndarray, plate_col: np.ndarray,
                digit_col: np.ndarray, gh: int) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in rect)
    w, h = x2 - x1, y2 - y1
    if w < 3 or h < 3:
        return
    shape = str(rng.choice(["rect", "rounded", "oval", "chamfer"], p=[0.4, 0.38, 0.1, 0.12]))
    if shape == "oval":  # an oval needs room for the digits inside
        grow = 0.2
        x1, x2 = int(x1 - w * grow / 2), int(x2 + w * grow / 2)
        y1, y2 = int(y1 - h * grow / 2), int(y2 + h * grow / 2)
        w, h = x2 - x1, y2 - y1
    mask = shape_mask(shape, w, h, min(w, h) * rng.uniform(0.08, 0.35))
    # Relief: a darker, blurred copy offset down-right is the plate's edge and shadow.
    if rng.random() < 0.6:
        off = max(1, int(gh * rng.uniform(0.02, 0.1)))
        sh = cv2.GaussianBlur(np.pad(mask, off + 2), (0, 0), max(0.5, off * 0.6))
        blend_mask(canvas, sh, x1 - 2, y1 - 2, np.zeros(3, np.float32), rng.uniform(0.3, 0.7))
    # Body: flat enamel or metal with a sheen and a little noise.
    body = np.empty((h, w, 3), np.float32)
    body[:] = plate_col
    gy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    body *= 1.0 + rng.uniform(-0.2, 0.2) * gy
    body += (textures.value_noise(rng, h, w, max(2.0, gh * 0.3)) * rng.uniform(0, 0.08))[:, :, None]
    blend_mask(canvas, mask, x1, y1, np.clip(body, 0, 1))
    # Frame: a thick outer rim and/or a thin inner border in the digit colour.
    if rng.random() < 0.25:
        t = max(1, int(gh * rng.uniform(0.04, 0.12)))
        rim_col = _jitter_color(rng, np.full(3, rng.choice([0.15, 0.75]), np.float32))
        inner = shape_mask(shape, max(w - 2 * t, 2), max(h - 2 * t, 2), min(w, h) * 0.15)
        ring = mask.copy()
        ring[t : t + inner.shape[0], t : t + inner.shape[1]] *= 1 - inner
        blend_mask(canvas, ring, x1, y1, rim_col)
    if rng.random() < 0.4:
        t = max(1, int(gh * rng.uniform(0.02, 0.06)))
        ins = max(t + 1, int(min(w, h) * rng.uniform(0.05, 0.12)))
        outer = shape_mask(shape, max(w - 2 * ins, 3), max(h - 2 * ins, 3), min(w, h) * 0.15)
        inner = np.zeros_like(outer)
        ih, iw = outer.shape[0] - 2 * t, outer.shape[1] - 2 * t
        if ih > 1 and iw > 1:
            inner[t : t + ih, t : t + iw] = shape_mask(shape, iw, ih, min(w, h) * 0.12)
        blend_mask(canvas, np.clip(outer - inner, 0, 1), x1 + ins, y1 + ins, digit_col)
    if rng.random() < 0.2:  # screws
        r = max(1, int(gh * 0.04))
        for sx, sy in ((x1 + 2 * r + 1, (y1 + y2) // 2), (x2 - 2 * r - 1, (y1 + y2) // 2)):
            cv2.circle(canvas, (sx, sy), r, tuple(float(v) for v in plate_col * 0.5), -1, cv2.LINE_AA)


def _draw_digits(rng: np.random.Generator, canvas: np.ndarray, laid: list[_Glyph], cores: list[np.ndarray],
                 color: np.ndarray, outline: bool, mode: str, gh: int, ox: int, oy: int) -> None:
    outline_col = random_contrasting(rng, color, 0.4) if outline else None
    shadow = mode == "fixed" or (mode == "plate" and rng.random() < 0.15)
    metallic = mode == "fixed" and rng.random() < 0.5
    for g, core in zip(laid, cores):
        x, y = g.x - ox, g.y - oy
        if shadow:
            off = max(1, int(gh * rng.uniform(0.02, 0.08)))
            sh = cv2.GaussianBlur(np.pad(g.mask, 2), (0, 0), max(0.5, off * 0.7))
            blend_mask(canvas, sh, x + off - 2, y + off - 2, np.zeros(3, np.float32), rng.uniform(0.3, 0.6))
        if outline:
            blend_mask(canvas, g.mask, x, y, outline_col)
        h, w = core.shape
        if metallic or mode == "paint":
            fill = np.empty((h, w, 3), np.float32)
            fill[:] = color
            if metallic:  # a vertical sheen across the glyph
                fill *= (1.0 + 0.35 * np.cos(np.linspace(0, rng.uniform(2, 5), h, dtype=np.float32)))[:, None, None]
            else:  # paint lets the wall texture through
                fill *= (1.0 + 0.25 * textures.value_noise(rng, h, w, max(2.0, gh * 0.15)))[:, :, None]
            alpha = 1.0 if metallic else rng.uniform(0.75, 1.0)
            blend_mask(canvas, core, x, y, np.clip(fill, 0, 1), alpha)
        else:
            blend_mask(canvas, core, x, y, color)
