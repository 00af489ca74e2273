"""Procedural wall and plate textures (numpy + OpenCV only).

Every function takes a random generator, a size and a ``unit`` (the digit height in pixels of
the canvas, so bricks and planks keep a plausible size next to the digits) and returns a
``(h, w, 3)`` float32 BGR image in [0, 1].
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Texture = Callable[[np.random.Generator, int, int, float], np.ndarray]


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise: a random grid of ``cell`` px spacing, upsampled bicubically.

    Returns:
        ``(h, w)`` float32, roughly zero mean and unit range.
    """
    cell = max(cell, 1.0)
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.random((gh, gw), dtype=np.float32) - 0.5
    big = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    return big[:h, :w]


def fractal_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Sum of :func:`value_noise` octaves, each half the cell size and half the amplitude."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for _ in range(octaves):
        out += amp * value_noise(rng, h, w, cell)
        cell /= 2.0
        amp /= 2.0
    return out


def _tint(gray: np.ndarray, color: np.ndarray) -> np.ndarray:
    """``(h, w)`` shading around 1.0 times a BGR colour -> ``(h, w, 3)``."""
    return np.clip(gray[:, :, None] * color[None, None, :].astype(np.float32), 0.0, 1.0)


def random_wall_color(rng: np.random.Generator) -> np.ndarray:
    """A plausible facade colour (BGR, 0..1): whites, greys, beiges, ochres, pastels, dark."""
    kind = rng.random()
    if kind < 0.35:  # off-white / grey
        v = rng.uniform(0.45, 0.95)
        c = np.array([v, v, v]) + rng.normal(0, 0.03, 3)
    elif kind < 0.6:  # beige / sand / ochre (BGR: blue lowest)
        v = rng.uniform(0.45, 0.9)
        c = np.array([v * rng.uniform(0.6, 0.85), v * rng.uniform(0.8, 0.95), v])
    elif kind < 0.82:  # dark: brown, charcoal
        v = rng.uniform(0.12, 0.4)
        c = np.array([v * rng.uniform(0.6, 1.0), v * rng.uniform(0.7, 1.0), v])
    else:  # pastel or saturated paint
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(20, 130), rng.integers(90, 230)]]])
        c = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0] / 255.0
    return np.clip(c, 0, 1).astype(np.float32)


def plain(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Painted plaster: a flat colour with faint low-frequency blotches."""
    base = random_wall_color(rng)
    shade = 1.0 + rng.uniform(0.02, 0.12) * fractal_noise(rng, h, w, unit * rng.uniform(1, 4), 2)
    return _tint(shade, base)


def stucco(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Rough render: coarse and fine grain."""
    base = random_wall_color(rng)
    g = fractal_noise(rng, h, w, unit * rng.uniform(0.5, 2), 2) * rng.uniform(0.05, 0.2)
    g += (rng.random((h, w), dtype=np.float32) - 0.5) * rng.uniform(0.05, 0.25)
    g = cv2.GaussianBlur(g, (0, 0), rng.uniform(0.4, 1.2))
    return _tint(1.0 + g, base)


def noise(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Colourful fractal noise (foliage, dirt, clutter)."""
    out = np.empty((h, w, 3), np.float32)
    base = random_wall_color(rng)
    amp = rng.uniform(0.06, 0.25)
    cell = unit * rng.uniform(0.2, 1.5)
    common = fractal_noise(rng, h, w, cell, 3)
    for c in range(3):
        out[:, :, c] = base[c] + amp * (common + 0.4 * fractal_noise(rng, h, w, cell, 2))
    return np.clip(out, 0, 1)


def brick(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Running-bond brickwork with mortar joints and per-brick colour."""
    bh = max(3.0, unit * rng.uniform(0.25, 0.6))
    bw = bh * rng.uniform(2.0, 3.2)
    joint = max(1.0, bh * rng.uniform(0.08, 0.2))
    if rng.random() < 0.7:  # red/brown bricks (BGR)
        base = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.15, 0.35), rng.uniform(0.4, 0.75)])
    else:  # yellow, grey or dark bricks
        v = rng.uniform(0.3, 0.8)
        base = np.array([v * rng.uniform(0.55, 0.9), v * rng.uniform(0.75, 0.95), v])
    mortar = np.full(3, rng.uniform(0.3, 0.85)) * np.array([0.9, 0.97, 1.0])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    row = np.floor(ys / bh)
    offset = (row % 2) * bw * 0.5 + rng.uniform(0, bw)
    col = np.floor((xs + offset) / bw)
    in_joint = ((ys % bh) < joint) | (((xs + offset) % bw) < joint)
    # A per-brick random value without a loop: hash row and column.
    key = (row * 7919 + col * 104729 + rng.integers(1, 10_000)).astype(np.int64)
    jitter = ((key * 2654435761) % 1000).astype(np.float32) / 1000.0 - 0.5
    shade = 1.0 + jitter * rng.uniform(0.15, 0.45) + 0.1 * fractal_noise(rng, h, w, bh * 0.7, 2)
    out = _tint(shade, base.astype(np.float32))
    out[in_joint] = np.clip(mortar * (1 + 0.1 * (rng.random(3) - 0.5)), 0, 1)
    return out


