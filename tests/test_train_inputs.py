"""train.inputs (what the commands read: splits, image selections, crops, image batches) and
the pycocotools figures train.evaluate adds to its report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from train.common import UsageError
from train.inputs import clip_boxes, load_crops, read_batches, read_split, select_images


def test_read_split_names_the_option(tmp_path: Path) -> None:
    from svhn_fixtures import make_svhn_split

    root, records = make_svhn_split(tmp_path / "split", 3, seed=2)
    assert [r.name for r in read_split(root).records] == [r.name for r in records]
    with pytest.raises(UsageError, match=r"^--val '.*nope': no such folder"):
        read_split(tmp_path / "nope", "--val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"^--data '.*empty': .*neither digitStruct.mat nor labels.json"):
        read_split(tmp_path / "empty")


def test_select_images_by_number(tmp_path: Path) -> None:
    from svhn_fixtures import make_svhn_split

    root, _ = make_svhn_split(tmp_path / "split", 5, seed=2)
    assert select_images(str(root), None, "--train") == [0, 1, 2, 3, 4]
    assert select_images(str(root), "2-3,5-", "--train") == [1, 2, 4]
    with pytest.raises(UsageError, match="--val .*no images selected from 5"):
        select_images(str(root), "100-", "--val")


def test_clip_boxes_to_the_image() -> None:
    boxes = np.array([[-1, 2, 30, 50], [5, 5, 8, 9]], np.float64)
    assert clip_boxes(boxes, (40, 20, 3)).tolist() == [[0, 2, 20, 40], [5, 5, 8, 9]]


def test_read_batches_skips_unreadable_images(tmp_path: Path) -> None:
    from svhn_fixtures import corrupt_file, make_svhn_split

    root, records = make_svhn_split(tmp_path / "split", 5, seed=2)
    corrupt_file(root / records[1].name, "garbage")
    batches = list(read_batches(records, lambda r: root / r.name, 2))
    assert [len(kept) for kept, _, _ in batches] == [1, 2, 1]
    assert [[r.name for r, _ in skipped] for _, _, skipped in batches] == [[records[1].name], [], []]
    assert all(image.ndim == 3 for _, images, _ in batches for image in images)


def test_load_crops_filters_npz_by_source_image(tmp_path: Path) -> None:
    from svhn_fixtures import make_crops_npz

    npz = tmp_path / "crops.npz"
    make_crops_npz(npz, n=40)
    assert len(load_crops([str(npz)], None, "--train")) == 40
    assert len(load_crops([str(npz)], "21-30", "--val")) == 10
    with pytest.raises(UsageError, match="--val .*no crops left"):
        load_crops([str(npz)], "500-", "--val")
    with pytest.raises(UsageError, match="--crops 'missing.npz'"):
        load_crops(["missing.npz"], None, "--crops")


def test_evaluate_report_has_ours_and_pycocotools_ap(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from svhn_fixtures import make_svhn_split

    from train.evaluate import evaluate_split

    root, records = make_svhn_split(tmp_path / "split", 3, seed=4)

    class Silent:
        def recognize(self, images: list) -> list:
            return [[] for _ in images]

    found = [(r.xyxy, np.ones(len(r), np.float32)) for r in records]  # the detector finds every digit
    report = evaluate_split(Silent(), records, root, batch_size=8, detect=lambda images: found[: len(images)])
    assert report["ap50"] == report["coco_ap50"] == pytest.approx(1.0)
    assert report["ap"] == report["coco_ap"] == pytest.approx(1.0)
    assert report["coco_ap_error"] is None
    assert list(report).index("coco_ap50") == list(report).index("ap_source") + 1


def test_evaluate_report_without_pycocotools_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from svhn_fixtures import make_svhn_split

    from train.evaluate import evaluate_split

    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    root, records = make_svhn_split(tmp_path / "split", 2, seed=4)

    class Silent:
        def recognize(self, images: list) -> list:
            return [[] for _ in images]

    report = evaluate_split(Silent(), records, root)
    assert report["ap50"] == 0.0 and report["coco_ap50"] is None and report["coco_ap"] is None
    assert "pip install pycocotools" in report["coco_ap_error"]
