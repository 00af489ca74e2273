"""Two readers on still images (recognizer.models.fusion): the fusion rules, FusedRecognizer's modes with
a fake digit path and the real text reader, Reading's new fields, and ``recognizer image
--reader`` end to end with the tiny untrained models."""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from text_helpers import draw_text, holds, real_text_reader, scene_with_plate, text_size

from recognizer.models.fusion import DEFAULT_IMAGE_MODE, MODES, FusedRecognizer, FusionConfig, fuse, spread_digits, text_reading
from recognizer.models.textreader import TextRead
from recognizer.types import DigitBox, Reading


@pytest.fixture(scope="module")
def reader():
    return real_text_reader()


def reading(text: str, box, confidence: float = 0.8) -> Reading:
    """A digit-path reading of ``text`` with one digit box per character across ``box``."""
    digits = tuple(DigitBox(d.box, d.digit, 1.0, confidence) for d in spread_digits(text, box, confidence))
    return Reading(text, confidence, tuple(float(v) for v in box), digits)


class FakeDigits:
    """The digit path: fixed readings per image (``per_image[i]`` for the i-th image of a call)."""

    def __init__(self, *per_image: list[Reading]) -> None:
        self.per_image = per_image
        self.config = SimpleNamespace(crop_pad=0.15)
        self.device = "cpu"
        self.calls = 0

    def recognize_timed(self, images):
        self.calls += 1
        return [list(self.per_image[i % len(self.per_image)]) for i in range(len(images))], {"detect": 0.01, "classify": 0.02}

    def recognize(self, images):
        return self.recognize_timed(images)[0]


class RegionReader:
    """A text reader that knows where the numbers of ``image`` are: a crop reads the texts of the
    numbers it holds wholly, joined by a blank (as PP-OCR reads two numbers on one line);
    ``detect`` returns ``lines``. Crops are views of the image, so their position is known."""

    def __init__(self, image: np.ndarray, numbers: list[tuple[str, tuple[float, float, float, float]]], lines=(), score: float = 0.99) -> None:
        self.image, self.numbers, self.lines, self.score = image, numbers, lines, score
        self.read_calls: list[int] = []
        self.detect_calls = 0

    def _where(self, crop: np.ndarray) -> tuple[int, int, int, int]:
        offset = crop.__array_interface__["data"][0] - self.image.__array_interface__["data"][0]
        y, x = divmod(offset, self.image.strides[0])
        x //= self.image.strides[1]
        return x, y, x + crop.shape[1], y + crop.shape[0]

    def read(self, crops):
        self.read_calls.append(len(crops))
        out = []
        for crop in crops:
            x1, y1, x2, y2 = self._where(crop)
            inside = [t for t, b in sorted(self.numbers, key=lambda n: n[1][0]) if x1 <= b[0] and b[2] <= x2 and y1 <= b[1] and b[3] <= y2]
            out.append(TextRead(" ".join(inside), self.score if inside else 0.0))
        return out

    def detect(self, image, *, max_side=1600):
        self.detect_calls += 1
        return np.asarray(self.lines, np.float32).reshape(-1, 4), np.ones(len(self.lines), np.float32)


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({}, None),
        ({"mode": "text", "det_max_side": 64}, None),
        ({"mode": "accurate", "det_max_side": 8192, "pad_x": 3.0, "pad_y": 0.0}, None),
        ({"mode": "digits", "veto_score": 0.0, "override_score": 1.0, "new_score": 1.0}, None),
        ({"mode": "bogus"}, "mode"),
        ({"mode": ""}, "mode"),
        ({"veto_score": 1.5}, "veto_score"),
        ({"override_score": -0.1}, "override_score"),
        ({"new_score": math.nan}, "new_score"),
        ({"pad_x": 3.5}, "pad_x"),
        ({"pad_y": -0.1}, "pad_y"),
        ({"det_max_side": 63}, "det_max_side"),
        ({"det_max_side": 10000}, "det_max_side"),
    ],
)
def test_fusion_config(kwargs, error) -> None:
    if error is None:
        cfg = FusionConfig(**kwargs)
        assert cfg.mode in MODES
    else:
        with pytest.raises(ValueError, match=error):
            FusionConfig(**kwargs)


