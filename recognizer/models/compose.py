"""Digits to house numbers: pure functions, no I/O, no torch.

Steps: drop duplicate boxes of the same digit, link digits that sit side by side on one line
(similar height, close horizontally, overlapping vertically), and read each linked group along
its own direction so slightly rotated numbers still read left to right.
"""
from __future__ import annotations

import math

import numpy as np

from recognizer.types import DigitBox, Reading, as_box

DUPLICATE_IOU = 0.45
"""Two boxes overlapping more than this (IoU) are one digit seen twice."""
DUPLICATE_CONTAIN = 0.8
"""...as is a box lying this much (intersection / its own area) inside a stronger one."""
DUPLICATE_SPAN = 0.6
"""...as are two boxes sharing this much of the narrower one's width while overlapping by half
the shorter one's height: neighbouring digits of a number touch but never share half a width."""
MAX_GAP = 0.9
"""Largest horizontal gap between neighbouring digits of one number, in digit heights."""
MAX_HEIGHT_RATIO = 1.7
"""Largest height ratio between neighbouring digits of one number."""
MAX_CENTRE_SHIFT = 0.6
"""Largest vertical offset of neighbouring digit centres, in digit heights (allows ~25 deg tilt)."""


def _areas(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def dedupe(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the boxes kept after removing duplicates, strongest first.

    Args:
        boxes: ``(N, 4)`` float xyxy.
        scores: ``(N,)`` ranking scores.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = _areas(b)
    keep: list[int] = []
    for i in order:
        dup = False
        for j in keep:
            ix = max(0.0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
            iy = max(0.0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
            inter = ix * iy
            union = areas[i] + areas[j] - inter
            if union > 0 and inter / union > DUPLICATE_IOU:
                dup = True
            elif areas[i] > 0 and inter / areas[i] > DUPLICATE_CONTAIN:
                dup = True
            else:
                w = min(b[i, 2] - b[i, 0], b[j, 2] - b[j, 0])
                h = min(b[i, 3] - b[i, 1], b[j, 3] - b[j, 1])
                dup = w > 0 and h > 0 and ix > DUPLICATE_SPAN * w and iy > 0.5 * h
            if dup:
                break
        if not dup:
            keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def _linked(a: np.ndarray, b: np.ndarray) -> bool:
    ha, hb = a[3] - a[1], b[3] - b[1]
    if ha <= 0 or hb <= 0 or max(ha, hb) / min(ha, hb) > MAX_HEIGHT_RATIO:
        return False
    h = (ha + hb) / 2
    gap = max(b[0] - a[2], a[0] - b[2], 0.0)
    if gap > MAX_GAP * h:
        return False
    dy = abs((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2)
    if dy > MAX_CENTRE_SHIFT * h:
        return False
    # Stacked boxes (one above the other, little horizontal offset) are not neighbours on a line.
    dx = abs((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2)
    return dx >= 0.5 * dy


def group_digits(boxes: np.ndarray) -> list[list[int]]:
    """Split boxes into lines of neighbouring digits (connected components of the link graph)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    parent = list(range(len(b)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            if _linked(b[i], b[j]):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(b)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def reading_order(boxes: np.ndarray) -> np.ndarray:
    """Order the digits of one line along the line's own direction, left to right.

    The direction is the principal axis of the digit centres (so a tilted number reads in
    order), flipped to point rightwards.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    if len(b) < 2:
        return np.arange(len(b))
    c = centres - centres.mean(axis=0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    axis = vt[0] if vt[0][0] >= 0 else -vt[0]
    # Only trust the fitted axis for modest tilts; a steeper one (digits nearly stacked, or
    # noise in a two-digit line) falls back to plain x order.
    if abs(math.degrees(math.atan2(axis[1], axis[0]))) > 45:
        axis = np.array([1.0, 0.0])
    return np.argsort(c @ axis, kind="stable")


def compose_readings(
    boxes: np.ndarray,
    digits: np.ndarray,
    det_scores: np.ndarray,
    cls_scores: np.ndarray,
) -> list[Reading]:
    """Turn the digits found in one frame into house-number readings.

    Args:
        boxes: ``(N, 4)`` float xyxy pixels.
        digits: ``(N,)`` int digits 0..9.
        det_scores: ``(N,)`` detector scores in [0, 1].
        cls_scores: ``(N,)`` classifier probabilities in [0, 1].

    Returns:
        Readings ordered by total digit evidence (sum of ``det_score * cls_score``), strongest
        first; an empty list when there are no boxes.
    """
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    d = np.asarray(digits, dtype=np.int64).reshape(-1)
    ds = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    cs = np.asarray(cls_scores, dtype=np.float64).reshape(-1)
    if not (len(b) == len(d) == len(ds) == len(cs)):
        raise ValueError(f"compose_readings got {len(b)} boxes, {len(d)} digits, {len(ds)} and {len(cs)} scores; expected equal lengths")
    if len(b) == 0:
        return []
    keep = dedupe(b, ds * cs)
    b, d, ds, cs = b[keep], d[keep], ds[keep], cs[keep]
    readings: list[tuple[float, Reading]] = []
    for group in group_digits(b):
        idx = np.asarray(group)[reading_order(b[group])]
        parts = tuple(
            DigitBox(box=as_box(b[i]), digit=int(d[i]), det_score=float(ds[i]), cls_score=float(cs[i])) for i in idx
        )
        joint = np.clip(ds[idx] * cs[idx], 1e-12, 1.0)
        confidence = float(np.exp(np.log(joint).mean()))
        gb = b[idx]
        box = as_box([gb[:, 0].min(), gb[:, 1].min(), gb[:, 2].max(), gb[:, 3].max()])
        text = "".join(str(p.digit) for p in parts)
        readings.append((float(joint.sum()), Reading(text=text, confidence=confidence, box=box, digits=parts)))
    readings.sort(key=lambda item: -item[0])
    return [r for _, r in readings]
