"""train.classifier (one tiny CPU training run, resume, fine-tune, bad input) and the crop
augmentation it uses (train.augment)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train import augment
from train.common import UsageError, in_ranges, parse_ranges

# --------------------------------------------------------------------------- crop augmentation


def _crop(seed: int = 0) -> np.ndarray:
    from svhn_fixtures import draw_crop

    return draw_crop(7, np.random.default_rng(seed))


def test_crop_augment_keeps_shape_dtype_and_repeats_per_seed() -> None:
    aug = augment.crop_augment("full")
    crop = _crop()
    a = aug(crop, np.random.default_rng(5))
    b = aug(crop, np.random.default_rng(5))
    c = aug(crop, np.random.default_rng(6))
    assert a.shape == crop.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Over a few draws the "full" profile really changes crops.
    changed = [not np.array_equal(aug(crop, np.random.default_rng(s)), crop) for s in range(10)]
    assert sum(changed) >= 8


def test_crop_profiles_none_and_unknown() -> None:
    assert augment.crop_augment("none") is None
    with pytest.raises(ValueError, match="'wild' is unknown"):
        augment.crop_augment("wild")


def test_photometric_pieces_do_what_they_say() -> None:
    crop = _crop()
    rng = np.random.default_rng(0)
    assert np.array_equal(augment.invert(augment.invert(crop)), crop)
    assert int(augment.invert(crop)[0, 0, 0]) == 255 - int(crop[0, 0, 0])
    assert np.array_equal(augment.color_jitter(crop, rng), crop)  # all strengths 0
    assert np.array_equal(augment.random_affine(crop, rng), crop)  # no shift/scale/rotation
    gray = augment.to_gray(crop)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    blurred = augment.gaussian_blur(crop, 1.5)
    assert blurred.std() < crop.std()
    jpg = augment.jpeg(crop, 40)
    assert jpg.shape == crop.shape and 0 < np.abs(jpg.astype(int) - crop).mean() < 20
    noisy = augment.gaussian_noise(crop, rng, 8.0)
    assert 2 < np.abs(noisy.astype(int) - crop).mean() < 12


def test_random_affine_shift_moves_the_digit() -> None:
    crop = np.zeros((32, 32, 3), np.uint8)
    crop[12:20, 14:18] = 255
    moved = augment.random_affine(crop, np.random.default_rng(1), shift=0.2)
    ys, xs = np.nonzero(moved[..., 0] > 128)
    assert len(xs) > 0
    assert (xs.mean(), ys.mean()) != pytest.approx((15.5, 15.5), abs=0.5)


@pytest.mark.parametrize(
    ("text", "inside", "outside", "error"),
    [
        ("1-128,257-", [1, 128, 257, 10_000], [0, 129, 256], None),
        ("129-256", [129, 200, 256], [128, 257], None),
        ("7", [7], [6, 8], None),
        ("-5", [0, 5], [6], None),
        ("", None, None, "empty"),
        ("3-1", None, None, "ends before it starts"),
        ("a-b", None, None, "not a number or range"),
    ],
)
def test_parse_ranges_table(text: str, inside: list[int], outside: list[int], error: str | None) -> None:
    if error:
        with pytest.raises(UsageError, match=error):
            parse_ranges(text)
        return
    ranges = parse_ranges(text)
    assert all(in_ranges(v, ranges) for v in inside)
    assert not any(in_ranges(v, ranges) for v in outside)
