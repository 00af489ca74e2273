"""Real-set loaders on a tiny fake data root made here (train.building, train.realsets): the
fixed fit/dev/val parts, the SVHN-format export, character crops and hard negatives, and the
per-image scores of every set kind. Never real data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from text_helpers import CLOSEUPS, SCENES, make_data_root

from recognizer.types import DigitBox, Reading
from train import building, realsets


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data"))


def reading(text: str, box, confidence: float = 0.9, label: str = "", source: str = "digits") -> Reading:
    x1, y1, x2, y2 = box
    w = (x2 - x1) / len(text)
    digits = tuple(DigitBox((x1 + i * w, y1, x1 + (i + 1) * w, y2), int(ch), 1.0, confidence) for i, ch in enumerate(text))
    return Reading(text, confidence, (float(x1), float(y1), float(x2), float(y2)), digits, label=label, source=source)


# ------------------------------------------------------------------------------ train.building


@pytest.mark.parametrize(
    "split, position, part",
    [("train", 0, "dev"), ("train", 1, "fit"), ("train", 4, "fit"), ("train", 5, "dev"), ("train", 10, "dev"), ("val", 0, "val"), ("val", 7, "val")],
)
def test_part_of(split: str, position: int, part: str) -> None:
    assert building.part_of(split, position) == part


def test_closeups_are_split_by_position_in_the_file(root: Path) -> None:
    bn = root / "building_numbers"
    every = building.load_closeups(bn)
    assert [c.text for c in every] == [t for t, _ in CLOSEUPS]
    parts = {p: [c.text for c in building.load_closeups(bn, p)] for p in building.PARTS}
    assert parts == {"fit": ["47", "B12", "12X"], "dev": ["215", "108"], "val": ["502C", "31"]}
    assert [c.text for c in building.load_closeups(bn, ["dev", "val"])] == ["215", "502C", "108", "31"]
    with pytest.raises(ValueError, match="train"):
        building.load_closeups(bn, "train")  # the data's own split name is not a part


def test_a_closeup_record(root: Path) -> None:
    (c,) = [c for c in building.load_closeups(root / "building_numbers", "val") if c.text == "502C"]
    entry = json.loads((root / "building_numbers" / "closeups" / "labels.json").read_text())[1]
    assert c.path == root / "building_numbers" / "closeups" / "1.jpg" and c.path.is_file() and c.name == "1.jpg"
    assert (c.split, c.part, c.chars, c.digits_text) == ("val", "val", ("5", "0", "2", "C"), "502")
    ltwh = np.array([r[:4] for r in entry["boxes"]], np.float64)
    assert np.array_equal(c.boxes, np.column_stack([ltwh[:, :2], ltwh[:, :2] + ltwh[:, 2:]]))
    boxes, digits = c.digit_boxes()
    assert digits.tolist() == [5, 0, 2] and np.array_equal(boxes, c.boxes[:3])


def test_scenes_are_split_the_same_way(root: Path) -> None:
    bn = root / "building_numbers"
    scenes = building.load_scenes(bn)
    assert [[n.text for n in s.numbers] for s in scenes] == [n for n, _ in SCENES]
    assert [s.part for s in scenes] == ["dev", "val", "val", "val", "fit"]
    (s,) = [s for s in building.load_scenes(bn, "val") if len(s.numbers) == 2]
    entry = json.loads((bn / "scenes" / "labels.json").read_text())[1]
    left, top, w, h = entry["numbers"][0]["box"]
    assert s.numbers[0].box == (left, top, left + w, top + h) and s.numbers[1].digits_text == "7"
    assert building.load_scenes(bn, "val")[-1].numbers[0].digits_text == "602"


@pytest.mark.parametrize(
    "content, error",
    [(None, FileNotFoundError), ("{not json", ValueError), (json.dumps({"file": "x"}), ValueError)],
)
def test_bad_labels_json(tmp_path: Path, content, error) -> None:
    if content is not None:
        (tmp_path / "closeups").mkdir()
        (tmp_path / "closeups" / "labels.json").write_text(content)
    with pytest.raises(error, match="labels.json"):
        building.load_closeups(tmp_path)


@pytest.mark.parametrize("part, texts", [("fit", ["47", "12", "12"]), ("dev", ["215", "108"])])
def test_export_is_readable_by_load_split(root: Path, tmp_path: Path, part: str, texts) -> None:
    from train.datasets import load_split

    closeups = building.load_closeups(root / "building_numbers", part)
    out = building.export_svhn_folder(closeups, tmp_path / "svhn").parent
    split = load_split(out, cache=False)
    assert [r.name for r in split.records] == [c.name for c in closeups]
    assert ["".join(map(str, r.digits.tolist())) for r in split.records] == texts  # letters left out, 0 stays 0
    for r, c in zip(split.records, closeups):
        boxes, _ = c.digit_boxes()
        assert np.allclose(np.column_stack([r.boxes[:, :2], r.boxes[:, :2] + r.boxes[:, 2:]]), boxes)
        assert (split.image_root / r.name).read_bytes() == c.path.read_bytes()
    with pytest.raises(FileExistsError):
        building.export_svhn_folder(closeups, out)  # never into a folder that holds something


def test_character_crops(root: Path) -> None:
    from text_helpers import CLOSEUP_BG

    x, y, src = building.character_crops(building.load_closeups(root / "building_numbers", "fit"))
    # "47", "B12" (B is drawn like an 8: left out), "12X" (X: "not a digit")
    assert y.tolist() == [4, 7, 1, 2, 1, 2, -1]
    assert src.tolist() == [2, 2, 3, 3, 4, 4, 4]
    assert x.shape == (7, 32, 32, 3) and x.dtype == np.uint8
    assert len({xi.tobytes() for xi in x}) == 7  # each crop is its own character
    corner = x[:, :3, :3].reshape(-1, 3).mean(axis=0)  # background: BGR orange on disk, RGB here
    assert corner[0] > corner[2] + 60 and abs(corner[0] - CLOSEUP_BG[2]) < 40
    empty = building.character_crops([])
    assert empty[0].shape == (0, 32, 32, 3) and empty[1].shape == (0,)


class FakeDetector:
    """Three hits per photo: inside the first number's box, far from it, and one scoring low."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def detect(self, images):
        self.batches.append(len(images))
        boxes = np.array([[35, 95, 45, 110], [250, 200, 270, 230], [280, 10, 300, 40]], np.float32)
        return [(boxes, np.array([0.9, 0.8, 0.1], np.float32)) for _ in images]