def test_defaults_by_measurement_are_modes() -> None:
    from recognizer.live.textworker import DEFAULT_LIVE_MODE, DEFAULT_OFFLINE_MODE

    assert {DEFAULT_IMAGE_MODE, DEFAULT_LIVE_MODE, DEFAULT_OFFLINE_MODE, FusionConfig().mode} <= set(MODES)


# ------------------------------------------------------------------------------ fuse


BOX = (100.0, 50.0, 160.0, 80.0)
REGION = (90.0, 45.0, 190.0, 85.0)
CFG = FusionConfig()


def test_letters_veto_drops_the_reading() -> None:
    ours = reading("401", BOX, 0.9)
    assert fuse(ours, TextRead("SMITH", 0.9), REGION, CFG) is None
    assert fuse(ours, TextRead("SMITH", CFG.veto_score), REGION, CFG) is None
    # not sure enough, or letters a digit is often read as: no veto
    assert fuse(ours, TextRead("SMITH", CFG.veto_score - 0.01), REGION, CFG) == ours
    assert fuse(ours, TextRead("IO", 0.99), REGION, CFG) == ours


@pytest.mark.parametrize("read", [TextRead("No.12", 0.99), TextRead("", 0.0), TextRead("  ", 0.5), TextRead("12345678", 0.99)])
def test_a_read_that_is_no_number_keeps_ours(read: TextRead) -> None:
    ours = reading("221", BOX, 0.5)
    assert fuse(ours, read, REGION, CFG) == ours


def test_agreement_is_both_and_more_confident() -> None:
    ours = reading("221", BOX, 0.8)
    fused = fuse(ours, TextRead("221", 0.9), REGION, CFG)
    assert fused.source == "both" and fused.text == "221" and fused.label == ""
    assert fused.confidence == pytest.approx(1 - 0.2 * 0.1) and fused.confidence > max(0.8, 0.9)
    assert fused.box == ours.box and fused.digits == ours.digits
    # a letter the text reader saw stays in the label, the digits in the text
    fused = fuse(ours, TextRead("221B", 0.9), REGION, CFG)
    assert (fused.text, fused.label, fused.source) == ("221", "221B", "both")


def test_a_confident_different_read_overrides_a_weak_reading_keeping_its_boxes() -> None:
    ours = reading("227", BOX, 0.6)
    fused = fuse(ours, TextRead("221", 0.95), REGION, CFG)
    assert (fused.text, fused.source, fused.box) == ("221", "text", ours.box)
    assert [d.box for d in fused.digits] == [d.box for d in ours.digits]
    assert [d.digit for d in fused.digits] == [2, 2, 1]
    assert fused.confidence == pytest.approx(0.95) and all(d.cls_score == pytest.approx(0.95) for d in fused.digits)


def test_a_different_count_spreads_the_digits_over_the_region() -> None:
    ours = reading("21", BOX, 0.6)  # "211" with a thin 1 missed
    fused = fuse(ours, TextRead("211", 0.95), REGION, CFG)
    assert (fused.text, fused.source, fused.box) == ("211", "text", REGION)
    assert [d.digit for d in fused.digits] == [2, 1, 1]
    xs = [d.box[0] for d in fused.digits] + [fused.digits[-1].box[2]]
    assert xs == pytest.approx(np.linspace(REGION[0], REGION[2], 4).tolist())
    assert all(d.box[1] == REGION[1] and d.box[3] == REGION[3] for d in fused.digits)


@pytest.mark.parametrize(
    "ours_conf, read_score, overridden",
    [(0.6, 0.95, True), (0.6, CFG.override_score, True), (0.6, CFG.override_score - 0.01, False), (CFG.keep_own, 0.99, False), (0.99, 0.99, False)],
)
def test_override_thresholds(ours_conf: float, read_score: float, overridden: bool) -> None:
    ours = reading("227", BOX, ours_conf)
    fused = fuse(ours, TextRead("221", read_score), REGION, CFG)
    assert (fused.text == "221") is overridden
    if not overridden:
        assert fused == ours


def test_spread_digits_and_text_reading() -> None:
    digits = spread_digits("407", (0, 0, 30, 10), 0.7)
    assert [d.digit for d in digits] == [4, 0, 7]
    assert [d.box for d in digits] == [(0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10)]
    r = text_reading(TextRead("C-24", 0.93), (5, 5, 45, 25))
    assert (r.text, r.label, r.source, r.confidence, r.box) == ("24", "C-24", "text", pytest.approx(0.93), (5.0, 5.0, 45.0, 25.0))
    assert text_reading(TextRead("24", 0.93), (5, 5, 45, 25)).label == ""


