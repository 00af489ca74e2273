from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from train.svhn import read_digitstruct

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "synth_scenes.py"), *args], capture_output=True, text=True, timeout=240)


def test_scenes_are_deterministic_and_boxes_sit_inside_on_pasted_numbers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        res = run_tool("scenes", "--out", str(out), "--n", "6", "--seed", "3", "--workers", "1")
        assert res.returncode == 0, res.stderr
    records = read_digitstruct(a / "digitStruct.mat", cache=False)
    assert 1 <= len(records) <= 6
    for r in records:
        assert (a / r.name).read_bytes() == (b / r.name).read_bytes()
        img = cv2.imread(str(a / r.name))
        assert img.shape == (240, 320, 3)
        assert len(r.digits) >= 1 and all(0 <= d <= 9 for d in r.digits)
        for left, top, w, h in r.boxes:
            assert left >= -1 and top >= -1 and left + w <= 321 and top + h <= 241
            assert 5 <= h <= 130  # pasted at 10-80 px digit height
            patch = img[int(top) : int(top + h), int(left) : int(left + w)].astype(np.float32)
            assert patch.std() > 3  # something is drawn there, not flat wall


def test_merge_filters_ranges_and_repeats(tmp_path):
    src = tmp_path / "real"
    (src / "train").mkdir(parents=True)
    labels = []
    for n in range(1, 5):
        cv2.imwrite(str(src / "train" / f"{n}.png"), np.full((20, 30, 3), n * 40, np.uint8))
        labels.append({"file": f"train/{n}.png", "width": 30, "height": 20, "boxes": [[2, 2, 8, 14, n % 10]]})
    (src / "labels.json").write_text(json.dumps(labels))
    out = tmp_path / "merged"
    res = run_tool("merge", "--out", str(out), f"{src}:2-3:x2")
    assert res.returncode == 0, res.stderr
    records = read_digitstruct(out / "digitStruct.mat", cache=False)
    assert [int(r.digits[0]) for r in records] == [2, 3, 2, 3]
    assert cv2.imread(str(out / records[1].name))[0, 0, 0] == 120


def test_merge_reports_a_folder_that_is_not_svhn(tmp_path):
    res = run_tool("merge", "--out", str(tmp_path / "o"), str(tmp_path))
    assert res.returncode == 2 and "no digitStruct.mat or labels.json" in res.stderr


def test_merge_reports_a_bad_range(tmp_path):
    res = run_tool("merge", "--out", str(tmp_path / "o"), f"{tmp_path}:12-x")
    assert res.returncode == 2 and "12-x" in res.stderr
