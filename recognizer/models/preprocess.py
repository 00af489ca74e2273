"""The only image conversion and cropping code of the project.

Training (``train/``) and inference (``recognizer/models/engine.py``) both call these functions, so a
digit is cropped and scaled the same way everywhere. The classifier's input normalisation
(mean and std) belongs to the model: see :class:`recognizer.models.SmallCNN`.

Conventions: frames are ``(H, W, 3)`` uint8 BGR until they enter this module; boxes are
``(N, 4)`` float32 xyxy pixels of the original frame.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from recognizer.types import check_image

CROP_SIZE = 32
"""Side of the square classifier input, as in SVHN's 32x32 format."""

DEFAULT_CROP_PAD = 0.0
"""Extra margin around the square digit window, as a fraction of its side.

SVHN's 32x32 crops widen the digit box to a square with no extra margin; we do the same by
default so our crops look like the real ones the classifier is measured on.
"""


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> ``(H, W, 3)`` uint8 RGB (a contiguous copy)."""
    check_image(image)
    return np.ascontiguousarray(image[:, :, ::-1])


def frame_to_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """Detector input: BGR uint8 ``(H, W, 3)`` -> RGB float32 ``(3, H, W)`` in [0, 1]."""
    rgb = bgr_to_rgb(image_bgr)
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)


def square_boxes(boxes: np.ndarray, pad: float = DEFAULT_CROP_PAD) -> np.ndarray:
    """Widen each xyxy box to a square around its centre, then grow it by ``pad`` of its side.

    Args:
        boxes: ``(N, 4)`` xyxy pixels.
        pad: margin fraction (0 keeps the square tight on the longer side).

    Returns:
        ``(N, 4)`` float32 xyxy squares (may extend past the image).
    """
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * (1.0 + pad)
    side = np.maximum(side, 1.0)
    half = side / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1).astype(np.float32)


def crop_digits(
    image_bgr: np.ndarray,
    boxes: np.ndarray,
    *,
    pad: float = DEFAULT_CROP_PAD,
    size: int = CROP_SIZE,
    square: bool = True,
) -> np.ndarray:
    """Cut one classifier crop per box.

    Each box is widened to a square (SVHN's 32x32 framing, neighbours showing at the sides),
    parts outside the image are filled by replicating the border, and the window is resized.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR frame.
        boxes: ``(N, 4)`` xyxy pixels.
        pad: extra margin fraction around the square.
        size: output side in pixels.
        square: widen to a square first (False stretches the box itself).

    Returns:
        ``(N, size, size, 3)`` uint8 RGB crops (``N`` may be 0).
    """
    check_image(image_bgr)
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = np.empty((len(b), size, size, 3), dtype=np.uint8)
    if len(b) == 0:
        return out
    windows = square_boxes(b, pad) if square else b
    h, w = image_bgr.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(windows):
        ix1, iy1 = int(np.floor(x1)), int(np.floor(y1))
        ix2, iy2 = max(int(np.ceil(x2)), ix1 + 1), max(int(np.ceil(y2)), iy1 + 1)
        cx1, cy1, cx2, cy2 = max(ix1, 0), max(iy1, 0), min(ix2, w), min(iy2, h)
        if cx1 >= cx2 or cy1 >= cy2:
            # The window lies wholly outside the frame: nothing to read, a flat crop.
            out[i] = 0
            continue
        patch = image_bgr[cy1:cy2, cx1:cx2]
        top, left = cy1 - iy1, cx1 - ix1
        bottom, right = iy2 - cy2, ix2 - cx2
        if top or left or bottom or right:
            patch = cv2.copyMakeBorder(patch, top, bottom, left, right, cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        resized = cv2.resize(patch, (size, size), interpolation=interp)
        out[i] = resized[:, :, ::-1]
    return out


def crops_to_tensor(crops_rgb: np.ndarray) -> torch.Tensor:
    """Classifier input: ``(N, S, S, 3)`` uint8 RGB -> float32 ``(N, 3, S, S)`` in [0, 1].

    The classifier normalises it further itself (:class:`recognizer.models.SmallCNN`).
    """
    arr = np.asarray(crops_rgb)
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"crops have shape {arr.shape} dtype {arr.dtype}; expected (N, S, S, 3) uint8")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float()
    return t.div_(255.0)


def tensor_to_crops(t: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`crops_to_tensor` (for drawing augmented samples)."""
    x = t.detach().cpu().float().clamp(0, 1).mul_(255).round_()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


# Test-time views of a crop: (dx, dy, scale) about the centre. Small shifts and zooms as the
# detector's boxes vary; averaging the classifier over them was worth about 3 points of per-digit
# accuracy on real validation crops (137 crops of images 97-128, 85.4% -> 89.1%).
TTA_VIEWS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 1.0),
    (-1.5, 0.0, 1.0),
    (1.5, 0.0, 1.0),
    (0.0, 0.0, 1.12),
    (0.0, 0.0, 0.9),
)


def crop_views(crops_rgb: np.ndarray, views: tuple[tuple[float, float, float], ...] = TTA_VIEWS) -> np.ndarray:
    """Shifted and zoomed copies of each crop for test-time averaging.

    Args:
        crops_rgb: ``(N, 32, 32, 3)`` uint8 crops.
        views: ``(dx, dy, scale)`` per view, pixels and zoom about the crop centre.

    Returns:
        ``(len(views) * N, 32, 32, 3)`` uint8, view-major: rows ``v * N .. v * N + N - 1`` are view ``v``.
    """
    crops_rgb = np.asarray(crops_rgb)
    n = len(crops_rgb)
    out = np.empty((len(views) * n, *crops_rgb.shape[1:]), dtype=np.uint8)
    c = CROP_SIZE / 2.0
    for v, (dx, dy, s) in enumerate(views):
        if dx == 0 and dy == 0 and s == 1.0:
            out[v * n : (v + 1) * n] = crops_rgb
            continue
        m = np.array([[s, 0.0, c - c * s + dx], [0.0, s, c - c * s + dy]], np.float32)
        for i, crop in enumerate(crops_rgb):
            out[v * n + i] = cv2.warpAffine(crop, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_REPLICATE)
    return out