def test_a_label_letter_keeps_its_column() -> None:
    r = text_reading(TextRead("12A", 0.9), (0, 0, 30, 10))
    assert [d.box for d in r.digits] == [(0, 0, 10, 10), (10, 0, 20, 10)]


def test_reading_to_dict_is_unchanged_for_the_digit_path() -> None:
    ours = reading("12", BOX, 0.8)
    d = ours.to_dict()
    assert list(d) == ["text", "confidence", "box", "digits"]
    # byte for byte what the digit path always wrote
    expected = {"text": "12", "confidence": 0.8, "box": [100.0, 50.0, 160.0, 80.0], "digits": [x.to_dict() for x in ours.digits]}
    assert json.dumps(d) == json.dumps(expected)
    both = fuse(ours, TextRead("12A", 0.9), REGION, CFG).to_dict()
    assert list(both) == ["text", "confidence", "box", "digits", "label", "source"]
    assert (both["label"], both["source"]) == ("12A", "both")
    text = text_reading(TextRead("12", 0.9), REGION).to_dict()
    assert "label" not in text and text["source"] == "text"


# ------------------------------------------------------------------------------ FusedRecognizer


def test_without_a_reader_every_mode_is_the_digit_path() -> None:
    ours = [reading("12", BOX)]
    for mode in MODES:
        fr = FusedRecognizer(FakeDigits(ours), None, FusionConfig(mode=mode))
        assert fr.mode == "digits"
        out, timings = fr.recognize_timed([np.zeros((100, 200, 3), np.uint8)])
        assert out == [ours] and timings["text"] == 0.0 and timings["detect"] == 0.01


def test_mode_digits_returns_exactly_the_digit_paths_readings() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    ours = [reading("12", BOX), reading("7", (10, 10, 20, 30))]
    fake = RegionReader(image, [("99", BOX)])
    fr = FusedRecognizer(FakeDigits(ours), fake, FusionConfig(mode="digits"))
    out, timings = fr.recognize_timed([image])
    assert out[0] == ours and all(a is b for a, b in zip(out[0], ours))
    assert fake.read_calls == [] and fake.detect_calls == 0 and timings["text"] == 0.0
    assert fr.recognize([]) == []


def test_fused_recognizer_passes_the_digit_paths_attributes_through() -> None:
    digits = FakeDigits([])
    fr = FusedRecognizer(digits, None)
    assert fr.device == "cpu" and fr.recognizer is digits and fr.reader is None
    assert isinstance(fr.config, FusionConfig) and fr.config.mode == "fast"
    with pytest.raises(AttributeError):
        fr.no_such_attribute  # noqa: B018


def test_fast_mode_reads_each_number_in_one_batched_call_per_recognize() -> None:
    image = np.zeros((200, 400, 3), np.uint8)
    a, b = (20.0, 20.0, 80.0, 50.0), (200.0, 100.0, 260.0, 130.0)
    fake = RegionReader(image, [("12", a), ("47", b)])
    fr = FusedRecognizer(FakeDigits([reading("12", a), reading("41", b, 0.5)]), fake, FusionConfig(mode="fast"))
    out, timings = fr.recognize_timed([image, image])
    assert fake.read_calls == [4] and fake.detect_calls == 0  # 2 images x 2 regions, one call
    for per_image in out:
        assert [(r.text, r.source) for r in per_image] == [("12", "both"), ("47", "text")]
    assert timings["text"] > 0 and timings["classify"] == 0.02


def test_two_numbers_on_one_text_line_stay_two_numbers() -> None:
    image = np.zeros((200, 400, 3), np.uint8)
    a, b = (100.0, 80.0, 150.0, 120.0), (180.0, 80.0, 230.0, 120.0)
    line = (95.0, 75.0, 235.0, 125.0)  # the text detector joins the two into one line
    fake = RegionReader(image, [("12", a), ("14", b)], lines=[line])
    fr = FusedRecognizer(FakeDigits([reading("12", a), reading("14", b)]), fake, FusionConfig(mode="accurate"))
    out = fr.recognize([image])[0]
    assert sorted(r.text for r in out) == ["12", "14"]


