"""Augmentation for classifier crops and detector images (uint8 numpy + OpenCV).

Every function takes and returns ``(H, W, 3)`` uint8 images. Colour order matters only for
the hue/saturation and grey conversions, which are told the order: crops are RGB (the project
keeps them so), detector frames are BGR (``train.detection_dataset.DetectionDataset`` hands its
``transforms`` the BGR frame). Randomness comes from an explicit ``numpy.random.Generator`` so
runs repeat for a fixed seed; :class:`WithItemRng` adapts an augmentation to the datasets'
one-argument (crop) and two-argument (image, boxes) hooks.

Nothing here flips images: a mirrored 2 or 5 is not a house-number digit.

Two entry points:

* :class:`CropAugment` - 32x32 digit crops: random shift/scale/rotation (SVHN framing with the
  neighbours at the sides), colour jitter, inversion, grey, blur, low resolution, noise, JPEG.
* :class:`DetectionAugment` - full frames with their digit boxes: zoom in/out inside the same
  canvas (the detector resizes every image to its own size, so plain resizing would do
  nothing), small rotation and perspective with the boxes moved to match, and the same
  photometric changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

# --------------------------------------------------------------------------- photometric


def color_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
    rgb: bool = True,
) -> np.ndarray:
    """Random brightness/contrast/saturation/hue change.

    Args:
        image: ``(H, W, 3)`` uint8.
        rng: random generator.
        brightness, contrast, saturation: maximum relative change (0.3 means factors 0.7..1.3).
        hue: maximum hue shift as a fraction of the colour circle (0.05 = 18 degrees).
        rgb: channel order of ``image`` (True RGB, False BGR).

    Returns:
        ``(H, W, 3)`` uint8.
    """
    out = image.astype(np.float32)
    if brightness > 0:
        out *= rng.uniform(1 - brightness, 1 + brightness)
    if contrast > 0:
        mean = out.mean()
        out = (out - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    out = np.clip(out, 0, 255).astype(np.uint8)
    if saturation > 0 or hue > 0:
        code_in = cv2.COLOR_RGB2HSV if rgb else cv2.COLOR_BGR2HSV
        code_out = cv2.COLOR_HSV2RGB if rgb else cv2.COLOR_HSV2BGR
        hsv = cv2.cvtColor(out, code_in).astype(np.float32)
        if hue > 0:
            # OpenCV's 8-bit hue runs 0..179.
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue) * 180.0) % 180.0
        if saturation > 0:
            hsv[..., 1] *= rng.uniform(1 - saturation, 1 + saturation)
        hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
        out = cv2.cvtColor(hsv, code_out)
    return out


def invert(image: np.ndarray) -> np.ndarray:
    """Photographic negative (light digits on dark walls and the reverse both occur)."""
    return 255 - image


def to_gray(image: np.ndarray, *, rgb: bool = True) -> np.ndarray:
    """Grey image kept as 3 channels (``rgb`` gives the channel order of ``image``)."""
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (no-op for sigma <= 0)."""
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REPLICATE)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``std`` grey levels."""
    noisy = image.astype(np.float32) + rng.normal(0.0, std, size=image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` (1..100) to add compression artefacts."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        return image
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` (< 1) and scale back up: a low-resolution look."""
    h, w = image.shape[:2]
    sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class PhotometricConfig:
    """Probabilities and strengths of the photometric changes (0 probability turns one off)."""

    p_color: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    hue: float = 0.05
    p_invert: float = 0.0
    p_gray: float = 0.1
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    p_downscale: float = 0.1
    downscale_factor: tuple[float, float] = (0.4, 0.8)
    p_noise: float = 0.2
    noise_std: tuple[float, float] = (2.0, 10.0)
    p_jpeg: float = 0.2
    jpeg_quality: tuple[int, int] = (30, 90)


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig, *, rgb: bool = True) -> np.ndarray:
    """Apply the photometric changes of ``cfg``, each with its probability, in a fixed order."""
    out = image
    if rng.random() < cfg.p_color:
        out = color_jitter(
            out, rng, brightness=cfg.brightness, contrast=cfg.contrast,
            saturation=cfg.saturation, hue=cfg.hue, rgb=rgb,
        )
    if rng.random() < cfg.p_gray:
        out = to_gray(out, rgb=rgb)
    if rng.random() < cfg.p_invert:
        out = invert(out)
    if rng.random() < cfg.p_downscale:
        out = downscale(out, rng.uniform(*cfg.downscale_factor))
    if rng.random() < cfg.p_blur:
        out = gaussian_blur(out, rng.uniform(*cfg.blur_sigma))
    if rng.random() < cfg.p_noise:
        out = gaussian_noise(out, rng, rng.uniform(*cfg.noise_std))
    if rng.random() < cfg.p_jpeg:
        out = jpeg(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------- crops


def random_affine(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    shift: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    rotation: float = 0.0,
) -> np.ndarray:
    """Random shift/scale/rotation about the centre, borders replicated (as ``crop_digits`` pads).

    Args:
        image: ``(H, W, 3)`` uint8.
        rng: random generator.
        shift: maximum shift as a fraction of the side.
        scale: range of zoom factors (> 1 enlarges the digit).
        rotation: maximum rotation in degrees, either way.
    """
    h, w = image.shape[:2]
    angle = rng.uniform(-rotation, rotation) if rotation > 0 else 0.0
    s = rng.uniform(*scale)
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, s)
    if shift > 0:
        m[0, 2] += rng.uniform(-shift, shift) * w
        m[1, 2] += rng.uniform(-shift, shift) * h
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class CropAugmentConfig:
    """Crop augmentation: geometry then photometry."""

    p_geometric: float = 0.9
    shift: float = 0.08
    scale: tuple[float, float] = (0.85, 1.15)
    rotation: float = 10.0
    photometric: PhotometricConfig = PhotometricConfig(p_invert=0.2)


