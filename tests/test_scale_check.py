"""train.scale_check: tiles that cover a photo, readings put back in its pixels, duplicates dropped."""
from __future__ import annotations

import numpy as np

from recognizer.types import DigitBox, Reading
from train.scale_check import merge_tiles, read_tiled, shifted, tile_boxes


def reading(text: str, conf: float, box: tuple[float, float, float, float]) -> Reading:
    w = (box[2] - box[0]) / len(text)
    digits = tuple(DigitBox((box[0] + i * w, box[1], box[0] + (i + 1) * w, box[3]), int(c), 0.9, 0.9) for i, c in enumerate(text))
    return Reading(text, conf, box, digits)


def test_tiles_cover_the_photo_and_overlap_by_a_quarter() -> None:
    assert tile_boxes(1000, 750, 1) == [(0, 0, 1000, 750)]
    tiles = tile_boxes(1000, 750, 3)
    assert len(tiles) == 9
    xs = sorted({(x1, x2) for x1, _, x2, _ in tiles})
    assert xs[0][0] == 0 and xs[-1][1] == 1000
    side = xs[0][1] - xs[0][0]
    assert all(abs((b[1] - b[0]) - side) <= 1 for b in xs)
    assert abs((xs[0][1] - xs[1][0]) - 0.25 * side) <= 1, "neighbours share a quarter of a tile"
    covered = np.zeros((750, 1000), bool)
    for x1, y1, x2, y2 in tiles:
        covered[y1:y2, x1:x2] = True
    assert covered.all()


def test_shifted_moves_the_number_and_its_digits() -> None:
    r = shifted(reading("12", 0.8, (10, 20, 30, 40)), 100, 50)
    assert r.box == (110, 70, 130, 90) and r.digits[0].box == (110, 70, 120, 90) and r.text == "12"


def test_merge_keeps_the_more_confident_of_two_reads_of_one_number() -> None:
    a = reading("221", 0.9, (100, 100, 160, 130))
    b = reading("21", 0.6, (120, 100, 160, 130))  # the same plate cut by a tile border
    c = reading("7", 0.5, (400, 300, 420, 330))
    assert [r.text for r in merge_tiles([[b], [a, c]])] == ["221", "7"]


class BrightSpot:
    """Reads "9" wherever a tile holds white pixels, boxed around them."""

    def recognize(self, images):  # noqa: ANN001, ANN201
        out = []
        for im in images:
            ys, xs = np.nonzero(im[:, :, 0] > 200)
            out.append([reading("9", 0.9, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))] if len(xs) else [])
        return out


def test_read_tiled_gives_boxes_in_the_photos_pixels_once() -> None:
    image = np.zeros((600, 800, 3), np.uint8)
    image[200:220, 250:270] = 255  # where four tiles overlap: each of them reads it
    assert sum(1 for x1, y1, x2, y2 in tile_boxes(800, 600, 3) if x1 <= 250 and 270 <= x2 and y1 <= 200 and 220 <= y2) == 4
    got = read_tiled(BrightSpot(), image, 3)
    assert [r.text for r in got] == ["9"]
    assert got[0].box == (250.0, 200.0, 270.0, 220.0)
