"""Drawing results on frames with OpenCV primitives (the notebook's visualisation)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from recognizer.tracking import TrackUpdate
from recognizer.types import Reading, check_image

DIGIT_COLOUR = (0, 220, 0)  # BGR
NUMBER_COLOUR = (0, 200, 255)
TEXT_COLOUR = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _label(image: np.ndarray, text: str, x: int, y: int, scale: float, colour: tuple[int, int, int]) -> None:
    """Draw ``text`` on a filled box whose bottom-left corner is at (x, y), kept inside the image."""
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    h, w = image.shape[:2]
    x = int(min(max(x, 0), max(w - tw - 2, 0)))
    y = int(min(max(y, th + base + 2), h - 1))
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 2, y), colour, -1)
    cv2.putText(image, text, (x + 1, y - base - 1), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)


def draw_readings(
    image_bgr: np.ndarray,
    readings: Sequence[Reading],
    *,
    labels: Sequence[str] | None = None,
    label_colours: Sequence[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """Return a copy of ``image_bgr`` with digit boxes, digits and each number drawn.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR frame (left untouched).
        readings: what the recognizer read in this frame.
        labels: optional text per reading to show instead of its own ``text`` (e.g. a track's
            stable number and id).
        label_colours: optional BGR colour per reading for its label and number box.
    """
    out = check_image(image_bgr).copy()
    h = out.shape[0]
    scale = max(0.35, min(1.2, h / 900))
    for k, reading in enumerate(readings):
        for d in reading.digits:
            x1, y1, x2, y2 = (int(round(v)) for v in d.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), DIGIT_COLOUR, 1 if h < 300 else 2)
            _label(out, str(d.digit), x1, y1 - 1, scale * 0.8, DIGIT_COLOUR)
        x1, y1, x2, y2 = (int(round(v)) for v in reading.box)
        colour = label_colours[k] if label_colours is not None and k < len(label_colours) else NUMBER_COLOUR
        cv2.rectangle(out, (x1 - 2, y1 - 2), (x2 + 2, y2 + 2), colour, 1)
        text = labels[k] if labels is not None and k < len(labels) else f"{reading.text} ({reading.confidence:.2f})"
        _label(out, text, x1, y2 + int(28 * scale) + 4, scale, colour)
    return out


# -- tracks and HUD (real-time loop) ------------------------------------------------------------

CONFIRMED_COLOUR = (255, 170, 0)  # BGR azure: a confirmed track's label and number box
TENTATIVE_COLOUR = NUMBER_COLOUR
HUD_BG = (20, 20, 20)
HUD_FG = (240, 240, 240)


@dataclass(frozen=True)
class HudInfo:
    """Figures shown in the corner of each frame.

    Attributes:
        fps: frames shown per second (smoothed).
        latency_ms: capture-to-display time of this frame, in milliseconds.
        frame_index: index of the frame in its source.
        dropped: frames dropped so far (live sources).
        extra: more short ``"key value"`` strings to show.
    """

    fps: float | None = None
    latency_ms: float | None = None
    frame_index: int | None = None
    dropped: int | None = None
    extra: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        parts = []
        if self.fps is not None:
            parts.append(f"FPS {self.fps:5.1f}")
        if self.latency_ms is not None:
            parts.append(f"latency {self.latency_ms:4.0f} ms")
        line2 = []
        if self.frame_index is not None:
            line2.append(f"frame {self.frame_index}")
        if self.dropped is not None:
            line2.append(f"dropped {self.dropped}")
        out = ["  ".join(parts)] if parts else []
        if line2:
            out.append("  ".join(line2))
        out.extend(self.extra)
        return out


def track_labels(readings: Sequence[Reading], update: TrackUpdate | None) -> tuple[list[str], list[bool]]:
    """Per reading, the label to draw (``"#id stable"``, plus the raw text when it differs) and
    whether its track is confirmed."""
    labels: list[str] = []
    confirmed: list[bool] = []
    for k, reading in enumerate(readings):
        state = None
        if update is not None and k < len(update.assignments):
            state = update.track(update.assignments[k])
        if state is None:
            labels.append(f"{reading.text} ({reading.confidence:.2f})")
            confirmed.append(False)
            continue
        stable = state.stable_text or "?"
        label = f"#{state.track_id} {stable}"
        if reading.text and reading.text != state.stable_text:
            label += f" [{reading.text}]"
        labels.append(label)
        confirmed.append(state.confirmed)
    return labels, confirmed


def draw_hud(image_bgr: np.ndarray, hud: HudInfo) -> np.ndarray:
    """Draw ``hud`` in the top-left corner of ``image_bgr`` **in place**; returns it."""
    lines = hud.lines()
    if not lines:
        return image_bgr
    h, w = image_bgr.shape[:2]
    scale = max(0.4, min(0.9, h / 900))
    thickness = 1
    sizes = [cv2.getTextSize(t, FONT, scale, thickness) for t in lines]
    line_h = max(s[0][1] + s[1] for s in sizes) + 6
    box_w = min(max(s[0][0] for s in sizes) + 12, w)
    box_h = min(line_h * len(lines) + 6, h)
    roi = image_bgr[0:box_h, 0:box_w]
    # Darken the corner instead of painting it over, so the scene stays visible underneath.
    cv2.addWeighted(roi, 0.35, np.full_like(roi, HUD_BG), 0.65, 0, dst=roi)
    for i, text in enumerate(lines):
        y = 3 + line_h * (i + 1) - 5
        cv2.putText(image_bgr, text, (6, y), FONT, scale, HUD_FG, thickness, cv2.LINE_AA)
    return image_bgr


def annotate(
    image_bgr: np.ndarray,
    readings: Sequence[Reading],
    update: TrackUpdate | None = None,
    hud: HudInfo | None = None,
) -> np.ndarray:
    """A copy of ``image_bgr`` with digit boxes, digits, each track's id and stable number
    (azure once confirmed, orange before), and the HUD.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR frame (left untouched).
        readings: the frame's readings.
        update: the tracker's update for this frame (None: draw raw readings only).
        hud: figures for the corner (None: no HUD).

    Returns:
        The annotated ``(H, W, 3)`` uint8 BGR copy.
    """
    if update is None:
        out = draw_readings(image_bgr, readings)
    else:
        labels, confirmed = track_labels(readings, update)
        colours = [CONFIRMED_COLOUR if ok else TENTATIVE_COLOUR for ok in confirmed]
        out = draw_readings(image_bgr, readings, labels=labels, label_colours=colours)
    if hud is not None:
        draw_hud(out, hud)
    return out
