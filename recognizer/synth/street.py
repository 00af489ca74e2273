"""The demo's street clip: a camera moving along a generated facade with known house numbers.

:func:`make_street_clip` renders a camera moving along a facade (a long procedurally textured
wall with houses, doors, windows and house-number plates of different sizes; with
``nameplates`` also names, street signs and words), panned and zoomed with a slight
perspective, motion blur and noise, and writes ``clip.mp4`` plus ``truth.json``: each house
number's text, the frames where it is fully visible, and per-frame digit boxes. Same
:class:`ClipConfig` -> same frames. :func:`render_frames` yields the frames and their truth
without writing anything; :func:`load_truth` reads a truth file back.

Used by ``recognizer demo`` (:mod:`recognizer.apps.demo` reads and scores the clip) and
``tools/make_demo.py``.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from recognizer.synth import degrade, painting, textures, words
from recognizer.synth.glyphs import find_fonts, font_families
from recognizer.synth.painting import NumberPlan, paint_number, plan_number

__all__ = [
    "CLIP_VERSION",
    "FACADE_HEIGHT",
    "TRUTH_FORMAT",
    "Clip",
    "ClipConfig",
    "build_facade",
    "camera_homographies",
    "load_truth",
    "make_street_clip",
    "render_frames",
]

log = logging.getLogger(__name__)

CLIP_VERSION = 1
"""Bumped whenever the clip generator changes its output for the same config."""

TRUTH_FORMAT = "recognizer-demo-truth"

FACADE_HEIGHT = 720
"""Height of the facade image in world pixels (the camera sees 360-560 of them)."""


@dataclass(frozen=True)
class ClipConfig:
    """What the demo clip looks like.

    Attributes:
        seed: base seed (same config -> same frames and truth).
        frames: number of frames.
        fps: frame rate.
        width, height: frame size in pixels.
        houses: houses along the facade, one house number each (None: one per 36 frames,
            at least 1 and at most 8).
        motion_blur: exposure as a fraction of the frame interval (0 = no blur).
        noise: sensor noise standard deviation, in 8-bit grey levels.
        nameplates: the name-plate street: numbers carry words ("No.", "Apt", "B-", "12A"),
            names or street lines on their plates, and each house has a family-name plate,
            a street sign and words on its door; only the house numbers are truth.
    """

    seed: int = 0
    frames: int = 180
    fps: float = 15.0
    width: int = 640
    height: int = 480
    houses: int | None = None
    motion_blur: float = 0.35
    noise: float = 3.0
    nameplates: bool = False

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed {self.seed}: expected an integer >= 0")
        if self.frames < 2:
            raise ValueError(f"frames {self.frames}: expected at least 2")
        if not 1.0 <= self.fps <= 120.0:
            raise ValueError(f"fps {self.fps}: expected a frame rate in [1, 120]")
        if not (160 <= self.width <= 1920 and 120 <= self.height <= 1080):
            raise ValueError(f"frame size {self.width}x{self.height}: expected 160..1920 x 120..1080")
        if self.houses is not None and not 1 <= self.houses <= 20:
            raise ValueError(f"houses {self.houses}: expected 1..20")
        if not 0.0 <= self.motion_blur <= 1.0:
            raise ValueError(f"motion_blur {self.motion_blur}: expected a fraction in [0, 1]")
        if not 0.0 <= self.noise <= 50.0:
            raise ValueError(f"noise {self.noise}: expected a standard deviation in [0, 50]")

    @property
    def num_houses(self) -> int:
        return self.houses if self.houses is not None else int(np.clip(self.frames // 36, 1, 8))


# --------------------------------------------------------------------------- the facade


@dataclass
class _FacadeNumber:
    id: int
    text: str
    hulls: list[np.ndarray]  # per digit, (K, 2) float64 world coordinates
    digits: np.ndarray


def _street_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Ascending house numbers with irregular steps (1 to 4 digits), all different."""
    start = int(rng.choice([int(rng.integers(1, 20)), int(rng.integers(20, 200)), int(rng.integers(200, 2000))]))
    out, v = [], start
    for _ in range(n):
        out.append(str(v))
        v += int(rng.choice([2, 2, 4, int(rng.integers(3, 60)), int(rng.integers(60, 700))]))
    return out


def _rect(img: np.ndarray, x1: float, y1: float, x2: float, y2: float, color: Sequence[float], alpha: float = 1.0) -> None:
    h, w = img.shape[:2]
    a, b, c, d = int(max(x1, 0)), int(max(y1, 0)), int(min(x2, w)), int(min(y2, h))
    if a < c and b < d:
        region = img[b:d, a:c]
        region[:] = region * (1 - alpha) + np.asarray(color, np.float32) * alpha


