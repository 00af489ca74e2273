"""SVHN file formats: digitStruct.mat (real HDF5 layout), labels.json, *_32x32.mat."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from svhn_fixtures import corrupt_file, make_32x32_mat, make_svhn_split

from train import svhn
from train.svhn import (
    SVHNFormatError,
    SVHNImage,
    read_32x32_mat,
    read_digitstruct,
    read_labels_json,
    write_32x32_mat,
    write_digitstruct,
)

REAL_LABELS = Path("/work/shared/data/svhn_real/full/labels.json")


def _records() -> list[SVHNImage]:
    return [
        SVHNImage("1.png", [[246, 77, 81, 219]], [1]),
        SVHNImage("2.png", [[77, 29, 23, 32], [98, 25, 26, 32], [-1, 3, 10, 30]], [2, 0, 3]),
        SVHNImage("10.png", [[5, 6, 7, 8]], [0]),
        SVHNImage("123.png", [[1, 2, 3, 4], [5, 6, 7, 8]], [9, 9]),
    ]


# ---------------------------------------------------------------- SVHNImage


def test_svhn_image_xyxy_text_and_equality() -> None:
    im = SVHNImage("2.png", [[77, 29, 23, 32], [-1, 3, 10, 30]], [2, 0])
    np.testing.assert_array_equal(im.xyxy, [[77, 29, 100, 61], [-1, 3, 9, 33]])
    assert im.xyxy.dtype == np.float32 and im.boxes.dtype == np.float32 and im.digits.dtype == np.int64
    assert im.text == "20" and len(im) == 2
    assert im == SVHNImage("2.png", np.array(im.boxes), np.array(im.digits))
    assert im != SVHNImage("2.png", im.boxes + 1, im.digits)
    assert len({im, SVHNImage("2.png", im.boxes, im.digits)}) == 1
    with pytest.raises(ValueError):
        im.boxes[0, 0] = 5  # frozen: arrays are read-only


@pytest.mark.parametrize(
    "boxes, digits, match",
    [
        ([[1, 2, 3, 4]], [1, 2], "2 digits"),
        ([[1, 2, 3, 4]], [10], "0..9"),
        ([[1, 2, 3, 4]], [-1], "0..9"),
    ],
)
def test_svhn_image_rejects_inconsistent_values(boxes, digits, match) -> None:
    with pytest.raises(ValueError, match=match):
        SVHNImage("x.png", boxes, digits)


# ---------------------------------------------------------------- digitStruct.mat layout


def test_written_digitstruct_has_svhns_hdf5_layout(tmp_path: Path) -> None:
    path = write_digitstruct(tmp_path / "digitStruct.mat", _records())
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(path, "r") as f:
        assert f.userblock_size == 512
        names, bbox = f["digitStruct/name"], f["digitStruct/bbox"]
        assert names.shape == (4, 1) and bbox.shape == (4, 1)
        assert h5py.check_dtype(ref=names.dtype) is h5py.Reference
        chars = f[names[1, 0]]
        assert chars.dtype == np.uint16 and chars.shape == (5, 1)
        assert "".join(chr(c) for c in chars[()].ravel()) == "2.png"
        one = f[bbox[0, 0]]
        assert sorted(one.keys()) == ["height", "label", "left", "top", "width"]
        assert one["left"].shape == (1, 1) and one["left"].dtype == np.float64
        assert one["height"][0, 0] == 219.0
        many = f[bbox[1, 0]]
        assert many["label"].shape == (3, 1) and h5py.check_dtype(ref=many["label"].dtype) is h5py.Reference
        raw_labels = [f[r][()] for r in many["label"][()].ravel()]
        assert all(v.shape == (1, 1) and v.dtype == np.float64 for v in raw_labels)
        # MATLAB's class tags, as MATLAB writes them.
        assert f[many["label"][0, 0]].attrs["MATLAB_class"] == b"double"
        assert one["left"].attrs["MATLAB_class"] == b"double"
        assert chars.attrs["MATLAB_class"] == b"char" and f["digitStruct"].attrs["MATLAB_class"] == b"struct"
        # SVHN's raw label 10 for the digit 0, both in the one-box and the many-box encoding.
        assert [float(v[0, 0]) for v in raw_labels] == [2.0, 10.0, 3.0]
        assert f[bbox[2, 0]]["label"][0, 0] == 10.0


def test_digitstruct_round_trip(tmp_path: Path) -> None:
    records = _records()
    path = write_digitstruct(tmp_path / "digitStruct.mat", records)
    back = read_digitstruct(path, cache=False)
    assert back == records
    assert [r.text for r in back] == ["1", "203", "0", "99"]


def _write_by_hand(path: Path) -> None:
    """digitStruct written independently of train.svhn: no user block, int label, refs elsewhere."""
    with h5py.File(path, "w") as f:
        pool = f.create_group("pool")
        g = f.create_group("digitStruct")

        def chars(s: str) -> h5py.Reference:
            return pool.create_dataset(f"n{s}", data=np.array([[ord(c)] for c in s], np.uint16)).ref

        def scalar(v: float, k: str) -> h5py.Reference:
            return pool.create_dataset(k, data=np.array([[v]], np.float64)).ref

        b1 = pool.create_group("b1")
        for k, v in dict(height=30.0, label=10.0, left=4.0, top=5.0, width=12.0).items():
            b1.create_dataset(k, data=np.array([[v]]))
        b2 = pool.create_group("b2")
        values = dict(height=[20, 21], label=[10, 7], left=[1, 15], top=[2, 3], width=[11, 12])
        for k, vs in values.items():
            b2.create_dataset(k, data=np.array([[scalar(v, f"{k}{j}")] for j, v in enumerate(vs)], dtype=h5py.ref_dtype))
        g.create_dataset("name", data=np.array([[chars("a.png")], [chars("bb.png")]], dtype=h5py.ref_dtype))
        g.create_dataset("bbox", data=np.array([[b1.ref], [b2.ref]], dtype=h5py.ref_dtype))


def test_reader_handles_a_file_not_written_by_our_writer(tmp_path: Path) -> None:
    path = tmp_path / "digitStruct.mat"
    _write_by_hand(path)
    back = read_digitstruct(path, cache=False)
    assert [r.name for r in back] == ["a.png", "bb.png"]
    np.testing.assert_array_equal(back[0].boxes, [[4, 5, 12, 30]])
    np.testing.assert_array_equal(back[0].digits, [0])
    np.testing.assert_array_equal(back[1].boxes, [[1, 2, 11, 20], [15, 3, 12, 21]])
    np.testing.assert_array_equal(back[1].digits, [0, 7])


def test_fixture_split_round_trips(tmp_path: Path) -> None:
    root, records = make_svhn_split(tmp_path / "train", n_images=5, seed=3)
    assert len(records[0]) == 1 and len(records[1]) > 1 and 0 in records[1].digits
    assert read_digitstruct(root / "digitStruct.mat", cache=False) == records
    assert all((root / r.name).is_file() for r in records)


# ---------------------------------------------------------------- bad files


def _not_digitstruct(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=np.zeros(3))


@pytest.mark.parametrize(
    "damage, match",
    [
        ("missing", "no such file"),
        ("truncate", "truncated"),
        ("garbage", "not a readable"),
        ("empty", "not a readable"),
        ("other_hdf5", "digitStruct/name"),
    ],
)
def test_bad_digitstruct_gives_a_clear_error_naming_the_file(tmp_path: Path, damage: str, match: str) -> None:
    path = tmp_path / "digitStruct.mat"
    if damage == "other_hdf5":
        _not_digitstruct(path)
    elif damage != "missing":
        write_digitstruct(path, _records() * 20)
        corrupt_file(path, damage)
    with pytest.raises(SVHNFormatError, match=match) as info:
        read_digitstruct(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_damaged_entry_is_reported_with_its_index(tmp_path: Path) -> None:
    path = tmp_path / "digitStruct.mat"
    write_digitstruct(path, _records())
    with h5py.File(path, "r+") as f:
        ds = f["#refs#"].create_dataset("broken", data=np.zeros((1, 1)))
        table = f["digitStruct/bbox"][()]
        table[2, 0] = ds.ref  # a bbox entry that is not a struct group
        f["digitStruct/bbox"][...] = table
    with pytest.raises(SVHNFormatError, match=r"image entry 2 is damaged"):
        read_digitstruct(path, cache=False)


def test_non_integer_label_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "digitStruct.mat"
    write_digitstruct(path, _records()[:1])
    with h5py.File(path, "r+") as f:
        f[f["digitStruct/bbox"][0, 0]]["label"][...] = 11.0
    with pytest.raises(SVHNFormatError, match="11"):
        read_digitstruct(path, cache=False)


# ---------------------------------------------------------------- cache


def test_cache_is_used_and_invalidated_by_a_changed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_digitstruct(tmp_path / "digitStruct.mat", _records())
    first = read_digitstruct(path)
    cache_file = tmp_path / "digitStruct.mat.cache.npz"
    assert cache_file.is_file()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed again although the cache is valid")

    monkeypatch.setattr(svhn, "_parse_digitstruct", no_parse)
    assert read_digitstruct(path) == first
    monkeypatch.undo()

    changed = _records()[:2]
    write_digitstruct(path, changed)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    assert read_digitstruct(path) == changed


def test_unwritable_cache_location_falls_back_and_damaged_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = write_digitstruct(data / "digitStruct.mat", _records())
    # A folder where the cache file should go: neither readable nor replaceable as a file.
    (data / "digitStruct.mat.cache.npz").mkdir()
    fallback = tmp_path / "cache"
    monkeypatch.setenv(svhn.CACHE_DIR_ENV, str(fallback))
    assert read_digitstruct(path) == _records()
    cached = list((fallback / "svhn").glob("*.npz"))
    assert len(cached) == 1
    cached[0].write_bytes(b"not an npz")
    assert read_digitstruct(path) == _records()
    with np.load(cached[0]) as z:  # rebuilt
        assert int(z["size"]) == path.stat().st_size


def test_parallel_parse_equals_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records() * 3
    path = write_digitstruct(tmp_path / "digitStruct.mat", records)
    monkeypatch.setattr(svhn, "_MIN_IMAGES_PER_WORKER", 2)
    assert read_digitstruct(path, cache=False, workers=3) == records


# ---------------------------------------------------------------- labels.json


def test_labels_json_round_trip_with_image_sizes(tmp_path: Path) -> None:
    root, records = make_svhn_split(tmp_path / "full", n_images=3, annotations="json")
    entries = json.loads((root / "labels.json").read_text())
    assert entries[0]["file"] == "train/1.png"
    assert {"width", "height", "md5", "boxes"} <= set(entries[0])
    assert len(entries[1]["boxes"][0]) == 5
    assert read_labels_json(root / "labels.json") == records


def test_labels_json_accepts_raw_label_10(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps([{"file": "a.png", "boxes": [[1, 2, 3, 4, 10], [5, 6, 7, 8, 3]]}]))
    (im,) = read_labels_json(path)
    np.testing.assert_array_equal(im.digits, [0, 3])


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ('{"file": "a.png"}', "expected a list"),
        ('[{"boxes": []}]', "entry 0"),
        ('[{"file": "a.png", "boxes": [[1, 2, 3]]}]', "entry 0"),
        ('[{"file": "a.png", "boxes": []}, {"file": "b.png", "boxes": [[1, 2, 3, 4, 12]]}]', "entry 1"),
    ],
)
def test_bad_labels_json(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "labels.json"
    path.write_text(text)
    with pytest.raises(SVHNFormatError, match=match) as info:
        read_labels_json(path)
    assert str(path) in str(info.value)


def test_missing_labels_json(tmp_path: Path) -> None:
    with pytest.raises(SVHNFormatError, match="no such file"):
        read_labels_json(tmp_path / "nope.json")


@pytest.mark.skipif(not REAL_LABELS.is_file(), reason="real SVHN sample not available")
def test_real_labels_json_sample() -> None:
    records = read_labels_json(REAL_LABELS)
    # The shared sample grew from train images 1..256 (554 boxes) to 1..2000 (4434) on 2026-12-01.
    assert len(records) in (256, 2000)
    assert sum(len(r) for r in records[:256]) == 554
    assert [r.name for r in records[:3]] == ["train/1.png", "train/2.png", "train/3.png"]
    assert records[0].name == "train/1.png" and records[0].text == "19"
    assert min(float(r.boxes[:, 0].min()) for r in records) == -1.0


# ---------------------------------------------------------------- 32x32 .mat


def test_32x32_mat_round_trip_and_official_layout(tmp_path: Path) -> None:
    import scipy.io

    path = tmp_path / "train_32x32.mat"
    X, digits = make_32x32_mat(path, n=12, seed=1)
    raw = scipy.io.loadmat(str(path))
    assert raw["X"].shape == (32, 32, 3, 12) and raw["X"].dtype == np.uint8
    assert raw["y"].shape == (12, 1)
    assert set(raw["y"].ravel().tolist()) == set(range(1, 11))  # 10 for 0, no 0
    X2, d2 = read_32x32_mat(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(d2, digits)
    assert d2.dtype == np.int64 and X2.flags["C_CONTIGUOUS"]


def test_32x32_mat_written_by_scipy_directly(tmp_path: Path) -> None:
    import scipy.io

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)
    scipy.io.savemat(str(tmp_path / "t.mat"), {"X": X, "y": y})
    X2, d2 = read_32x32_mat(tmp_path / "t.mat")
    np.testing.assert_array_equal(d2, [0, 1, 2, 0, 9])
    np.testing.assert_array_equal(X2[3], X[:, :, :, 3])


def test_32x32_mat_saved_as_v73_hdf5(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "t.mat", "w") as f:  # MATLAB -v7.3 stores dimensions reversed
        f["X"] = X.transpose(0, 3, 2, 1)
        f["y"] = np.array([[10, 1, 2, 3]], dtype=np.float64)
    X2, d2 = read_32x32_mat(tmp_path / "t.mat")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(d2, [0, 1, 2, 3])


@pytest.mark.parametrize("damage", ["missing", "truncate", "garbage", "wrong_vars"])
def test_bad_32x32_mat(tmp_path: Path, damage: str) -> None:
    import scipy.io

    path = tmp_path / "train_32x32.mat"
    if damage == "wrong_vars":
        scipy.io.savemat(str(path), {"images": np.zeros((2, 2))})
    elif damage != "missing":
        make_32x32_mat(path, n=40)
        corrupt_file(path, damage)
    with pytest.raises(SVHNFormatError) as info:
        read_32x32_mat(path)
    assert str(path) in str(info.value)


def test_write_32x32_mat_validates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\) uint8"):
        write_32x32_mat(tmp_path / "x.mat", np.zeros((2, 28, 28, 3), np.uint8), [1, 2])
    with pytest.raises(ValueError, match="one digit per crop"):
        write_32x32_mat(tmp_path / "x.mat", np.zeros((2, 32, 32, 3), np.uint8), [1])


def test_missing_scipy_gives_an_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train_32x32.mat"
    make_32x32_mat(path, n=3)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(ImportError, match=r"recognizer\[train\]"):
        read_32x32_mat(path)