def test_accurate_mode_widens_a_region_to_its_text_line_and_adds_lines_of_its_own() -> None:
    image = np.zeros((300, 500, 3), np.uint8)
    whole, seen = (100.0, 80.0, 190.0, 120.0), (130.0, 80.0, 190.0, 120.0)  # "108": the 1 was missed
    other = (300.0, 200.0, 360.0, 230.0)
    # the last holds ours but is far taller: not our number's line, read as a region of its own
    lines = [(98.0, 78.0, 192.0, 122.0), other, (10.0, 10.0, 400.0, 300.0)]
    fake = RegionReader(image, [("108", whole), ("65", other)], lines=lines)
    fr = FusedRecognizer(FakeDigits([reading("08", seen, 0.7)]), fake, FusionConfig(mode="accurate"))
    plan = fr.plan(image, [reading("08", seen, 0.7)])
    assert plan.owner == [0, -1, -1] and len(plan.regions) == 3
    assert plan.regions[0] == pytest.approx((98.0, 78.0, 192.0, 122.0)) and plan.regions[1] == pytest.approx(other)
    assert plan.regions[2] == pytest.approx(lines[2])
    out = fr.recognize([image])[0]
    assert sorted((r.text, r.source) for r in out) == [("108", "text"), ("65", "text")]
    # in fast mode neither the missing 1 nor the other number is found
    fast = FusedRecognizer(FakeDigits([reading("08", seen, 0.7)]), fake, FusionConfig(mode="fast")).recognize([image])[0]
    assert [r.text for r in fast] == ["08"]


def test_a_region_only_the_text_detector_found_needs_new_score() -> None:
    image = np.zeros((300, 500, 3), np.uint8)
    other = (300.0, 200.0, 360.0, 230.0)
    for score, found in ((0.95, True), (0.85, False)):
        fake = RegionReader(image, [("65", other)], lines=[other], score=score)
        out = FusedRecognizer(FakeDigits([]), fake, FusionConfig(mode="accurate", new_score=0.9)).recognize([image])[0]
        assert [r.text for r in out] == (["65"] if found else [])


def test_text_mode_keeps_only_what_the_text_reader_reads() -> None:
    image = np.zeros((200, 400, 3), np.uint8)
    a, b = (20.0, 20.0, 80.0, 50.0), (200.0, 100.0, 260.0, 130.0)
    fake = RegionReader(image, [("12", a)])  # nothing readable at b
    digits = FakeDigits([reading("13", a, 0.99), reading("47", b, 0.99)])
    out = FusedRecognizer(digits, fake, FusionConfig(mode="text")).recognize([image])[0]
    assert [(r.text, r.source) for r in out] == [("12", "text")]
    # the fast mode keeps a confident reading of ours and the one the text reader cannot read
    out = FusedRecognizer(digits, fake, FusionConfig(mode="fast")).recognize([image])[0]
    assert [r.text for r in out] == ["13", "47"]


def test_a_small_image_is_read_whole_with_crop_max_side() -> None:
    image = np.zeros((40, 90, 3), np.uint8)
    number = (30.0, 8.0, 60.0, 32.0)
    fake = RegionReader(image, [("25", number)])
    fr = FusedRecognizer(FakeDigits([]), fake, FusionConfig(mode="accurate", crop_max_side=100))
    plan = fr.plan(image, [])
    assert plan.regions == [(0.0, 0.0, 90.0, 40.0)] and plan.owner == [-1] and fake.detect_calls == 0
    out = fr.recognize([image])[0]
    assert [(r.text, r.box) for r in out] == [("25", (0.0, 0.0, 90.0, 40.0))]


# -- with the real text reader on drawn images


def test_real_reader_agrees_overrides_and_vetoes(reader) -> None:
    image, ink = scene_with_plate("472", shape=(360, 480), at=(200, 150), size=48)
    word, word_ink = scene_with_plate("HOTEL", shape=(360, 480), at=(120, 150), size=48)
    digits = FakeDigits([reading("472", ink, 0.8)], [reading("412", ink, 0.6)], [reading("401", word_ink, 0.7)])
    fr = FusedRecognizer(digits, reader, FusionConfig(mode="fast"))
    agree, override, veto = fr.recognize([image, image, word])
    assert [(r.text, r.source) for r in agree] == [("472", "both")] and agree[0].confidence > 0.8
    assert [(r.text, r.source, r.box) for r in override] == [("472", "text", ink)]
    assert veto == []