def _window(rng: np.random.Generator, img: np.ndarray, x: float, y: float, w: float, h: float, frame_col: np.ndarray) -> None:
    t = max(4.0, w * 0.07)
    _rect(img, x - t, y - t, x + w + t, y + h + t, frame_col)
    glass = np.array([0.25, 0.2, 0.15], np.float32) * rng.uniform(0.6, 1.4)
    _rect(img, x, y, x + w, y + h, glass)
    # Sky reflection: a lighter diagonal gradient on the glass.
    ys, xs = np.mgrid[0 : int(h), 0 : int(w)].astype(np.float32)
    refl = np.clip(1.0 - (xs / max(w, 1) + ys / max(h, 1)) * rng.uniform(0.5, 1.0), 0, 1)[:, :, None] * rng.uniform(0.15, 0.4)
    y1, x1 = int(y), int(x)
    sub = img[y1 : y1 + refl.shape[0], x1 : x1 + refl.shape[1]]
    sub += refl[: sub.shape[0], : sub.shape[1]] * np.array([1.0, 0.9, 0.8], np.float32)
    _rect(img, x + w / 2 - t / 3, y, x + w / 2 + t / 3, y + h, frame_col)  # mullion
    _rect(img, x - t * 1.6, y + h + t, x + w + t * 1.6, y + h + t * 2.2, frame_col * 0.9)  # sill


def _signs(rng: np.random.Generator, fonts: Sequence[Sequence[str]], canvas: np.ndarray, x0: int, width: int,
           door: tuple[float, float, float, float], keep: tuple[float, float, float, float]) -> None:
    """A family-name plate, a street sign and words on the door, kept off the number's plate."""
    dx, dy, dw, dh = door
    jobs = [
        (words.name(rng), rng.uniform(14, 30), (x0 + 20, dy, x0 + width - 20, dy + dh * 0.7)),        # name plate
        (words.street(rng), rng.uniform(22, 40), (x0 + 20, 30, x0 + width - 20, 140)),               # street sign
        (words.sign_text(rng), rng.uniform(12, 22), (dx + 5, dy + dh * 0.5, dx + dw - 5, dy + dh * 0.8)),  # door
    ]
    for text, h, (ax1, ay1, ax2, ay2) in jobs:
        est_w = 0.55 * h * len(text)
        for _ in range(12):
            x = float(rng.uniform(ax1, max(ax1 + 1.0, ax2 - est_w)))
            y = float(rng.uniform(ay1, max(ay1 + 1.0, ay2 - h)))
            m = h * 0.6
            if x + est_w + m < keep[0] or x - m > keep[2] or y + h + m < keep[1] or y - m > keep[3]:
                painting.paint_sign(rng, canvas, fonts, x, y, h, text)
                break


