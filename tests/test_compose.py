from __future__ import annotations

import math

import numpy as np
import pytest

from recognizer.models.compose import compose_readings


def row(digits, x0=10.0, y0=20.0, w=14.0, h=28.0, gap=4.0, angle_deg=0.0):
    """Boxes of a number written left to right, optionally rotated about its first digit."""
    boxes = []
    a = math.radians(angle_deg)
    for k, _ in enumerate(digits):
        cx = x0 + k * (w + gap) + w / 2
        cy = y0 + h / 2
        # rotate the centre about the first digit's centre
        dx, dy = cx - (x0 + w / 2), 0.0
        rx = x0 + w / 2 + dx * math.cos(a) - dy * math.sin(a)
        ry = cy + dx * math.sin(a) + dy * math.cos(a)
        boxes.append([rx - w / 2, ry - h / 2, rx + w / 2, ry + h / 2])
    return boxes, list(digits)


def compose(boxes, digits, det=None, cls=None):
    n = len(boxes)
    det = det if det is not None else [0.9] * n
    cls = cls if cls is not None else [0.8] * n
    return compose_readings(np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(digits), np.array(det), np.array(cls))


def shuffled(boxes, digits, seed=0):
    order = np.random.default_rng(seed).permutation(len(boxes))
    return [boxes[i] for i in order], [digits[i] for i in order]


CASES = {
    "single": (row([7]), ["7"]),
    "multi-digit": (shuffled(*row([2, 2, 1, 0])), ["2210"]),
    "rotated 15 deg": (shuffled(*row([1, 2, 3, 4], angle_deg=15)), ["1234"]),
    "rotated -20 deg": (shuffled(*row([9, 0, 5], angle_deg=-20)), ["905"]),
    "empty": (([], []), []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layouts(name):
    (boxes, digits), expected = CASES[name]
    assert [r.text for r in compose(boxes, digits)] == expected


def test_two_numbers_in_one_frame():
    b1, d1 = row([4, 2], x0=10)
    b2, d2 = row([1, 7, 3], x0=200, y0=150, w=20, h=40)
    readings = compose(b1 + b2, d1 + d2)
    assert sorted(r.text for r in readings) == ["173", "42"]
    # the number with more evidence comes first
    assert readings[0].text == "173"


def test_two_numbers_side_by_side_far_apart():
    b1, d1 = row([1, 2], x0=0)
    b2, d2 = row([3, 4], x0=150)
    assert sorted(r.text for r in compose(b1 + b2, d1 + d2)) == ["12", "34"]


def test_overlapping_duplicates_are_merged_keeping_the_stronger():
    boxes, digits = row([5, 6])
    # a second, slightly shifted box on the first digit, read wrongly with a lower score
    dup = [boxes[0][0] + 1, boxes[0][1] + 1, boxes[0][2] + 1, boxes[0][3]]
    inner = [boxes[1][0] + 2, boxes[1][1] + 6, boxes[1][2] - 2, boxes[1][3] - 6]  # nested inside digit 2
    readings = compose(boxes + [dup, inner], digits + [8, 1], det=[0.9, 0.9, 0.6, 0.5], cls=[0.9, 0.9, 0.5, 0.5])
    assert [r.text for r in readings] == ["56"]
    assert len(readings[0].digits) == 2


def test_reading_fields():
    boxes, digits = row([3, 1])
    (r,) = compose(boxes, digits, det=[0.5, 1.0], cls=[0.5, 1.0])
    assert r.confidence == pytest.approx(math.sqrt(0.25 * 1.0))
    assert r.box[0] == pytest.approx(boxes[0][0]) and r.box[2] == pytest.approx(boxes[1][2])
    assert [d.digit for d in r.digits] == [3, 1]
    assert r.to_dict()["text"] == "31"


def test_stacked_digits_are_separate_numbers():
    top = [[10, 10, 24, 38]]
    bottom = [[10, 60, 24, 88]]
    assert sorted(r.text for r in compose(top + bottom, [1, 2])) == ["1", "2"]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="equal lengths"):
        compose_readings(np.zeros((2, 4)), np.array([1]), np.array([1.0, 1.0]), np.array([1.0, 1.0]))


def test_a_shifted_second_box_on_one_digit_is_a_duplicate():
    # "17": the detector put a second, shifted box on the 7 (IoU 0.41, below DUPLICATE_IOU).
    boxes, digits = row([1, 7], gap=2.0)
    shifted = [boxes[1][0] + 5.0, boxes[1][1] - 4.0, boxes[1][2] + 5.0, boxes[1][3] + 2.0]
    (r,) = compose(boxes + [shifted], digits + [7], det=[0.9, 0.95, 0.8])
    assert r.text == "17"
    # touching neighbours that share a little of their width stay two digits
    tight, _ = row([4, 4], gap=-3.0)
    assert [x.text for x in compose(tight, [4, 4])] == ["44"]
