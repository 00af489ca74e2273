"""Detector and classifier datasets over SVHN-format fixtures."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from svhn_fixtures import corrupt_file, make_32x32_mat, make_crops_npz, make_svhn_split
from torch.utils.data import DataLoader

from recognizer.models.preprocess import crop_digits, crops_to_tensor, frame_to_tensor
from train.datasets import (
    CropDataset,
    DatasetError,
    load_split,
    open_crops,
)
from train.detection_dataset import DetectionDataset, detection_collate
from train.svhn import SVHNFormatError, SVHNImage, write_digitstruct

REAL = Path("/work/shared/data/svhn_real")


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, list[SVHNImage]]:
    return make_svhn_split(tmp_path / "train", n_images=4, seed=5)


# --------------------------------------------------------------------------- detection


def test_detection_items_match_files_and_annotations(split) -> None:
    root, records = split
    ds = DetectionDataset(root)
    assert len(ds) == 4 and ds.records == records and ds.skipped == []
    for i, record in enumerate(records):
        image, target = ds[i]
        expected = frame_to_tensor(cv2.imread(str(root / record.name)))
        assert image.dtype == torch.float32 and torch.equal(image, expected)
        assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (len(record), 4)
        np.testing.assert_allclose(target["boxes"].numpy(), record.xyxy)
        assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == [1] * len(record)
        assert target["digits"].tolist() == record.digits.tolist()
        assert target["image_id"] == i


def test_boxes_are_clipped_and_degenerate_boxes_dropped(tmp_path: Path) -> None:
    root, records = make_svhn_split(tmp_path / "s", n_images=1, numbers=[[4, 2, 7]])
    h, w = cv2.imread(str(root / "1.png")).shape[:2]
    boxes = np.array([[-1, -2, 12, 40], [w - 5, 3, 20, 10], [w + 3, 3, 5, 5]], np.float32)  # last: outside
    write_digitstruct(root / "digitStruct.mat", [SVHNImage("1.png", boxes, [4, 2, 7])])
    _, target = DetectionDataset(root)[0]
    np.testing.assert_allclose(target["boxes"].numpy(), [[0, 0, 11, min(38, h)], [w - 5, 3, w, 13]])
    assert target["digits"].tolist() == [4, 2] and target["labels"].tolist() == [1, 1]


def test_labels_json_split(tmp_path: Path) -> None:
    root, records = make_svhn_split(tmp_path / "full", n_images=3, annotations="json")
    ds = DetectionDataset(root)
    assert [r.name for r in ds.records] == ["train/1.png", "train/2.png", "train/3.png"]
    image, target = ds[1]
    assert image.shape[0] == 3 and target["digits"].tolist() == records[1].digits.tolist()
    # The annotation file itself names the split too.
    assert len(DetectionDataset(root / "labels.json")) == 3


def test_listed_but_missing_image_is_skipped_with_a_warning(split, caplog: pytest.LogCaptureFixture) -> None:
    root, records = split
    (root / records[1].name).unlink()
    with caplog.at_level(logging.WARNING):
        ds = DetectionDataset(root)
    assert len(ds) == 3
    assert ds.skipped == [(records[1].name, "missing")]
    assert [t["image_id"] for _, t in (ds[i] for i in range(3))] == [0, 2, 3]
    assert any("skipping 1 of 4" in r.getMessage() for r in caplog.records)


def test_corrupt_png_is_skipped_not_fatal(split, caplog: pytest.LogCaptureFixture) -> None:
    root, records = split
    corrupt_file(root / records[2].name, "truncate")
    verified = DetectionDataset(root, verify=True)
    assert len(verified) == 3 and verified.skipped == [(records[2].name, "unreadable image")]

    lazy = DetectionDataset(root)
    assert len(lazy) == 4
    with caplog.at_level(logging.WARNING):
        image, target = lazy[2]  # the next readable image comes back in its place
    assert target["image_id"] == 3 and image.shape[0] == 3
    assert lazy.skipped == [(records[2].name, "unreadable image")]
    assert any(records[2].name in r.getMessage() for r in caplog.records)
    with pytest.raises(DatasetError, match="unreadable"):
        lazy.load_image(2)


def test_empty_split_and_nothing_readable_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    write_digitstruct(empty / "digitStruct.mat", [])
    with pytest.raises(DatasetError, match="lists no images"):
        DetectionDataset(empty)
    root, records = make_svhn_split(tmp_path / "gone", n_images=2)
    for r in records:
        (root / r.name).unlink()
    with pytest.raises(DatasetError, match="none of the 2 selected images"):
        DetectionDataset(root)
    with pytest.raises(DatasetError, match="neither digitStruct.mat nor labels.json"):
        DetectionDataset(tmp_path)
    with pytest.raises(DatasetError, match="no such file or folder"):
        DetectionDataset(tmp_path / "nope")


def test_damaged_annotations_raise_svhn_format_error(split) -> None:
    root, _ = split
    corrupt_file(root / "digitStruct.mat", "truncate")
    with pytest.raises(SVHNFormatError, match="digitStruct.mat"):
        DetectionDataset(root, cache=False)


def test_subset_by_indices_and_names(split) -> None:
    root, records = split
    assert [r.name for r in DetectionDataset(root, indices=[3, 1]).records] == ["4.png", "2.png"]
    by_name = DetectionDataset(root, names=["3.png", "1.png"])
    assert [r.name for r in by_name.records] == ["3.png", "1.png"]
    assert by_name[0][1]["image_id"] == 2
    with pytest.raises(DatasetError, match="'9.png' is not in the annotations"):
        DetectionDataset(root, names=["9.png"])
    with pytest.raises(DatasetError, match="out of range"):
        DetectionDataset(root, indices=[7])
    with pytest.raises(DatasetError, match="matches none"):
        DetectionDataset(root, indices=[])


def test_transforms_receive_bgr_and_xyxy(split) -> None:
    root, records = split

    def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert image.dtype == np.uint8 and image.shape[2] == 3
        w = image.shape[1]
        flipped = boxes.copy()
        flipped[:, [0, 2]] = w - boxes[:, [2, 0]]
        return np.ascontiguousarray(image[:, ::-1]), flipped

    image, target = DetectionDataset(root, transforms=hflip)[1]
    original = cv2.imread(str(root / records[1].name))
    assert torch.equal(image, frame_to_tensor(np.ascontiguousarray(original[:, ::-1])))
    w = original.shape[1]
    np.testing.assert_allclose(target["boxes"][:, 0].numpy(), np.clip(w - records[1].xyxy[:, 2], 0, w))

    def drop_all(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return image, boxes[:0]

    with pytest.raises(ValueError, match="same boxes"):
        DetectionDataset(root, transforms=drop_all)[1]


def test_dataloader_with_detection_collate(split) -> None:
    root, _ = split
    loader = DataLoader(DetectionDataset(root), batch_size=3, collate_fn=detection_collate)
    images, targets = next(iter(loader))
    assert isinstance(images, list) and len(images) == 3 and len(targets) == 3
    assert [t["image_id"] for t in targets] == [0, 1, 2]


def test_load_split_prefers_digitstruct(tmp_path: Path) -> None:
    root, _ = make_svhn_split(tmp_path / "both", n_images=2, annotations="both")
    split = load_split(root)
    assert split.annotation_file.name == "digitStruct.mat" and split.records[0].name == "1.png"


@pytest.mark.skipif(not (REAL / "full/labels.json").is_file(), reason="real SVHN sample not available")
def test_real_sample_images_open() -> None:
    ds = DetectionDataset(REAL / "full", names=["train/1.png", "2.png"])
    image, target = ds[0]
    assert image.shape[1:] == (350, 741)
    assert target["digits"].tolist() == [1, 9]


# --------------------------------------------------------------------------- crops


def test_crops_from_svhn_dir_use_shared_cropping(split) -> None:
    root, records = split
    ds = CropDataset.from_svhn_dir(root, pad=0.1)
    expected = np.concatenate([crop_digits(cv2.imread(str(root / r.name)), r.xyxy, pad=0.1) for r in records])
    np.testing.assert_array_equal(ds.images, expected)
    assert ds.labels.tolist() == [int(d) for r in records for d in r.digits]
    assert ds.source_image.tolist() == [i + 1 for i, r in enumerate(records) for _ in r.digits]
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and torch.equal(x, crops_to_tensor(expected[:1])[0]) and y == ds.labels[0]


def test_crops_from_svhn_dir_skip_missing_images(split) -> None:
    root, records = split
    (root / records[0].name).unlink()
    ds = CropDataset.from_svhn_dir(root)
    assert len(ds) == sum(len(r) for r in records[1:]) and ds.skipped == [(records[0].name, "missing")]


def test_crops_from_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)  # RGB
    for d, crop, name in [(0, crops[0], "7_0.png"), (3, crops[1], "7_1.png"), (3, crops[2], "12_0.png")]:
        (tmp_path / str(d)).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / str(d) / name), crop[:, :, ::-1])  # files are BGR
    (tmp_path / "9").mkdir()
    big = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "9" / "x.png"), big)
    (tmp_path / "9" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "9" / "notes.txt").write_text("ignored")
    ds = CropDataset.from_folder(tmp_path)
    # Files are read in sorted order per digit folder: 0/7_0, 3/12_0, 3/7_1, 9/x.
    assert ds.labels.tolist() == [0, 3, 3, 9]
    np.testing.assert_array_equal(ds.images[:3], crops[[0, 2, 1]])
    np.testing.assert_array_equal(ds.images[3], crop_digits(big, np.array([[0, 0, 20, 40]]), square=False)[0])
    assert ds.source_image.tolist() == [7, 12, 7, -1]
    assert len(ds.skipped) == 1 and ds.skipped[0][0].endswith("bad.png")


def test_crops_from_mat_and_npz(tmp_path: Path) -> None:
    X, digits = make_32x32_mat(tmp_path / "test_32x32.mat", n=15)
    ds = CropDataset.from_mat(tmp_path / "test_32x32.mat")
    np.testing.assert_array_equal(ds.images, X)
    assert ds.labels.tolist() == digits.tolist() and 0 in ds.labels.tolist()

    arrays = make_crops_npz(tmp_path / "crops.npz", n=10)
    npz = CropDataset.from_npz(tmp_path / "crops.npz", indices=[1, 4])
    np.testing.assert_array_equal(npz.images, arrays["X"][[1, 4]])
    assert npz.source_image.tolist() == [2, 5]
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(DatasetError, match="expected X"):
        CropDataset.from_npz(tmp_path / "bad.npz")


def test_crop_items_augment_subset_concat(tmp_path: Path) -> None:
    X, digits = make_32x32_mat(tmp_path / "a.mat", n=10)
    calls = []

    def invert(crop: np.ndarray) -> np.ndarray:
        calls.append(crop.shape)
        return 255 - crop

    ds = CropDataset.from_mat(tmp_path / "a.mat", augment=invert)
    x, y = ds[2]
    assert torch.equal(x, crops_to_tensor((255 - X[2])[None])[0]) and y == digits[2] and calls == [(32, 32, 3)]
    sub = ds.subset([0, 2])
    assert len(sub) == 2 and sub.labels.tolist() == digits[[0, 2]].tolist()
    both = CropDataset.concat(sub, CropDataset.from_mat(tmp_path / "a.mat"))
    assert len(both) == 12 and both.source_image is None
    bad = CropDataset(X, digits, augment=lambda c: c[:16])
    with pytest.raises(ValueError, match="augment returned"):
        bad[0]


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((2, 28, 28, 3), np.uint8), [1, 2], r"\(N, 32, 32, 3\) uint8"),
        (np.zeros((2, 32, 32, 3), np.float32), [1, 2], "uint8"),
        (np.zeros((2, 32, 32, 3), np.uint8), [1], "one per crop"),
        (np.zeros((1, 32, 32, 3), np.uint8), [11], "not a digit label"),
    ],
)
def test_crop_dataset_validates(images, labels, match) -> None:
    with pytest.raises(DatasetError, match=match):
        CropDataset(images, labels)


def test_crop_dataset_raw_label_10_means_zero() -> None:
    ds = CropDataset(np.zeros((2, 32, 32, 3), np.uint8), [10, 3])
    assert ds.labels.tolist() == [0, 3]


@pytest.mark.parametrize(
    "kind, expect",
    [
        ("crop_folder", "from_folder"),
        ("svhn_dir", "from_svhn_dir"),
        ("digitstruct_file", "from_svhn_dir"),
        ("mat", "from_mat"),
        ("npz", "from_npz"),
        ("crops_root", "did you mean"),
        ("empty_dir", "without digit folders"),
        ("txt", "unknown kind of file"),
        ("missing", "no such file or folder"),
    ],
)
def test_open_crops_picks_the_reader(tmp_path: Path, kind: str, expect: str) -> None:
    if kind in ("crop_folder", "crops_root"):
        (tmp_path / "SVHN_crops/train/5").mkdir(parents=True)
        crop = np.full((32, 32, 3), 9, np.uint8)
        cv2.imwrite(str(tmp_path / "SVHN_crops/train/5/1_0.png"), crop)
        spec = tmp_path / ("SVHN_crops/train" if kind == "crop_folder" else "SVHN_crops")
    elif kind in ("svhn_dir", "digitstruct_file"):
        root, _ = make_svhn_split(tmp_path / "train", n_images=2)
        spec = root if kind == "svhn_dir" else root / "digitStruct.mat"
    elif kind == "mat":
        make_32x32_mat(tmp_path / "x.mat", n=4)
        spec = tmp_path / "x.mat"
    elif kind == "npz":
        make_crops_npz(tmp_path / "x.npz", n=4)
        spec = tmp_path / "x.npz"
    elif kind == "empty_dir":
        spec = tmp_path
    elif kind == "txt":
        spec = tmp_path / "x.txt"
        spec.write_text("hello")
    else:
        spec = tmp_path / "absent"
    if expect.startswith("from_"):
        ds = open_crops(str(spec))
        assert isinstance(ds, CropDataset) and len(ds) > 0
        assert ds.images.shape[1:] == (32, 32, 3)
        if expect == "from_folder":
            assert ds.labels.tolist() == [5]
        elif expect == "from_npz":
            assert ds.source_image is not None and ds.source_image.tolist() == [1, 2, 3, 4]
        elif expect == "from_svhn_dir":
            assert ds.description.endswith("digitStruct.mat")
    else:
        with pytest.raises(DatasetError, match=expect) as info:
            open_crops(str(spec))
        assert "\n" not in str(info.value)


@pytest.mark.skipif(not (REAL / "crops/train_crops_1083.npz").is_file(), reason="real SVHN sample not available")
def test_real_crops_npz() -> None:
    ds = open_crops(str(REAL / "crops/train_crops_1083.npz"))
    assert len(ds) == 1083 and ds.source_image is not None
    held_out = (ds.source_image >= 129) & (ds.source_image <= 256)
    assert 0 < held_out.sum() < 1083