def _house(rng: np.random.Generator, fonts: Sequence[Sequence[str]], width: int, number: str, x0: int, canvas: np.ndarray,
           number_id: int, nameplates: bool = False) -> _FacadeNumber:
    """Draw one house (wall, plinth, door, windows, pipe, number) into ``canvas[:, x0:x0+width]``;
    with ``nameplates`` also text around the number and signs (see :class:`ClipConfig`)."""
    H = canvas.shape[0]
    unit = float(rng.uniform(30, 48))
    _, wall = textures.random_wall(rng, H, width, unit)
    canvas[:, x0 : x0 + width] = wall
    # Plinth and a cornice band.
    plinth = textures.random_wall_color(rng) * 0.7
    _rect(canvas, x0, H - 90, x0 + width, H, plinth)
    _rect(canvas, x0, 0, x0 + width, 22, textures.random_wall_color(rng) * 0.85)
    frame_col = np.full(3, rng.uniform(0.75, 0.95), np.float32) if rng.random() < 0.6 else textures.random_wall_color(rng) * 0.6
    # Door on the left or right third.
    dw, dh = rng.uniform(105, 140), rng.uniform(230, 270)
    left_door = rng.random() < 0.5
    dx = x0 + (rng.uniform(0.12, 0.3) if left_door else rng.uniform(0.55, 0.75)) * width
    dy = H - 90 - dh
    door_col = textures.random_wall_color(rng) * rng.uniform(0.4, 0.8)
    _rect(canvas, dx - 10, dy - 10, dx + dw + 10, H - 90, frame_col)
    _rect(canvas, dx, dy, dx + dw, H - 90, door_col)
    _rect(canvas, dx + dw * 0.15, dy + dh * 0.1, dx + dw * 0.85, dy + dh * 0.45, door_col * 0.75)
    # The house number beside the door (on the side with more wall), at eye level.
    gh = int(rng.uniform(26, 62))
    digits = [int(c) for c in number]
    plan: NumberPlan = plan_number(rng, digits, gh, fonts, source_weights=(0.8, 0.06, 0.04, 0.1), mode_weights=(0.75, 0.12, 0.13),
                                   suffix_prob=0.0, text_prob=0.9 if nameplates else 0.0)
    px1, py1, px2, py2 = plan.plate
    pw, ph = px2 - px1, py2 - py1
    side_x = dx + dw + 10 + rng.uniform(20, 60) if left_door else dx - 10 - rng.uniform(20, 60) - pw
    target_x = float(np.clip(side_x, x0 + 15, x0 + width - pw - 15))
    target_y = float(rng.uniform(dy + 10, dy + dh * 0.45))
    ox, oy = px1 - target_x, py1 - target_y  # number coords -> canvas: subtract (ox, oy)
    keep = (target_x - 30, target_y - 30, target_x + pw + 30, target_y + ph + 30)
    # Windows: an upper row and a ground-floor one beside the door, kept off the plate.
    ww, wh = rng.uniform(95, 125), rng.uniform(130, 165)
    for row_y in (60.0, dy + 10):
        k = 0
        x = x0 + rng.uniform(30, 60)
        while x + ww < x0 + width - 30 and k < 4:
            box = (x - 20, row_y - 20, x + ww + 20, row_y + wh + 40)
            clear_door = box[2] < dx - 10 or box[0] > dx + dw + 10 or row_y + wh < dy - 20
            clear_plate = box[2] < keep[0] or box[0] > keep[2] or box[3] < keep[1] or box[1] > keep[3]
            if clear_door and clear_plate:
                _window(rng, canvas, x, row_y, ww, wh, frame_col)
            x += ww + rng.uniform(50, 110)
            k += 1
    # A downpipe at the house's left edge.
    pipe_col = np.full(3, rng.uniform(0.3, 0.6), np.float32)
    _rect(canvas, x0 + 2, 0, x0 + 14, H, pipe_col)
    if nameplates:
        _signs(rng, fonts, canvas, x0, width, (dx, dy, dw, dh), keep)
    paint_number(rng, canvas, plan, int(round(ox)), int(round(oy)))
    hulls = [h.astype(np.float64) - np.array([int(round(ox)), int(round(oy))], np.float64) for h in plan.hulls]
    return _FacadeNumber(number_id, number, hulls, plan.digits)


def build_facade(cfg: ClipConfig, fonts: Sequence[str] | None = None) -> tuple[np.ndarray, list[_FacadeNumber]]:
    """The street: a lead-in wall, ``cfg.num_houses`` houses with one number each, a lead-out.

    Returns:
        ``(image, numbers)``: ``(FACADE_HEIGHT, W, 3)`` uint8 BGR, and each number with its
        digit hulls in facade pixels.
    """
    rng = np.random.default_rng([cfg.seed, 7_000_001])
    families = font_families(list(find_fonts() if fonts is None else fonts))
    n = cfg.num_houses
    widths = [int(rng.uniform(520, 720)) for _ in range(n)]
    lead = 360
    W = lead * 2 + sum(widths)
    canvas = np.zeros((FACADE_HEIGHT, W, 3), np.float32)
    _, wall = textures.random_wall(rng, FACADE_HEIGHT, lead, 40.0)
    canvas[:, :lead] = wall
    _, wall = textures.random_wall(rng, FACADE_HEIGHT, lead, 40.0)
    canvas[:, W - lead :] = wall
    numbers: list[_FacadeNumber] = []
    x = lead
    for i, (w, text) in enumerate(zip(widths, _street_numbers(rng, n))):
        numbers.append(_house(rng, families, w, text, x, canvas, i, cfg.nameplates))
        x += w
    degrade.lighting(rng, canvas, 60.0)
    # Pavement strip at the bottom.
    _rect(canvas, 0, FACADE_HEIGHT - 30, W, FACADE_HEIGHT, np.array([0.35, 0.36, 0.38], np.float32))
    return np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8), numbers


# --------------------------------------------------------------------------- the camera