def test_real_reader_accurate_mode_finds_a_number_the_digit_path_missed(reader) -> None:
    image, ink = scene_with_plate("472", shape=(480, 640), at=(80, 120), size=48)
    w, h = text_size("38", 48)
    cv2.rectangle(image, (430 - 16, 330 - 12), (430 + w + 16, 330 + h + 12), (235, 235, 235), -1)
    ink2 = draw_text(image, "38", (430, 330), 48)
    digits = FakeDigits([reading("472", ink, 0.8)])
    out, timings = FusedRecognizer(digits, reader, FusionConfig(mode="accurate")).recognize_timed([image])
    got = {r.text: r for r in out[0]}
    assert set(got) == {"472", "38"}
    assert got["472"].source == "both" and got["38"].source == "text"
    assert holds(got["38"].box, ink2)
    assert timings["text"] > 0
    # fast mode reads only the regions of the digit path
    fast = FusedRecognizer(digits, reader, FusionConfig(mode="fast")).recognize([image])[0]
    assert [r.text for r in fast] == ["472"]


# ------------------------------------------------------------------------------ the command line


def test_reader_mode_defaults() -> None:
    from recognizer.cli import options

    assert options.reader_mode(argparse.Namespace(reader=None)) == DEFAULT_IMAGE_MODE == "accurate"
    assert options.reader_mode(argparse.Namespace(reader=None), video=True) == "fast"  # a live source
    assert options.reader_mode(argparse.Namespace(reader=None), video=True, live=False) == "accurate"  # a file
    assert options.reader_mode(argparse.Namespace(reader="digits"), video=True) == "digits"
    assert options.reader_mode(argparse.Namespace()) == "accurate"
    assert options.load_text_reader("digits") is None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recognizer", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture
def plate_png(tmp_path):
    image, ink = scene_with_plate("472", shape=(480, 640), at=(400, 320), size=56)
    path = tmp_path / "plate.png"
    assert cv2.imwrite(str(path), image)
    return path, ink


def test_cli_accurate_finds_the_number_through_the_text_detector(plate_png, models) -> None:
    pytest.importorskip("rapidocr")
    path, ink = plate_png
    res = run_cli("image", str(path), "--reader", "accurate", "--json", *models)
    assert res.returncode == 0, res.stderr
    (line,) = [json.loads(x) for x in res.stdout.splitlines()]
    assert line["path"] == str(path)
    texts = [(r["text"], r.get("source")) for r in line["readings"]]
    assert ("472", "text") in texts, texts  # the tiny models read nothing: the text detector found it
    found = next(r for r in line["readings"] if r["text"] == "472")
    assert holds(found["box"], ink) and len(found["digits"]) == 3  # in the file's pixels


def test_cli_digits_reads_nothing_with_the_tiny_models_and_a_bad_reader_is_usage(plate_png, models) -> None:
    path, _ = plate_png
    res = run_cli("image", str(path), "--reader", "digits", *models)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{path}: (none)"
    res = run_cli("image", str(path), "--reader", "best", *models)
    assert res.returncode == 2
    assert "--reader" in res.stderr and "invalid choice" in res.stderr and res.stdout == ""


def test_a_small_number_in_a_large_photo_is_found_in_tiles(reader) -> None:
    # A 4000x3000 photo (12 megapixels) with a plate whose digits are about 22 px tall: at the
    # whole-image size of the text detector (960 px) they are 5 px, too small; in full-resolution
    # tiles they are found and read (issue 18: "a number 20 px tall in a 12-megapixel photo").
    image = np.full((3000, 4000, 3), 170, np.uint8)
    image[::7] = 150  # some texture, not a flat page
    w, h = text_size("472", 30)
    x, y = 2870, 2210
    cv2.rectangle(image, (x - 8, y - 6), (x + w + 8, y + h + 6), (240, 240, 240), -1)
    ink = draw_text(image, "472", (x, y), 30)
    assert 15 <= ink[3] - ink[1] <= 30
    found = FusedRecognizer(FakeDigits([]), reader, FusionConfig(mode="accurate")).recognize([image])[0]
    assert [r.text for r in found] == ["472"] and holds(found[0].box, ink)
    whole_only = FusedRecognizer(FakeDigits([]), reader, FusionConfig(mode="accurate", tile_above=0)).recognize([image])[0]
    assert [r.text for r in whole_only] == []
