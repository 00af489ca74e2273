"""Photometric degradations that make clean renders look like Street View crops.

All functions work on ``(h, w, 3)`` float32 BGR images in [0, 1] and take a random generator.
"""
from __future__ import annotations

import cv2
import numpy as np


def lighting(rng: np.random.Generator, img: np.ndarray, unit: float) -> np.ndarray:
    """Uneven light on the wall plane: a linear gradient, maybe a soft cast shadow.

    Args:
        img: canvas, modified and returned.
        unit: digit height in px (sets the softness of shadow edges).
    """
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    g = (np.cos(ang) * xs + np.sin(ang) * ys) / max(h, w)
    g -= g.mean()
    gain = 1.0 + rng.uniform(0.0, 0.6) * g
    if rng.random() < 0.3:
        # A cast shadow: a half-plane in a random direction, soft edge, 30-65% light.
        a2 = rng.uniform(0, 2 * np.pi)
        d = (np.cos(a2) * (xs - rng.uniform(0, w)) + np.sin(a2) * (ys - rng.uniform(0, h)))
        soft = max(1.0, unit * rng.uniform(0.05, 0.6))
        mask = 1.0 / (1.0 + np.exp(-d / soft))
        gain *= 1.0 - rng.uniform(0.3, 0.65) * mask
    img *= gain[:, :, None]
    return img


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised line kernel ``length`` px long at ``angle_deg`` (for motion blur)."""
    n = max(3, int(np.ceil(length)) | 1)
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    half = (length - 1) / 2
    cv2.line(k, (int(round(c - dx * half)), int(round(c - dy * half))),
             (int(round(c + dx * half)), int(round(c + dy * half))), 1.0, 1, cv2.LINE_AA)
    s = k.sum()
    if s <= 0:
        k[c, c] = 1.0
        s = 1.0
    return k / s


def camera(rng: np.random.Generator, img: np.ndarray, strength: float = 1.0, digit_h: float | None = None) -> np.ndarray:
    """Street View-like capture: colour cast, low contrast, low resolution, blur, noise.

    Args:
        img: ``(h, w, 3)`` float32 BGR in [0, 1] (not modified).
        strength: 0 leaves the image alone, 1 is the default mix.
        digit_h: digit height in px; limits resolution loss and blur so digits stay legible
            (about 9 px of digit height survive the down-sampling, blur sigma <= 9% of it).

    Returns:
        a new float32 image, clipped to [0, 1].
    """
    if strength <= 0:
        return img.copy()
    h, w = img.shape[:2]
    digit_h = float(digit_h if digit_h is not None else 0.6 * h)
    out = img * (1.0 + rng.normal(0, 0.06 * strength, 3).astype(np.float32))
    # Haze / low contrast is the most common SVHN look.
    if rng.random() < 0.75:
        mean = out.mean(axis=(0, 1), keepdims=True)
        c = rng.uniform(1.0 - 0.5 * strength, 1.05)
        out = mean + (out - mean) * c + rng.uniform(-0.08, 0.08) * strength
    # Street View colours are washed out: desaturate most images.
    gray = out.mean(axis=2, keepdims=True)
    out = gray + (out - gray) * rng.uniform(0.25, 0.95)
    if rng.random() < 0.5:
        out = np.clip(out, 0, 1) ** rng.uniform(0.7, 1.4)
    # Low resolution: the scene was small in the original photo and was upsampled.
    if rng.random() < 0.55 * strength:
        f = min(rng.uniform(1.3, 3.2), max(1.0, digit_h / 9.0))
        sw, sh = max(4, int(round(w / f))), max(4, int(round(h / f)))
        small = cv2.resize(out, (sw, sh), interpolation=cv2.INTER_AREA)
        interp = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
        out = cv2.resize(small, (w, h), interpolation=interp)
    if rng.random() < 0.65 * strength:
        sigma = min(rng.uniform(0.3, 0.03 * h + 0.6), max(0.3, 0.09 * digit_h))
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if rng.random() < 0.2 * strength:
        k = motion_kernel(min(rng.uniform(2, 2 + 0.06 * h), max(2.0, 0.25 * digit_h)), rng.uniform(0, 180))
        out = cv2.filter2D(out, -1, k, borderType=cv2.BORDER_REFLECT)
    if rng.random() < 0.7:
        sigma = rng.uniform(0.0, 0.04 * strength)
        out = out + rng.normal(0, sigma, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def jpeg(rng: np.random.Generator, img_u8: np.ndarray, prob: float = 0.6) -> np.ndarray:
    """Re-encode a uint8 BGR image as JPEG at quality 25-95 with probability ``prob``."""
    if rng.random() >= prob:
        return img_u8
    q = int(rng.integers(25, 96))
    ok, buf = cv2.imencode(".jpg", img_u8, [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        return img_u8
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)