def camera_homographies(cfg: ClipConfig, facade_width: int) -> list[np.ndarray]:
    """Facade -> frame homographies, one per frame: a left-to-right pan with zoom, bob, roll and
    a little yaw (one side of the view slightly taller than the other)."""
    rng = np.random.default_rng([cfg.seed, 7_000_002])
    W, H = cfg.width, cfg.height
    n = cfg.frames
    t = np.linspace(0.0, 1.0, n)
    ph = rng.uniform(0, 2 * np.pi, 4)
    zoom = 1.1 + 0.18 * np.sin(2 * np.pi * 0.6 * t + ph[0])  # frame px per facade px
    view_w = W / zoom
    # Pan from the lead-in to the lead-out at a gently varying speed.
    x_start, x_end = view_w[0] / 2 + 20, facade_width - view_w[-1] / 2 - 20
    speed = 1.0 + 0.25 * np.sin(2 * np.pi * 1.3 * t + ph[1])
    progress = np.cumsum(speed)
    progress = (progress - progress[0]) / max(progress[-1] - progress[0], 1e-9)
    cx = x_start + (x_end - x_start) * progress
    view_h = H / zoom
    cy = FACADE_HEIGHT * 0.52 + 25 * np.sin(2 * np.pi * 0.9 * t + ph[2])
    cy = np.clip(cy, view_h / 2, FACADE_HEIGHT - view_h / 2)
    roll = np.radians(1.5 * np.sin(2 * np.pi * 0.5 * t + ph[3]))
    yaw = 0.05 + 0.03 * np.sin(2 * np.pi * 0.35 * t + ph[0])
    dst = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    out = []
    for i in range(n):
        hw, hh = view_w[i] / 2, view_h[i] / 2
        quad = np.array([[-hw, -hh * (1 + yaw[i])], [hw, -hh * (1 - yaw[i])], [hw, hh * (1 - yaw[i])], [-hw, hh * (1 + yaw[i])]])
        c, s = np.cos(roll[i]), np.sin(roll[i])
        quad = quad @ np.array([[c, -s], [s, c]]).T + np.array([cx[i], cy[i]])
        out.append(cv2.getPerspectiveTransform(quad.astype(np.float32), dst))
    return out


def _project(hull: np.ndarray, M: np.ndarray) -> tuple[float, float, float, float]:
    p = cv2.perspectiveTransform(hull.reshape(-1, 1, 2), M).reshape(-1, 2)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max() + 1), float(p[:, 1].max() + 1)


def _frame_truth(numbers: Sequence[_FacadeNumber], M: np.ndarray, W: int, H: int) -> list[dict[str, Any]]:
    out = []
    for num in numbers:
        boxes = [_project(h, M) for h in num.hulls]
        b = np.array(boxes)
        x1, y1, x2, y2 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
        if x2 <= 0 or y2 <= 0 or x1 >= W or y1 >= H:
            continue
        full = bool(x1 >= 0 and y1 >= 0 and x2 <= W and y2 <= H)
        out.append({
            "id": num.id,
            "text": num.text,
            "box": [round(float(v), 2) for v in (x1, y1, x2, y2)],
            "fully_visible": full,
            "digits": [[round(float(v), 2) for v in bx] + [int(d)] for bx, d in zip(boxes, num.digits)],
        })
    return out