def wood(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Planks with grain, horizontal or vertical, painted or natural."""
    vertical = rng.random() < 0.5
    H, W = (w, h) if vertical else (h, w)
    pw = max(4.0, unit * rng.uniform(0.6, 1.6))
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    warp = 6.0 * fractal_noise(rng, H, W, unit * 2, 2)
    grain = np.sin((ys + warp * pw * 0.3) * (2 * np.pi / max(pw * rng.uniform(0.08, 0.25), 1.5)))
    seam = (ys % pw) < max(1.0, pw * 0.06)
    natural = rng.random() < 0.5
    if natural:
        base = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.25, 0.45), rng.uniform(0.4, 0.7)], np.float32)
        shade = 1.0 + 0.15 * grain + 0.1 * fractal_noise(rng, H, W, pw, 2)
    else:
        base = random_wall_color(rng)
        shade = 1.0 + 0.04 * grain + 0.05 * fractal_noise(rng, H, W, pw, 2)
    shade = np.where(seam, shade * 0.55, shade)
    out = _tint(shade.astype(np.float32), base)
    return np.ascontiguousarray(out.transpose(1, 0, 2)) if vertical else out


def metal(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Brushed or corrugated sheet metal with a soft sheen."""
    v = rng.uniform(0.35, 0.85)
    base = np.array([v, v, v * rng.uniform(0.9, 1.05)], np.float32)
    streak = rng.random((h, w), dtype=np.float32) - 0.5
    k = max(3, int(unit * 0.8)) | 1
    streak = cv2.blur(streak, (k, 1)) * 0.5
    xs = np.arange(w, dtype=np.float32)[None, :]
    sheen = 0.2 * np.cos((xs / max(w, 1)) * np.pi * rng.uniform(0.5, 2) + rng.uniform(0, 6))
    shade = 1.0 + streak + sheen
    if rng.random() < 0.4:  # corrugation
        period = max(3.0, unit * rng.uniform(0.2, 0.5))
        shade = shade + 0.15 * np.sin(xs * 2 * np.pi / period)
    return _tint(np.broadcast_to(shade, (h, w)).astype(np.float32), base)


def siding(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Horizontal clapboards: bands with a dark shadow line under each board."""
    base = random_wall_color(rng)
    bh = max(3.0, unit * rng.uniform(0.3, 0.8))
    ys = np.arange(h, dtype=np.float32)[:, None]
    t = (ys % bh) / bh
    shade = 0.85 + 0.2 * t - 0.35 * (t > 0.9)
    shade = np.broadcast_to(shade, (h, w)) + 0.04 * fractal_noise(rng, h, w, unit, 2)
    return _tint(shade.astype(np.float32), base)


def stone(rng: np.random.Generator, h: int, w: int, unit: float) -> np.ndarray:
    """Irregular stone blocks or tiles: a Voronoi-like pattern from random seeds."""
    base = random_wall_color(rng)
    size = max(4.0, unit * rng.uniform(0.5, 1.2))
    n = max(4, int(h * w / (size * size)))
    n = min(n, 400)
    pts = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], 1).astype(np.float32)
    small = 4.0 if max(h, w) > 200 else 2.0  # compute on a coarse grid, then upsample
    hh, ww = max(2, int(h / small)), max(2, int(w / small))
    gy, gx = np.mgrid[0:hh, 0:ww].astype(np.float32) * small
    d = (gx[..., None] - pts[:, 0]) ** 2 + (gy[..., None] - pts[:, 1]) ** 2
    part = np.partition(d, 1, axis=2)
    edge = np.sqrt(part[..., 1]) - np.sqrt(part[..., 0])
    idx = np.argmin(d, axis=2)
    tone = rng.uniform(-0.15, 0.15, n).astype(np.float32)[idx]
    shade = 1.0 + tone - 0.45 * (edge < size * 0.12)
    shade = cv2.resize(shade.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    shade += 0.06 * fractal_noise(rng, h, w, size * 0.4, 2)
    return _tint(shade, base)


WALL_TEXTURES: dict[str, Texture] = {
    "plain": plain,
    "stucco": stucco,
    "brick": brick,
    "wood": wood,
    "metal": metal,
    "siding": siding,
    "stone": stone,
    "noise": noise,
}
WALL_WEIGHTS: dict[str, float] = {
    "plain": 0.22, "stucco": 0.2, "brick": 0.18, "wood": 0.1, "metal": 0.07,
    "siding": 0.08, "stone": 0.07, "noise": 0.08,
}


def random_wall(rng: np.random.Generator, h: int, w: int, unit: float) -> tuple[str, np.ndarray]:
    """Pick a texture by :data:`WALL_WEIGHTS` and draw it.

    Returns:
        ``(name, (h, w, 3) float32 BGR image in [0, 1])``.
    """
    names = list(WALL_WEIGHTS)
    p = np.array([WALL_WEIGHTS[n] for n in names])
    name = names[int(rng.choice(len(names), p=p / p.sum()))]
    return name, WALL_TEXTURES[name](rng, h, w, unit)


def add_clutter(rng: np.random.Generator, img: np.ndarray, unit: float, keep_out: tuple[float, float, float, float]) -> None:
    """Draw facade features in place: window and door edges, pipes, cables, dark gaps.

    Args:
        img: ``(h, w, 3)`` float32 canvas, modified in place.
        unit: digit height in px.
        keep_out: xyxy region (the number and its plate) that clutter must not cover.
    """
    h, w = img.shape[:2]
    kx1, ky1, kx2, ky2 = keep_out
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.random()
        color = tuple(float(c) for c in np.clip(rng.random(3) * rng.uniform(0.1, 1.0), 0, 1))
        if kind < 0.4:  # a big rectangle (window, door, shutter, neighbouring wall) beside the number
            side = rng.random() < 0.5
            if side:
                x1 = rng.uniform(kx2 + unit * 0.3, kx2 + unit * 3)
                x2 = w + 10
            else:
                x2 = rng.uniform(kx1 - unit * 3, kx1 - unit * 0.3)
                x1 = -10
            y1 = rng.uniform(-h * 0.2, h * 0.5)
            y2 = rng.uniform(h * 0.5, h * 1.2)
            fill = np.array(color, np.float32)
            x1i, x2i = int(max(0, x1)), int(min(w, x2))
            y1i, y2i = int(max(0, y1)), int(min(h, y2))
            if x2i > x1i and y2i > y1i:
                patch = img[y1i:y2i, x1i:x2i]
                a = rng.uniform(0.6, 1.0)
                patch[:] = patch * (1 - a) + fill * a
                if rng.random() < 0.5:  # frame line
                    t = max(1, int(unit * rng.uniform(0.05, 0.2)))
                    cv2.rectangle(img, (x1i, y1i), (x2i, y2i), tuple(c * 0.5 for c in color), t)
        elif kind < 0.7:  # pipe / post: a vertical band with round shading
            x = rng.uniform(0, w)
            if kx1 - unit < x < kx2 + unit:
                continue
            bw = max(2, int(unit * rng.uniform(0.1, 0.6)))
            x1i, x2i = int(max(0, x - bw / 2)), int(min(w, x + bw / 2))
            if x2i > x1i:
                prof = np.cos(np.linspace(-1.2, 1.2, x2i - x1i, dtype=np.float32))[None, :, None]
                img[:, x1i:x2i] = np.array(color, np.float32) * (0.5 + 0.6 * prof)
        else:  # cable or edge line across
            y = rng.uniform(0, h)
            if ky1 - unit * 0.3 < y < ky2 + unit * 0.3:
                continue
            t = max(1, int(unit * rng.uniform(0.03, 0.12)))
            p1 = ((-5), int(y))
            p2 = (int(w + 5), int(y + rng.uniform(-0.3, 0.3) * h))
            cv2.line(img, p1, p2, color, t, cv2.LINE_AA)
