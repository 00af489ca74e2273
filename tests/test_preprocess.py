from __future__ import annotations

import numpy as np
import pytest

from recognizer.models.labels import svhn_to_digit, svhn_to_digits
from recognizer.models.preprocess import crop_digits, crops_to_tensor, frame_to_tensor, square_boxes, tensor_to_crops


def test_frame_to_tensor_is_rgb_chw_unit_range():
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    t = frame_to_tensor(img)
    assert t.shape == (3, 4, 6)
    assert float(t[2].max()) == 1.0 and float(t[0].max()) == 0.0


def test_square_boxes_widen_the_short_side():
    sq = square_boxes(np.array([[10, 0, 20, 40]]))
    assert np.allclose(sq, [[-5, 0, 35, 40]])
    assert np.allclose(square_boxes(np.array([[0, 0, 10, 10]]), pad=0.5), [[-2.5, -2.5, 12.5, 12.5]])


def test_crop_digits_takes_the_right_window_and_handles_edges():
    img = np.zeros((50, 50, 3), np.uint8)
    img[10:30, 20:30] = (0, 0, 255)  # red digit in BGR
    crops = crop_digits(img, np.array([[20, 10, 30, 30], [45, 45, 60, 60], [100, 100, 120, 120]]))
    assert crops.shape == (3, 32, 32, 3) and crops.dtype == np.uint8
    # crop 0 is RGB: the red digit in the middle columns, black neighbours at the sides
    assert crops[0, 16, 16, 0] == 255 and crops[0, 16, 16, 2] == 0
    assert crops[0, 16, 2].sum() == 0
    assert crops[2].sum() == 0  # wholly outside the frame
    assert crop_digits(img, np.zeros((0, 4))).shape == (0, 32, 32, 3)


def test_crops_tensor_round_trip():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    t = crops_to_tensor(crops)
    assert t.shape == (3, 3, 32, 32)
    assert np.array_equal(tensor_to_crops(t), crops)
    with pytest.raises(ValueError, match="expected \\(N, S, S, 3\\) uint8"):
        crops_to_tensor(crops.astype(np.float32))


@pytest.mark.parametrize("raw, digit", [(10, 0), (1, 1), (9, 9), (0, 0), (10.0, 0)])
def test_svhn_labels(raw, digit):
    assert svhn_to_digit(raw) == digit


@pytest.mark.parametrize("raw", [11, -1, 2.5])
def test_svhn_bad_labels(raw):
    with pytest.raises(ValueError, match="not a digit label"):
        svhn_to_digit(raw)


def test_svhn_vectorised():
    assert svhn_to_digits(np.array([[10], [3]])).tolist() == [0, 3]
    with pytest.raises(ValueError, match="12"):
        svhn_to_digits(np.array([12]))