def render_frames(cfg: ClipConfig, fonts: Sequence[str] | None = None) -> Iterator[tuple[np.ndarray, list[dict[str, Any]]]]:
    """Yield ``(frame, truth)`` for each frame: ``(H, W, 3)`` uint8 BGR and the numbers in view.

    Each truth item: ``{"id", "text", "box": xyxy of the whole number, "fully_visible",
    "digits": [[x1, y1, x2, y2, digit], ...]}`` in frame pixels.
    """
    facade, numbers = build_facade(cfg, fonts)
    Ms = camera_homographies(cfg, facade.shape[1])
    W, H = cfg.width, cfg.height
    rng = np.random.default_rng([cfg.seed, 7_000_003])
    # A few noise fields, reused in turn: per-frame noise without per-frame random draws.
    noise = [np.clip(rng.normal(0, cfg.noise, (H, W, 3)), -127, 127).astype(np.int16) for _ in range(5)] if cfg.noise > 0 else []
    centre = np.array([[[W / 2, H / 2]]], np.float64)
    prev_c: np.ndarray | None = None
    for i, M in enumerate(Ms):
        frame = cv2.warpPerspective(facade, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Motion blur along the apparent motion of the facade (pan speed in frame pixels).
        c = cv2.perspectiveTransform(centre, np.linalg.inv(M)).reshape(2)
        if prev_c is not None and cfg.motion_blur > 0:
            shift = cv2.perspectiveTransform(prev_c.reshape(1, 1, 2), M).reshape(2) - np.array([W / 2, H / 2])
            length = float(np.hypot(*shift)) * cfg.motion_blur
            if length >= 1.5:
                k = degrade.motion_kernel(length, float(np.degrees(np.arctan2(shift[1], shift[0]))))
                frame = cv2.filter2D(frame, -1, k, borderType=cv2.BORDER_REPLICATE)
        prev_c = c
        if noise:
            gain = 1.0 + 0.03 * np.sin(i * 0.7)
            f = frame.astype(np.int16) * gain + noise[i % len(noise)]
            frame = np.clip(f, 0, 255).astype(np.uint8)
        yield frame, _frame_truth(numbers, M, W, H)


# --------------------------------------------------------------------------- clip files


@dataclass(frozen=True)
class Clip:
    """A written demo clip: the video and its ground truth."""

    video: Path
    truth_path: Path
    truth: dict[str, Any] = field(repr=False)


def _config_record(cfg: ClipConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["houses"] = cfg.num_houses
    d["version"] = CLIP_VERSION
    return d


def load_truth(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``truth.json`` written by :func:`make_street_clip`; ``ValueError`` names what is wrong."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file; expected a demo truth.json") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != TRUTH_FORMAT:
        raise ValueError(f"{p}: not a demo truth file (expected \"format\": \"{TRUTH_FORMAT}\")")
    return data


def make_street_clip(out_dir: str | os.PathLike[str], cfg: ClipConfig | None = None, *, reuse: bool = True,
                     fonts: Sequence[str] | None = None, name: str = "clip.mp4") -> Clip:
    """Write ``out_dir/clip.mp4`` (mp4v) and ``out_dir/truth.json``.

    Args:
        out_dir: folder (created if missing).
        cfg: clip settings.
        reuse: keep an existing clip whose truth file records the same settings.
        fonts: font files for the plates (default: the system's).
        name: video file name (``.mp4`` or ``.avi``).

    Returns:
        The :class:`Clip`.

    The truth file::

        {"format": "recognizer-demo-truth", "config": {...}, "video": "clip.mp4",
         "fps", "width", "height", "frames",
         "numbers": [{"id", "text", "first_frame", "last_frame", "visible_frames",
                      "digit_height": [min, max]}],   # frames where fully visible
         "per_frame": [[{"id", "text", "box", "fully_visible", "digits"}, ...], ...]}
    """
    cfg = cfg or ClipConfig()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; expected a folder for the demo clip")
    out.mkdir(parents=True, exist_ok=True)
    video, truth_path = out / name, out / "truth.json"
    record = _config_record(cfg)
    if reuse and video.is_file() and truth_path.is_file():
        try:
            truth = load_truth(truth_path)
        except ValueError:
            truth = {}
        if truth.get("config") == record and truth.get("video") == name:
            log.info("reusing demo clip %s", video)
            return Clip(video, truth_path, truth)
    fourcc = {".mp4": "mp4v", ".avi": "MJPG"}.get(video.suffix.lower())
    if fourcc is None:
        raise ValueError(f"clip name {name!r}: expected a .mp4 or .avi file name")
    tmp_video = video.with_name(f".{video.stem}.tmp{video.suffix}")
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*fourcc), cfg.fps, (cfg.width, cfg.height))
    if not writer.isOpened():
        raise OSError(f"cannot write {tmp_video} with OpenCV codec {fourcc}")
    per_frame: list[list[dict[str, Any]]] = []
    try:
        for frame, truth_items in render_frames(cfg, fonts):
            writer.write(frame)
            per_frame.append(truth_items)
    finally:
        writer.release()
    numbers: dict[int, dict[str, Any]] = {}
    for f, items in enumerate(per_frame):
        for it in items:
            n = numbers.setdefault(it["id"], {"id": it["id"], "text": it["text"], "first_frame": None, "last_frame": None,
                                               "visible_frames": 0, "digit_height": [1e9, 0.0]})
            if it["fully_visible"]:
                n["first_frame"] = f if n["first_frame"] is None else n["first_frame"]
                n["last_frame"] = f
                n["visible_frames"] += 1
                hs = [d[3] - d[1] for d in it["digits"]]
                n["digit_height"] = [round(min(n["digit_height"][0], min(hs)), 1), round(max(n["digit_height"][1], max(hs)), 1)]
    truth = {
        "format": TRUTH_FORMAT,
        "config": record,
        "video": name,
        "fps": cfg.fps,
        "width": cfg.width,
        "height": cfg.height,
        "frames": cfg.frames,
        "numbers": [numbers[k] for k in sorted(numbers)],
        "per_frame": per_frame,
    }
    tmp_truth = truth_path.with_name(".truth.tmp.json")
    tmp_truth.write_text(json.dumps(truth, separators=(",", ":")))
    os.replace(tmp_video, video)
    os.replace(tmp_truth, truth_path)
    return Clip(video, truth_path, truth)
