"""The second reader (recognizer.models.textreader): how a read is parsed, region padding, and the real
PP-OCR recognizer and text detector from the rapidocr wheel on plates drawn here."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from text_helpers import holds, iou, plate, real_text_reader, scene_with_plate

from recognizer.models import textreader
from recognizer.models.textreader import ALPHABET, DIGIT_LIKE, TextRead, pad_box


@pytest.fixture(scope="module")
def reader():
    return real_text_reader()


# ------------------------------------------------------------------------------ TextRead


@pytest.mark.parametrize(
    "text, kind, digits, label, letters",
    [
        ("221", "number", "221", "221", False),
        ("0", "number", "0", "0", False),
        ("007", "number", "007", "007", False),  # leading zeros are kept (a plate can say 007)
        ("12A", "number", "12", "12A", False),  # a letter suffix stays in the label
        ("2d", "number", "2", "2d", False),
        ("12AB", "number", "12", "12AB", False),
        ("C-24", "number", "24", "C-24", False),  # a block letter before
        ("C24", "number", "24", "C24", False),  # spelled as read
        ("#12", "number", "12", "12", False),
        (" 4 1 ", "number", "41", "41", False),  # blanks of a widely spaced plate are dropped
        ("12.", "number", "12", "12", False),  # trailing punctuation of a plate
        ("'221'", "number", "221", "221", False),
        ("Smith", "letters", "", "", True),
        ("HOTEL", "letters", "", "", True),
        ("SMITH", "letters", "", "", True),
        ("ÄÖ", "letters", "", "", True),  # letters of any script
        ("IG", "letters", "", "", False),  # a blurred 16: both letters are digit-like
        ("O", "letters", "", "", False),  # a lone 0
        ("A", "letters", "", "", False),  # one letter is too little for a veto
        ("AB", "letters", "", "", False),  # A (4) and B (8) are digit-like
        ("Ix", "letters", "", "", False),  # only one letter that is not digit-like
        ("No.12", "mixed", "", "", False),
        ("Apt 4 B5", "mixed", "", "", False),
        ("79bis", "mixed", "", "", False),
        ("12ABC", "mixed", "", "", False),
        ("1234567", "mixed", "", "", False),  # seven digits is not a house number
        ("1O5", "mixed", "", "", False),  # a 0 read as O between digits: no vote either way
        ("", "empty", "", "", False),
        ("   ", "empty", "", "", False),
        ("-.", "empty", "", "", False),
    ],
)
def test_text_read_parsing(text: str, kind: str, digits: str, label: str, letters: bool) -> None:
    read = TextRead(text, 0.9)
    assert (read.kind, read.digits, read.label, read.is_letters) == (kind, digits, label, letters)
    assert read.compact == "".join(text.split())
    if kind != "number":
        assert read.digits == "" and read.label == ""
    else:
        assert read.digits.isdigit() and read.digits in read.label.replace("-", "")


@pytest.mark.parametrize(
    "text",
    [
        "l08",
        "I2",
        "10l",
        "2O",
        # read by PP-OCR on real SVHN images 1701-2000 (our number box, padded as in fusion):
        "Z1",
        "1ZZ",
        "1O5",
        "108",
    ],
)
def test_a_digit_like_letter_next_to_digits_never_gives_a_shorter_number(text: str) -> None:
    # DIGIT_LIKE exists because the recognizer reads a thin 1 as l or I, a 0 as O, a 2 as Z. Such
    # a read must not become a *shorter* number, which votes for another length in a track and
    # overrides a right reading: either a number of every character, or no number.
    read = TextRead(text, 0.95)
    assert read.digits == "" or len(read.digits) == len(read.compact)


def test_text_read_to_dict_and_digit_like_set() -> None:
    assert TextRead("12A", 0.987654).to_dict() == {"text": "12A", "score": 0.9877, "kind": "number"}
    assert TextRead("", 0.0).to_dict()["kind"] == "empty"
    # every digit-like letter alone, or two of them, never vetoes; two others always do
    for ch in DIGIT_LIKE:
        assert not TextRead(ch * 2, 0.99).is_letters, ch
    assert TextRead("xy", 0.99).is_letters


def test_alphabet_is_digits_latin_letters_and_separators() -> None:
    assert set("0123456789") <= ALPHABET
    assert set("abcdefghijklmnopqrstuvwxyz") <= ALPHABET and set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") <= ALPHABET
    assert set(" -./#") <= ALPHABET
    assert not ({"号", "Ä", "€", "\n"} & ALPHABET)


# ------------------------------------------------------------------------------ pad_box


@pytest.mark.parametrize(
    "box, pad_x, pad_y, shape, expected",
    [
        ((10, 10, 30, 20), 0.0, 0.0, (100, 100), (10, 10, 30, 20)),
        ((10, 10, 30, 20), 0.5, 0.5, (100, 100), (5, 5, 35, 25)),  # pads are fractions of the height (10)
        ((10.2, 10.7, 29.5, 20.1), 0.0, 0.0, (100, 100), (10, 10, 30, 21)),  # outwards to whole pixels
        ((0, 0, 10, 10), 1.0, 1.0, (100, 100), (0, 0, 20, 20)),  # clipped at the top left
        ((90, 90, 100, 100), 1.0, 1.0, (95, 98, 3), (80, 80, 98, 95)),  # ... and at the bottom right
        ((10, 10, 20, 10), 0.0, 0.0, (100, 100), (10, 10, 20, 11)),  # no height: at least 1 px
        ((10, 10, 10, 10), 0.0, 0.0, (100, 100), (10, 10, 11, 11)),
    ],
)
def test_pad_box(box, pad_x, pad_y, shape, expected) -> None:
    got = pad_box(np.asarray(box, np.float32), pad_x, pad_y, shape)
    assert got == expected
    assert all(isinstance(v, int) for v in got)


@pytest.mark.parametrize("box", [(200, 200, 210, 210), (-50, -50, -10, -10), (-5, 40, 300, 41)])
def test_pad_box_outside_the_image_gives_a_slice_that_does_not_fail(box) -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    a, b, c, d = pad_box(box, 0.35, 0.15, image.shape)
    assert c > a and d > b and a >= 0 and b >= 0
    assert image[b:d, a:c].ndim == 3  # may be empty, never an error


# ------------------------------------------------------------------------------ the real reader


def test_reads_a_number_and_a_word_in_one_batch(reader) -> None:
    reads = reader.read([plate("221"), plate("HOTEL"), plate("4071"), plate("SMITH"), plate("12A")])
    assert len(reads) == 5
    number, hotel, number2, smith, suffixed = reads
    assert (number.kind, number.digits) == ("number", "221") and number.score > 0.8
    assert (number2.kind, number2.digits) == ("number", "4071"), "results come back in the order of the crops"
    for word in (hotel, smith):
        assert word.kind == "letters" and word.is_letters and word.digits == "" and word.score > 0.7
    assert (suffixed.digits, suffixed.label) == ("12", "12A")


def test_light_digits_on_a_dark_plate(reader) -> None:
    (read,) = reader.read([plate("508", fg=(240, 240, 240), bg=(40, 30, 30))])
    assert read.digits == "508"


def test_output_stays_within_the_alphabet(reader) -> None:
    rng = np.random.default_rng(0)
    crops = [plate(t) for t in ("€ 12 §", "Ñandú ©", "Straße 7", "ΑΒΓΔ", "Ж 45", "½ ¼ ¾", "→ ← ↑")]
    crops += [rng.integers(0, 256, (32, 96, 3), dtype=np.uint8) for _ in range(3)]
    reads = reader.read(crops)
    assert len(reads) == len(crops)
    for read in reads:
        assert set(read.text) <= ALPHABET, read
        assert 0.0 <= read.score <= 1.0
    assert reads[4].digits == "45"  # the Cyrillic letter is not read as something else beside the digits


def test_empty_and_degenerate_inputs(reader) -> None:
    assert reader.read([]) == []
    image = np.full((60, 80, 3), 200, np.uint8)
    assert reader.read_regions(image, np.zeros((0, 4))) == []
    assert reader.read_regions(image, []) == []
    one_px = np.zeros((1, 1, 3), np.uint8)
    gray = np.zeros((30, 60), np.uint8)
    reads = reader.read([one_px, gray, np.zeros((0, 5, 3), np.uint8), plate("7")])
    assert [r.kind for r in reads[:3]] == ["empty"] * 3 and reads[3].digits == "7"
    # a box of no size, one outside the image, one with a NaN-free float box at the border
    reads = reader.read_regions(image, [[10, 10, 10, 10], [500, 500, 600, 600], [79.5, 59.5, 80, 60]])
    assert [r.text for r in reads] == ["", "", ""]
    boxes, scores = reader.detect(image)
    assert boxes.shape == (0, 4) and boxes.dtype == np.float32 and scores.shape == (0,)
    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 10, 3), np.uint8)):
        boxes, scores = reader.detect(empty)
        assert boxes.shape == (0, 4) and scores.shape == (0,)
    boxes, _ = reader.detect(one_px)
    assert boxes.shape[1] == 4


def test_read_regions_cuts_the_original_pixels_with_padding(reader) -> None:
    image, ink = scene_with_plate("472", shape=(480, 640), at=(400, 320), size=56)
    # the ink box alone, and padded: both read the number; a box elsewhere reads no number
    reads = reader.read_regions(image, np.asarray([ink, ink, (20, 20, 120, 80)], np.float32), pad_x=0.35, pad_y=0.15)
    assert [r.digits for r in reads[:2]] == ["472", "472"]
    assert reads[2].kind != "number"
    # read_regions is read() of the padded crop, nothing else
    a, b, c, d = pad_box(ink, 0.35, 0.15, image.shape)
    assert reader.read([image[b:d, a:c]])[0] == reads[0]


@pytest.mark.parametrize("max_side", [320, 960])
def test_detect_finds_a_drawn_number_in_the_original_pixels(reader, max_side: int) -> None:
    image, ink = scene_with_plate("3857", shape=(360, 480), at=(260, 200), size=44)
    boxes, scores = reader.detect(image, max_side=max_side)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and len(boxes) == len(scores) >= 1
    best = max(boxes.tolist(), key=lambda b: iou(b, ink))
    # whatever size the detector ran at, its box is around the ink in this image's pixels
    assert holds(best, ink), (best, ink)
    assert np.all(boxes[:, 0] >= -1) and np.all(boxes[:, 2] <= image.shape[1] + 1) and np.all(boxes[:, 3] <= image.shape[0] + 1)
    assert reader.read_regions(image, [best])[0].digits == "3857"


def test_load_text_reader_is_cached(reader) -> None:
    assert textreader.load_text_reader() is textreader.load_text_reader()


def test_load_text_reader_failure_is_one_warning_and_none(monkeypatch, caplog) -> None:
    calls = []

    class Broken:
        def __init__(self, *, threads: int) -> None:
            calls.append(threads)
            raise RuntimeError("model file missing\n  a long traceback-like second line")

    monkeypatch.setattr(textreader, "_CACHE", {})
    monkeypatch.setattr(textreader, "TextReader", Broken)
    with caplog.at_level(logging.WARNING, logger="recognizer.models.textreader"):
        assert textreader.load_text_reader(threads=3) is None
        assert textreader.load_text_reader(threads=3) is None  # cached: not tried nor warned again
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and calls == [3]
    message = warnings[0].getMessage()
    assert "\n" not in message and "RuntimeError: model file missing" in message and "second line" not in message
    caplog.clear()
    assert textreader.load_text_reader(threads=2, warn=False) is None
    assert not caplog.records