def test_scene_negatives_are_hits_away_from_every_number(root: Path) -> None:
    scenes = building.load_scenes(root / "building_numbers")
    det = FakeDetector()
    x, y, src = building.scene_negatives(scenes, det, score_thresh=0.3, batch_size=4)
    assert det.batches == [4, 1]
    # every photo gives its far hit; the photo without a number gives the near one too
    assert src.tolist() == [0, 1, 2, 2, 3, 4]
    assert x.shape == (6, 32, 32, 3) and (y == -1).all()


def test_building_command_line(root: Path, tmp_path: Path, tiny_checkpoints) -> None:
    data = str(root / "building_numbers")
    assert building.main(["export", "--data", data, "--part", "fit", "dev", "--out", str(tmp_path / "svhn")]) == 0
    assert len(json.loads((tmp_path / "svhn" / "labels.json").read_text())) == 5
    assert building.main(["export", "--data", data, "--out", str(tmp_path / "svhn")]) == 2
    npz = tmp_path / "crops.npz"
    assert building.main(["crops", "--data", data, "--part", "val", "--out", str(npz)]) == 0
    with np.load(npz) as z:
        assert z["y"].tolist() == [5, 0, 2, -1, 3, 1] and z["X"].shape == (6, 32, 32, 3) and len(z["source_image"]) == 6
    assert building.main(["crops", "--data", data, "--out", str(npz)]) == 2  # never overwritten
    assert building.main(["crops", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c2.npz")]) == 2
    neg = tmp_path / "neg.npz"
    assert building.main(["negatives", "--data", data, "--part", "val", "--detector", str(tiny_checkpoints["detector"]), "--out", str(neg)]) == 0
    with np.load(neg) as z:
        assert (z["y"] == -1).all() and len(z["X"]) == len(z["y"]) == len(z["source_image"])


# ------------------------------------------------------------------------------ train.realsets


def test_load_set_svhn_parts_and_limit(root: Path) -> None:
    val = realsets.load_set("svhn", "val", root)
    assert [(i.name, i.truth, i.label) for i in val] == [("1851.png", "18", "18"), ("1900.png", "190", "190"), ("2000.png", "20", "20")]
    assert all(i.path.is_file() and i.boxes.shape == (len(i.truth), 4) and i.set == "svhn" for i in val)
    assert [i.name for i in realsets.load_set("svhn", "dev", root)] == ["1701.png", "1850.png"]
    assert [i.name for i in realsets.load_set("svhn", "val", root, limit=2)] == ["1851.png", "2000.png"]  # spread over the set
    assert [i.name for i in realsets.load_set("svhn", "val", root, limit=1)] == ["1851.png"]
    assert len(realsets.load_set("svhn", "val", root, limit=50)) == 3


def test_load_set_building_and_letters(root: Path) -> None:
    closeups = realsets.load_set("closeups", "val", root)
    assert [(i.truth, i.label, len(i.boxes)) for i in closeups] == [("502", "502C", 3), ("31", "31", 2)]
    scenes = realsets.load_set("scenes", "val", root)  # the photo without a number is left out
    assert [(i.truth, i.label, i.numbers, len(i.boxes)) for i in scenes] == [("48", "48", ("48", "7"), 2), ("602", "602D", ("602",), 1)]
    assert [i.numbers for i in realsets.load_set("scenes", "dev", root)] == [("216",)]
    letters = realsets.load_set("letters", "val", root)  # 251 (SMITH; ### and A1 are not letters-only words) and 500
    assert [(i.name, len(i.boxes), i.truth) for i in letters] == [("img_251.jpg", 1, ""), ("img_500.jpg", 2, "")]
    assert [i.name for i in realsets.load_set("letters", "dev", root)] == ["img_3.jpg", "img_250.jpg"]


@pytest.mark.parametrize("name, part", [("nameplates", "val"), ("svhn", "fit"), ("closeups", "train")])
def test_load_set_rejects_unknown_sets_and_parts(root: Path, name: str, part: str) -> None:
    with pytest.raises(ValueError):
        realsets.load_set(name, part, root)


@pytest.mark.parametrize("name", realsets.SETS)
def test_load_set_without_the_data(tmp_path: Path, name: str) -> None:
    with pytest.raises((FileNotFoundError, ValueError)):
        realsets.load_set(name, "val", tmp_path)


DIGITS = np.array([[10, 10, 30, 50], [30, 10, 50, 50], [50, 10, 70, 50]], np.float64)
CLOSEUP = realsets.RealImage("closeups", Path("1.jpg"), "502", "502C", DIGITS)


@pytest.mark.parametrize(
    "readings, expected",
    [
        ([], {"correct": 0, "label_correct": 0, "extra_digits": 0, "invented": 0, "read": ""}),
        ([reading("502", (10, 10, 70, 50))], {"correct": 1, "label_correct": 0, "extra_digits": 0, "invented": 0, "read": "502"}),
        ([reading("502", (10, 10, 70, 50), label="502C", source="both")], {"correct": 1, "label_correct": 1, "extra_digits": 0, "invented": 0, "read": "502"}),
        # the most confident reading counts; a number far from the plate is invented
        ([reading("77", (200, 10, 240, 50), 0.5), reading("502", (10, 10, 70, 50), 0.9)], {"correct": 1, "label_correct": 0, "extra_digits": 2, "invented": 1, "read": "502"}),
        ([reading("77", (200, 10, 240, 50), 0.95), reading("502", (10, 10, 70, 50), 0.9)], {"correct": 0, "label_correct": 0, "extra_digits": 2, "invented": 1, "read": "77"}),
        ([reading("5021", (10, 10, 90, 50))], {"correct": 0, "label_correct": 0, "extra_digits": 1, "invented": 0, "read": "5021"}),
    ],
)
def test_score_closeups(readings, expected) -> None:
    assert realsets.score(CLOSEUP, readings) == expected


def test_score_svhn_label_is_the_digits() -> None:
    item = realsets.RealImage("svhn", Path("1851.png"), "502", "502", DIGITS)
    assert realsets.score(item, [reading("502", (10, 10, 70, 50))])["label_correct"] == 1


SCENE = realsets.RealImage("scenes", Path("1.jpg"), "48", "48", np.array([[30, 90, 90, 130], [180, 90, 210, 130]], np.float64), ("48", "7"))


@pytest.mark.parametrize(
    "readings, correct, found, outside",
    [
        ([], 0, 0, 0),
        ([reading("48", (35, 95, 85, 125)), reading("7", (215, 95, 225, 125))], 1, 2, 0),  # the 7 in the box grown by half its height
        ([reading("48", (35, 95, 85, 125)), reading("7", (240, 95, 250, 125))], 0, 1, 1),  # ... and just outside it
        ([reading("48", (35, 95, 85, 125)), reading("1", (185, 95, 205, 125)), reading("99", (400, 300, 440, 330))], 0, 1, 1),
        ([reading("7", (35, 95, 85, 125)), reading("48", (185, 95, 205, 125))], 0, 0, 0),  # right texts, wrong places
    ],
)
def test_score_scenes(readings, correct: int, found: int, outside: int) -> None:
    row = realsets.score(SCENE, readings)
    assert (row["correct"], row["numbers"], row["numbers_found"], row["outside"]) == (correct, 2, found, outside)
    assert row["read"] == ",".join(r.text for r in readings)


def test_score_letters() -> None:
    item = realsets.RealImage("letters", Path("img_251.jpg"), "", "", np.array([[20, 40, 120, 70], [200, 40, 300, 70]], np.float64))
    assert realsets.score(item, []) == {"words": 2, "words_hit": 0, "invented": 0, "read": ""}
    inside = reading("12", (40, 45, 80, 65))
    half = reading("34", (100, 45, 140, 65))  # one digit on the word, one beside it
    assert realsets.score(item, [inside, half]) == {"words": 2, "words_hit": 1, "invented": 1, "read": "12,34"}
    assert realsets.score(item, [reading("5", (210, 45, 230, 65)), inside])["words_hit"] == 2


def test_summarise() -> None:
    rows = [realsets.score(CLOSEUP, r) for r in ([reading("502", (10, 10, 70, 50), label="502C")], [], [reading("77", (200, 10, 240, 50))], [reading("502", (10, 10, 70, 50))])]
    s = realsets.summarise("closeups", rows)
    assert (s["images"], s["correct"], s["accuracy"], s["label_accuracy"]) == (4, 2, 0.5, 0.25)
    assert s["extra_digits_per_image"] == 0.5 and s["invented_share"] == 0.25
    assert s["noise"] == pytest.approx(np.sqrt(0.25 / 4))
    perfect = realsets.summarise("svhn", [{"correct": 1, "label_correct": 1, "extra_digits": 0, "invented": 0}] * 4)
    assert perfect["accuracy"] == 1.0 and perfect["noise"] == pytest.approx(np.sqrt(1 / 4 / 4)), "at least one image's worth"
    scenes = realsets.summarise("scenes", [realsets.score(SCENE, [reading("48", (35, 95, 85, 125)), reading("99", (400, 300, 440, 330))])] * 2)
    assert (scenes["numbers"], scenes["numbers_found"], scenes["outside_per_photo"], scenes["accuracy"]) == (4, 2, 1.0, 0.0)
    letters = realsets.summarise("letters", [{"words": 3, "words_hit": 1, "invented": 2}, {"words": 1, "words_hit": 0, "invented": 0}])
    assert (letters["words"], letters["words_hit"], letters["words_with_digit"], letters["invented_per_photo"]) == (4, 1, 0.25, 1.0)
    assert letters["noise"] == pytest.approx(np.sqrt(0.25 * 0.75 / 4))
    assert realsets.summarise("svhn", []) == {"set": "svhn", "images": 0}
