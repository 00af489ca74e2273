"""One synthetic house-number image, framed like SVHN's full-format images.

The number is laid out and drawn (:mod:`recognizer.synth.painting`) on a flat "wall plane"
canvas (texture, clutter, plate, digits, light), then one perspective warp maps a randomly
rotated and skewed quadrilateral around the number straight to the output image. Digit boxes
come from the convex hull of each glyph's ink pushed through the same warp, so they stay tight
on the drawn digits whatever the geometry. Camera effects (blur, low resolution, noise, JPEG)
come last.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from recognizer.synth import degrade, glyphs, textures
from recognizer.synth.painting import DEFAULT_SOURCE_WEIGHTS, blend_mask, hull_points, paint_number, plan_number, random_contrasting

# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator (defaults aim at SVHN's look).

    Attributes:
        digit_count_weights: relative odds of 1, 2, 3, 4 and 5 digits.
        height_median: median output height in px (SVHN train: about 47).
        height_range: output heights are clipped to this range (px).
        frame_height: ``(a, b)``: the median of image height / digit height is ``a + b * n`` for
            an ``n``-digit number (SVHN train: 1.39, 1.5, 1.7, 1.8 for 1-4 digits).
        frame_aspect: ``(a, b)``: the median of image width / height is ``a + b * n`` (SVHN
            train: 2.02, 2.19, 2.41, 2.82 for 1-4 digits).
        source_weights: odds of font, Hershey, seven-segment and stroke glyphs.
        geometry: scale of rotation and perspective (0 = frontal, 1 = default).
        clean: flat background, flat colours, no plate, clutter, neighbours, light or camera
            effects; geometry is kept. For tests of the boxes.
        camera_strength: scale of the camera degradations (0 = none).
        text_prob: odds of unlabelled text around the number (words before and after it, a
            name or street line above or below it; see ``painting._plan_text``).
    """

    digit_count_weights: tuple[float, ...] = (0.18, 0.36, 0.28, 0.13, 0.05)
    height_median: float = 50.0
    height_range: tuple[int, int] = (24, 250)
    frame_height: tuple[float, float] = (1.3, 0.12)
    frame_aspect: tuple[float, float] = (1.8, 0.22)
    source_weights: tuple[float, float, float, float] = DEFAULT_SOURCE_WEIGHTS
    geometry: float = 1.0
    clean: bool = False
    camera_strength: float = 1.0
    text_prob: float = 0.35