CROP_PRESETS: dict[str, CropAugmentConfig | None] = {
    "none": None,
    "light": CropAugmentConfig(
        p_geometric=0.7, shift=0.05, scale=(0.92, 1.08), rotation=5.0,
        photometric=PhotometricConfig(
            p_color=0.5, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02,
            p_gray=0.0, p_blur=0.1, p_downscale=0.0, p_noise=0.1, p_jpeg=0.0,
        ),
    ),
    "full": CropAugmentConfig(),
}
"""Named crop augmentation profiles for ``--augment``."""


class CropAugment:
    """Callable ``(crop uint8 (S, S, 3) RGB, rng) -> crop uint8 (S, S, 3) RGB``."""

    def __init__(self, config: CropAugmentConfig | None = None) -> None:
        self.config = config or CropAugmentConfig()

    def __call__(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        out = crop
        if rng.random() < cfg.p_geometric:
            out = random_affine(out, rng, shift=cfg.shift, scale=cfg.scale, rotation=cfg.rotation)
        return photometric(out, rng, cfg.photometric, rgb=True)


def crop_augment(name: str) -> CropAugment | None:
    """The :class:`CropAugment` of a named profile (None for ``"none"``).

    Raises:
        ValueError: for an unknown name.
    """
    if name not in CROP_PRESETS:
        raise ValueError(f"augmentation profile {name!r} is unknown; expected one of {', '.join(CROP_PRESETS)}")
    cfg = CROP_PRESETS[name]
    return None if cfg is None else CropAugment(cfg)


# --------------------------------------------------------------------------- detection


def transform_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Move xyxy boxes through a 3x3 homography and return axis-aligned boxes.

    The bounds of the moved corners overestimate a rotated glyph (its corners are empty wall)
    and the bounds of the moved edge midpoints underestimate it; their mean stays close to the
    tight box of a rotated digit, which is what SVHN's annotators drew.

    Args:
        boxes: ``(N, 4)`` float xyxy.
        matrix: ``(3, 3)`` homography.

    Returns:
        ``(N, 4)`` float32 xyxy.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros((0, 4), dtype=np.float32)
    x1, y1, x2, y2 = b.T
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1)
    mids = np.stack([np.stack([cx, y1], 1), np.stack([x2, cy], 1), np.stack([cx, y2], 1), np.stack([x1, cy], 1)], 1)

    def bounds(points: np.ndarray) -> np.ndarray:
        moved = cv2.perspectiveTransform(points.reshape(-1, 1, 2), matrix).reshape(-1, 4, 2)
        return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)

    return ((bounds(corners) + bounds(mids)) / 2).astype(np.float32)


@dataclass(frozen=True)
class DetectionAugmentConfig:
    """Detection augmentation: zoom, rotation and perspective keep every box inside the frame."""

    p_geometric: float = 0.7
    zoom: tuple[float, float] = (0.6, 1.5)
    rotation: float = 4.0
    perspective: float = 0.04
    min_visible: float = 0.95
    max_tries: int = 10
    photometric: PhotometricConfig = PhotometricConfig(p_invert=0.05, noise_std=(2.0, 6.0))


DETECTION_PRESETS: dict[str, DetectionAugmentConfig | None] = {
    "none": None,
    "light": DetectionAugmentConfig(
        p_geometric=0.5, zoom=(0.8, 1.25), rotation=2.0, perspective=0.02,
        photometric=PhotometricConfig(p_color=0.5, p_gray=0.0, p_blur=0.1, p_downscale=0.0, p_noise=0.0, p_jpeg=0.1),
    ),
    "full": DetectionAugmentConfig(),
}
"""Named detection augmentation profiles for ``--augment``."""


