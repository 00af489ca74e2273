"""recognizer.io.imageio: the one image decoder, used by the recognizer and the training tools."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognizer.io.imageio import ImageReadError, load_image, read_image, read_image_file


def _png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_load_image_says_why_and_whether_the_file_is_missing(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    (tmp_path / "file.png").write_bytes(b"x")
    cases = {
        "nothing.png": ("no such file", True),
        "folder.png": ("is a directory", True),
        "file.png/inside.png": ("cannot be read", True),  # a path through a file
        "garbage.png": ("not a readable image", False),
    }
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        cases["pipe.png"] = ("not a regular file", False)
    for name, (why, missing) in cases.items():
        with pytest.raises(ImageReadError, match=why) as info:
            load_image(tmp_path / name)
        assert info.value.missing is missing, name
        image, reason, original = read_image(tmp_path / name)
        assert image is None and original is None and reason == str(info.value)


def test_large_images_are_downscaled_unless_asked_for_full_size(tmp_path: Path) -> None:
    path = _png(tmp_path / "wide.png", np.full((30, 200, 3), 90, np.uint8))
    small, original = load_image(path, max_side=100)
    assert small.shape == (15, 100, 3) and original == (200, 30)
    full, original = load_image(path, max_side=None)
    assert full.shape == (30, 200, 3) and original is None
    image, why = read_image_file(path, max_side=100)
    assert why == "" and np.array_equal(image, small)


def test_training_reads_images_through_the_same_decoder(tmp_path: Path) -> None:
    from train.datasets import read_image as train_read_image

    rgba = np.zeros((40, 5000, 4), np.uint8)  # wider than MAX_SIDE, partly transparent
    rgba[:, :2500] = (10, 20, 30, 255)
    path = _png(tmp_path / "a.png", rgba)
    image, reason = train_read_image(path)
    assert reason is None and image.shape == (40, 5000, 3)  # full size: boxes are in file pixels
    assert np.array_equal(image, load_image(path, max_side=None)[0])
    assert (image[0, 0] == (10, 20, 30)).all() and (image[0, -1] == 255).all()  # transparent: white
    assert train_read_image(tmp_path / "missing.png") == (None, "missing")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert train_read_image(tmp_path / "bad.png") == (None, "unreadable image")