@dataclass(frozen=True)
class SynthSample:
    """One rendered house number.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR.
        boxes: ``(N, 4)`` float32 xyxy pixel boxes of the digits, left to right; a box covers
            pixel columns ``x1 .. x2 - 1`` (``x2`` exclusive), like SVHN's left/width.
        digits: ``(N,)`` int64 digits 0..9.
        info: what was drawn (glyph source, font, plate, wall), for sheets and debugging.
        text_boxes: ``(M, 4)`` float32 xyxy boxes of the unlabelled characters drawn around the
            number (letters, symbols) that lie inside the image: what is *not* a digit.
        text_chars: the character of each text box (``words.DIGIT_LIKE`` ones look like digits).
    """

    image: np.ndarray = field(repr=False)
    boxes: np.ndarray
    digits: np.ndarray
    info: dict[str, str] = field(default_factory=dict, compare=False)
    text_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32), compare=False)
    text_chars: tuple[str, ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        return "".join(str(int(d)) for d in self.digits)


# --------------------------------------------------------------------------- the renderer


def _sample_count(rng: np.random.Generator, cfg: SynthConfig) -> int:
    w = np.asarray(cfg.digit_count_weights, np.float64)
    return int(rng.choice(len(w), p=w / w.sum())) + 1


def _sample_digits(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.integers(0, 10, n)
    if n > 1 and d[0] == 0 and rng.random() < 0.95:  # house numbers rarely start with 0
        d[0] = rng.integers(1, 10)
    return d.astype(np.int64)


def render_sample(
    rng: np.random.Generator,
    fonts: Sequence[Sequence[str]],
    config: SynthConfig | None = None,
    *,
    digits: Sequence[int] | None = None,
) -> SynthSample:
    """Render one SVHN-like house-number image.

    Args:
        rng: the only source of randomness (same state -> same image).
        fonts: font families from :func:`glyphs.font_families` (may be empty).
        config: generator settings.
        digits: force these digits (default: random 1-5 digits).

    Returns:
        A :class:`SynthSample`.
    """
    cfg = config or SynthConfig()
    if digits is None:
        digits_arr = _sample_digits(rng, _sample_count(rng, cfg))
    else:
        digits_arr = np.asarray(list(digits), np.int64)
        if digits_arr.ndim != 1 or len(digits_arr) == 0 or digits_arr.min() < 0 or digits_arr.max() > 9:
            raise ValueError(f"digits {list(digits)!r} must be 1 or more values in 0..9")
    info: dict[str, str] = {}

    # Output size and the digit height on the canvas.
    lo, hi = cfg.height_range
    out_h = int(np.clip(np.exp(rng.normal(np.log(cfg.height_median), 0.5)), lo, hi))
    n = len(digits_arr)
    fill = 1.0 / float(np.clip(np.exp(rng.normal(np.log(cfg.frame_height[0] + cfg.frame_height[1] * n), 0.15)), 1.1, 3.0))
    gh = int(np.clip(fill * out_h * rng.uniform(1.0, 1.6), 16, 96))

    plan = plan_number(rng, digits_arr, gh, fonts, source_weights=cfg.source_weights, clean=cfg.clean,
                       text_prob=cfg.text_prob)
    style, mode, hulls, U, plate = plan.style, plan.mode, plan.hulls, plan.ink_box, plan.plate
    info["glyphs"] = plan.glyph_name
    info["mode"] = mode
    uw, uh = U[2] - U[0], U[3] - U[1]

    # Framing: the part of the canvas that becomes the output image (SVHN-like crop).
    crop_h = gh / fill
    aspect = float(np.exp(rng.normal(np.log(cfg.frame_aspect[0] + cfg.frame_aspect[1] * n), 0.12)))
    F = U
    if plan.text_hulls and rng.random() < 0.5:
        # Half the numbers with text around them are framed with their text in view.
        pts = np.vstack(plan.text_hulls)
        F = np.array([min(U[0], pts[:, 0].min()), min(U[1], pts[:, 1].min()),
                      max(U[2], pts[:, 0].max() + 1), max(U[3], pts[:, 1].max() + 1)])
        crop_h = max(crop_h, (F[3] - F[1]) + 0.2 * gh)
        uw, uh = F[2] - F[0], F[3] - F[1]
    crop_w = max(aspect * crop_h, uw + 0.15 * crop_h)
    cx = (F[0] + F[2]) / 2 + rng.normal(0, 0.25) * max(crop_w - uw, 0) / 2
    cy = (F[1] + F[3]) / 2 + rng.uniform(-0.5, 0.5) * max(crop_h - uh, 0) / 2
    out_w = int(round(out_h * crop_w / crop_h))
    quad = np.array([[-crop_w / 2, -crop_h / 2], [crop_w / 2, -crop_h / 2],
                     [crop_w / 2, crop_h / 2], [-crop_w / 2, crop_h / 2]], np.float64)
    g = cfg.geometry
    theta = np.radians(rng.normal(0, 4.0) if rng.random() < 0.85 else rng.uniform(-15, 15)) * g
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    quad = quad @ rot.T
    # Perspective: one side taller than the other (yaw) or top wider than bottom (pitch),
    # plus a little independent corner jitter.
    yaw, pitch = rng.normal(0, 0.08) * g, rng.normal(0, 0.05) * g
    quad[[1, 2], 1] *= 1 + yaw
    quad[[0, 3], 1] *= 1 - yaw
    quad[[0, 1], 0] *= 1 + pitch
    quad[[2, 3], 0] *= 1 - pitch
    quad += rng.normal(0, 0.025 * crop_h * g, quad.shape)
    # Zoom out (and re-centre) until every digit lies inside the image, as in SVHN.
    ucentre = np.array([(U[0] + U[2]) / 2, (U[1] + U[3]) / 2])
    ink = np.vstack(hulls).reshape(-1, 1, 2).astype(np.float64)
    quad, M = zoom_to_fit(quad, np.array([cx, cy]), ucentre, ink, (out_w, out_h), tries=10, grow=1.12)

    # The canvas covers the quad (and the plate, if it sticks out) plus a margin.
    margin = 4
    allpts = np.vstack([quad, plate.reshape(2, 2)])
    ox, oy = np.floor(allpts.min(0)) - margin
    cw, ch = (np.ceil(allpts.max(0)) + margin - np.array([ox, oy])).astype(int)
    ox, oy = int(ox), int(oy)

    # 1. Wall.
    if cfg.clean:
        wall_name = "flat"
        bg = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        canvas = np.empty((ch, cw, 3), np.float32)
        canvas[:] = bg
    else:
        wall_name, canvas = textures.random_wall(rng, ch, cw, gh)
        keep = (plate[0] - ox - gh * 0.2, plate[1] - oy - gh * 0.2, plate[2] - ox + gh * 0.2, plate[3] - oy + gh * 0.2)
        textures.add_clutter(rng, canvas, gh, keep)
    info["wall"] = wall_name

    # 2. Neighbouring characters cut off by the image edge (unlabelled, as in SVHN).
    if not cfg.clean and rng.random() < 0.35:
        _draw_neighbours(rng, canvas, style, gh, U, quad, M, ox, oy, out_w, out_h, mode)

    # 3. Plate and digits.
    info.update(paint_number(rng, canvas, plan, ox, oy))

    # 5. Light on the wall plane.
    if not cfg.clean:
        degrade.lighting(rng, canvas, gh)

    # 6. Warp to the output, pre-blurring when shrinking to limit aliasing.
    out = warp_view(canvas, M, (ox, oy), quad, (out_w, out_h), blur=0.45)

    # Boxes: hull points (number coordinates) through the same transform.
    boxes = hull_boxes(hulls, M)

    text_chars = np.array([g.char for g in plan.suffix], dtype=object)
    text_boxes = hull_boxes(plan.text_hulls, M)
    inside = (text_boxes[:, 0] >= 0) & (text_boxes[:, 1] >= 0) & (text_boxes[:, 2] <= out_w) & (text_boxes[:, 3] <= out_h)
    keep = inside & (text_boxes[:, 3] - text_boxes[:, 1] >= 4)
    text_boxes, text_chars = text_boxes[keep], tuple(str(c) for c in text_chars[keep])

    # 7. Camera.
    if not cfg.clean:
        digit_h = float(np.median(boxes[:, 3] - boxes[:, 1]))
        out = degrade.camera(rng, out, cfg.camera_strength, digit_h)
        out = keep_legible(rng, out, boxes)
    img = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if not cfg.clean:
        img = degrade.jpeg(rng, img)
    if len(plan.text_hulls):
        info["text"] = str(len(plan.text_hulls))
    return SynthSample(image=img, boxes=boxes, digits=digits_arr, info=info, text_boxes=text_boxes, text_chars=text_chars)


def zoom_to_fit(rel: np.ndarray, centre: np.ndarray, toward: np.ndarray, ink: np.ndarray, size: tuple[int, int], *,
                tries: int, grow: float, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The view ``rel + centre`` (a quad, canvas pixels) that shows all of ``ink``.

    The view is warped onto an output of ``size`` (width, height); while some ink point falls
    within ``margin`` px of the output's edge or outside it, the view grows by ``grow`` and its
    centre moves 30% of the way to ``toward``, at most ``tries`` times.

    Returns:
        ``(quad (4, 2), M (3, 3))``: the view's corners and the perspective matrix from the
        canvas to the output.
    """
    w, h = size
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    for _ in range(tries):
        quad = rel + centre
        M = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
        p = cv2.perspectiveTransform(ink, M).reshape(-1, 2)
        if p[:, 0].min() >= margin and p[:, 1].min() >= margin and p[:, 0].max() + 1 + margin <= w and p[:, 1].max() + 1 + margin <= h:
            break
        rel = rel * grow
        centre = 0.7 * centre + 0.3 * toward
    return quad, M


def warp_view(canvas: np.ndarray, M: np.ndarray, origin: tuple[int, int], quad: np.ndarray, size: tuple[int, int], *,
              blur: float) -> np.ndarray:
    """The view ``quad`` of ``canvas`` (whose top-left is ``origin`` in the coordinates of ``quad``
    and ``M``) warped onto an output of ``size`` (width, height), the canvas blurred by
    ``blur`` x the shrink factor first when the view shrinks more than 1.3x (thin strokes
    would alias away)."""
    ox, oy = origin
    Mc = M @ np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float64)
    shrink = float(np.linalg.norm(quad[3] - quad[0])) / size[1]
    if shrink > 1.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur * shrink)
    return cv2.warpPerspective(canvas, Mc, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def hull_boxes(hulls: Sequence[np.ndarray], M: np.ndarray) -> np.ndarray:
    """``(N, 4)`` float32 xyxy output boxes of ink hulls ``(K, 2)`` seen through the perspective ``M``."""
    boxes = np.zeros((len(hulls), 4), np.float32)
    for i, h in enumerate(hulls):
        p = cv2.perspectiveTransform(h.reshape(-1, 1, 2).astype(np.float64), M).reshape(-1, 2)
        boxes[i] = (p[:, 0].min(), p[:, 1].min(), p[:, 0].max() + 1, p[:, 1].max() + 1)
    return boxes


def keep_legible(rng: np.random.Generator, img: np.ndarray, boxes: np.ndarray, min_std: float = 12 / 255) -> np.ndarray:
    """Stretch the contrast of an image whose number came out nearly invisible.

    Haze, darkness and blur sometimes stack up to a number no one could read; SVHN has very few
    of those (grey-level std over the number: under 10 in 0.4% of the train images, 2% here
    without this step). Raise the std over the number's box to 12-16 grey levels instead.
    """
    x1, y1 = np.floor(boxes[:, :2].min(0)).astype(int)
    x2, y2 = np.ceil(boxes[:, 2:].max(0)).astype(int)
    region = img[max(y1, 0) : y2, max(x1, 0) : x2].mean(axis=2)
    std = float(region.std()) if region.size else 0.0
    if std >= min_std or std <= 1e-4:
        return img
    gain = min(min_std * rng.uniform(1.0, 1.35) / std, 4.0)
    mean = float(region.mean())
    return np.clip(mean + (img - mean) * gain, 0.0, 1.0)


def _draw_neighbours(rng: np.random.Generator, canvas: np.ndarray, style: glyphs.GlyphStyle, gh: int, U: np.ndarray,
                     quad: np.ndarray, M: np.ndarray, ox: int, oy: int, out_w: int, out_h: int, mode: str) -> None:
    """Characters of a neighbouring sign or number, placed across the left or right image edge.

    Each is drawn only if at most 65% of its box ends up inside the image, so no unlabelled
    but fully visible digit is added.
    """
    left = rng.random() < 0.5
    edge = quad[[0, 3]] if left else quad[[1, 2]]
    ex = float(edge[:, 0].mean())
    chars: list[str] = [str(int(rng.integers(0, 10)))]
    if style.can_draw_letters and rng.random() < 0.4:
        chars = [str(rng.choice(list("ABCDEFGHKLMNPRSTabcdeh")))]
    col = random_contrasting(rng, canvas[canvas.shape[0] // 2, 0 if left else -1], 0.3)
    for ch in chars:
        try:
            m = glyphs.render_glyph(style, ch if not ch.isdigit() else int(ch), int(gh * rng.uniform(0.7, 1.2)), rng)
        except (ValueError, KeyError):
            return
        if m.max() < 0.5:  # the font has no such letter
            continue
        h, w = m.shape
        frac = rng.uniform(0.35, 0.75)  # part of the glyph outside the image
        x = ex - w * frac if not left else ex - w * (1 - frac)
        y = (U[1] + U[3]) / 2 - h / 2 + rng.normal(0, 0.3 * gh)
        hull = hull_points(m) + np.array([x, y], np.float32)
        p = cv2.perspectiveTransform(hull.reshape(-1, 1, 2).astype(np.float64), M).reshape(-1, 2)
        bx1, by1, bx2, by2 = p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()
        area = max((bx2 - bx1) * (by2 - by1), 1e-6)
        ix = max(0.0, min(bx2, out_w) - max(bx1, 0)) * max(0.0, min(by2, out_h) - max(by1, 0))
        if ix / area > 0.65:
            continue
        blend_mask(canvas, m, int(round(x - ox)), int(round(y - oy)), col)