def _random_homography(
    w: int, h: int, boxes: np.ndarray, rng: np.random.Generator, cfg: DetectionAugmentConfig
) -> np.ndarray:
    """A zoom/rotation/perspective homography on a ``w`` x ``h`` canvas (identity when none fits)."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    for _ in range(max(1, cfg.max_tries)):
        s = math.exp(rng.uniform(math.log(cfg.zoom[0]), math.log(cfg.zoom[1])))
        angle = rng.uniform(-cfg.rotation, cfg.rotation) if cfg.rotation > 0 else 0.0
        rot = np.vstack([cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, s), [0, 0, 1]])
        jitter = rng.uniform(-cfg.perspective, cfg.perspective, size=(4, 2)) * [w, h] if cfg.perspective > 0 else 0
        dst = (src + jitter).astype(np.float32)
        persp = cv2.getPerspectiveTransform(src, dst)
        m = persp @ rot
        if len(boxes) == 0:
            # Zoom about a random point: shift the result anywhere that keeps the frame covered.
            m = np.array([[1, 0, rng.uniform(-0.1, 0.1) * w], [0, 1, rng.uniform(-0.1, 0.1) * h], [0, 0, 1]]) @ m
            return m
        moved = transform_boxes(boxes, m)
        # Shift so the digits land at a random place that keeps them all inside the frame.
        lo = moved[:, :2].min(axis=0)
        hi = moved[:, 2:].max(axis=0)
        span = hi - lo
        if span[0] > w or span[1] > h:
            continue
        tx = rng.uniform(-lo[0], w - hi[0])
        ty = rng.uniform(-lo[1], h - hi[1])
        m = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ m
        return m
    return np.eye(3)


class DetectionAugment:
    """Callable ``(image uint8 (H, W, 3), boxes (N, 4) xyxy, rng) -> (image, boxes)``.

    The output image has the input's size; the output boxes are the input boxes moved with the
    image, clipped to it, same count and order (so labels and digit strings stay valid).

    Args:
        config: strengths and probabilities.
        rgb: channel order of the images (False: BGR, as ``DetectionDataset`` hands them over).
    """

    def __init__(self, config: DetectionAugmentConfig | None = None, *, rgb: bool = False) -> None:
        self.config = config or DetectionAugmentConfig()
        self.rgb = rgb

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        h, w = image.shape[:2]
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        # SVHN boxes may start at -1 or run past the edge; clip before moving them.
        b = np.clip(b, 0, [w, h, w, h]).astype(np.float32)
        out = image
        if rng.random() < cfg.p_geometric:
            m = _random_homography(w, h, b, rng, cfg)
            if not np.allclose(m, np.eye(3)):
                out = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                b = transform_boxes(b, m)
                b = np.clip(b, 0, [w, h, w, h]).astype(np.float32)
        out = photometric(out, rng, cfg.photometric, rgb=self.rgb)
        return out, b


def detection_augment(name: str, *, rgb: bool = False) -> DetectionAugment | None:
    """The :class:`DetectionAugment` of a named profile (None for ``"none"``); ``rgb`` as there.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in DETECTION_PRESETS:
        raise ValueError(
            f"augmentation profile {name!r} is unknown; expected one of {', '.join(DETECTION_PRESETS)}"
        )
    cfg = DETECTION_PRESETS[name]
    return None if cfg is None else DetectionAugment(cfg, rgb=rgb)


class WithItemRng:
    """Adapts an augmentation that takes an ``rng`` last to the datasets' hooks.

    ``WithItemRng(CropAugment())(crop)`` and ``WithItemRng(DetectionAugment())(image, boxes)``
    call the wrapped augmentation with a fresh :func:`item_rng`. A class rather than a lambda
    so DataLoader workers can pickle it.
    """

    def __init__(self, fn: CropAugment | DetectionAugment) -> None:
        self.fn = fn

    def __call__(self, *args: np.ndarray) -> object:
        return self.fn(*args, item_rng())


def item_rng() -> np.random.Generator:
    """A generator for one dataset item, drawn from torch's RNG.

    DataLoader workers have distinct torch seeds that change every epoch and follow
    ``torch.manual_seed``, so augmentation differs per item and epoch yet repeats per seed.
    """
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


__all__ = [
    "CROP_PRESETS",
    "DETECTION_PRESETS",
    "CropAugment",
    "CropAugmentConfig",
    "DetectionAugment",
    "DetectionAugmentConfig",
    "PhotometricConfig",
    "WithItemRng",
    "color_jitter",
    "crop_augment",
    "detection_augment",
    "downscale",
    "gaussian_blur",
    "gaussian_noise",
    "invert",
    "item_rng",
    "jpeg",
    "photometric",
    "random_affine",
    "to_gray",
    "transform_boxes",
]
