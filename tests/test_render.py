"""Drawing readings, tracks and the HUD."""
from __future__ import annotations

import numpy as np
import pytest

from recognizer.output.render import (
    CONFIRMED_COLOUR,
    DIGIT_COLOUR,
    TENTATIVE_COLOUR,
    HudInfo,
    annotate,
    draw_hud,
    draw_readings,
    track_labels,
)
from recognizer.tracking import Tracker
from recognizer.types import DigitBox, Reading


def reading(text: str, x: float = 60.0, y: float = 60.0, conf: float = 0.9) -> Reading:
    digits = tuple(DigitBox((x + 20 * i, y, x + 20 * (i + 1), y + 30), int(c), 0.95, 0.95) for i, c in enumerate(text))
    return Reading(text, conf, (x, y, x + 20 * len(text), y + 30), digits)


def has_colour(image: np.ndarray, bgr: tuple[int, int, int]) -> bool:
    return bool(np.all(image == np.array(bgr, dtype=np.uint8), axis=2).any())


@pytest.fixture
def frame() -> np.ndarray:
    return np.full((240, 320, 3), 128, dtype=np.uint8)


def test_draw_readings_copies_and_draws_digit_boxes(frame: np.ndarray) -> None:
    before = frame.copy()
    out = draw_readings(frame, [reading("12")])
    assert np.array_equal(frame, before), "input untouched"
    assert out.shape == frame.shape and out.dtype == np.uint8
    # The first digit's box edge is drawn in the digit colour.
    assert tuple(out[75, 60]) == DIGIT_COLOUR
    assert np.array_equal(draw_readings(frame, []), frame), "nothing read, nothing drawn"


def test_draw_readings_rejects_bad_images() -> None:
    with pytest.raises(ValueError, match="expected"):
        draw_readings(np.zeros((10, 10), np.uint8), [])


def test_track_labels_show_id_stable_and_raw_text() -> None:
    tracker = Tracker()
    for i in range(5):
        update = tracker.update(i, i / 30, [reading("221")])
    update = tracker.update(5, 5 / 30, [reading("227")])
    labels, confirmed = track_labels([reading("227")], update)
    tid = update.assignments[0]
    assert labels == [f"#{tid} 221 [227]"]
    assert confirmed == [True]
    labels, confirmed = track_labels([reading("5")], None)
    assert labels == ["5 (0.90)"] and confirmed == [False]


def test_annotate_colours_confirmed_tracks(frame: np.ndarray) -> None:
    tracker = Tracker()
    first = tracker.update(0, 0.0, [reading("47")])
    out = annotate(frame, [reading("47")], first)
    assert has_colour(out, TENTATIVE_COLOUR) and not has_colour(out, CONFIRMED_COLOUR)
    for i in range(1, 5):
        update = tracker.update(i, i / 30, [reading("47")])
    out = annotate(frame, [reading("47")], update)
    assert has_colour(out, CONFIRMED_COLOUR)


def test_hud_draws_in_the_corner_only(frame: np.ndarray) -> None:
    hud = HudInfo(fps=31.5, latency_ms=42.0, frame_index=7, dropped=3)
    assert hud.lines() == ["FPS  31.5  latency   42 ms", "frame 7  dropped 3"]
    out = draw_hud(frame.copy(), hud)
    changed = np.any(out != frame, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any()
    assert ys.max() < 80 and xs.max() < 300, "the HUD stays in the top-left corner"
    assert np.array_equal(draw_hud(frame.copy(), HudInfo()), frame), "empty HUD draws nothing"
    annotated = annotate(frame, [], None, hud)
    assert np.array_equal(annotated, out)
