"""Letters are not digits, data side: the words drawn around synthetic numbers, their
``text_boxes``, ``tools/synth.py crops --text-crops``, signs in synthetic scenes, and
``train.scene_text`` cutting real letters from a folder laid out like ../shared/data/scene_text."""
from __future__ import annotations

import json
import string
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognizer.models.preprocess import crop_digits
from recognizer.synth import Generator, SynthConfig, find_fonts, font_families, words
from recognizer.synth.painting import paint_sign
from recognizer.synth.words import DIGIT_LIKE
from tools import synth as synth_cli

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
ALPHABET = set(string.ascii_uppercase)


@pytest.fixture(scope="module")
def fonts() -> tuple[str, ...]:
    # DejaVu only: the same fonts on every machine, so counts over a seed do not depend on the system.
    found = find_fonts([DEJAVU])
    assert found
    return found


# --------------------------------------------------------------------------- words


WORD_FUNCTIONS = [words.pseudo_word, words.name, words.street, words.sign_text, words.prefix, words.suffix]


@pytest.mark.parametrize("fn", WORD_FUNCTIONS, ids=lambda f: f.__name__)
def test_words_are_non_empty_digit_free_and_cover_the_alphabet(fn) -> None:
    rng = np.random.default_rng(0)
    drawn = [fn(rng) for _ in range(3000)]
    assert all(isinstance(w, str) and w.strip() for w in drawn)
    joined = "".join(drawn)
    # Text around a number is never labelled: a digit in it would be a digit taught as "not a digit".
    assert not any(c.isdigit() for c in joined)
    missing = ALPHABET - set(joined.upper())
    assert not missing, f"{fn.__name__} never drew {sorted(missing)}"
    assert len(set(drawn)) > 10  # words vary


@pytest.mark.parametrize("fn", WORD_FUNCTIONS, ids=lambda f: f.__name__)
def test_words_same_seed_same_output(fn) -> None:
    def draw(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [fn(rng) for _ in range(50)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_pseudo_word_length_and_letters() -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        w = words.pseudo_word(rng, 3, 5)
        assert 3 <= len(w) <= 5 and w.isalpha() and w.islower()
    assert {len(words.pseudo_word(rng, 2, 4)) for _ in range(300)} == {2, 3, 4}


def test_cased_keeps_the_letters() -> None:
    rng = np.random.default_rng(2)
    forms = {words.cased(rng, "street") for _ in range(200)}
    assert forms == {"STREET", "Street", "street"}


# --------------------------------------------------------------------------- text around numbers


def _inside(boxes: np.ndarray, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    return bool((boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all() and (boxes[:, 2] <= w).all()
                and (boxes[:, 3] <= h).all() and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all())


def test_text_prob_default_and_text_boxes_type(fonts) -> None:
    assert 0.0 < SynthConfig().text_prob < 1.0
    s = Generator(3, SynthConfig(text_prob=0.0), fonts=fonts).sample(1)
    assert s.text_boxes.dtype == np.float32 and s.text_boxes.ndim == 2 and s.text_boxes.shape[1] == 4


def test_text_prob_one_draws_text_beside_the_digits_and_zero_draws_at_most_a_suffix(fonts) -> None:
    with_text = Generator(2, SynthConfig(text_prob=1.0), fonts=fonts)
    without = Generator(2, SynthConfig(text_prob=0.0), fonts=fonts)
    n_with = n_without = 0
    for i in range(30):
        a, b = with_text.sample(i), without.sample(i)
        # The digits of an index do not depend on the text around them.
        assert a.digits.tolist() == b.digits.tolist() and a.text == b.text
        for s in (a, b):
            assert s.boxes.shape == (len(s.digits), 4) and s.digits.min() >= 0 and s.digits.max() <= 9
            assert _inside(s.boxes.astype(np.float64) + np.array([0.01, 0.01, -0.01, -0.01]), s.image)
            tb = s.text_boxes
            assert tb.shape[1:] == (4,)
            if len(tb):
                assert _inside(tb, s.image)
                assert (tb[:, 3] - tb[:, 1] >= 4).all()
                # Text stands beside the number, not on it: no text box centre in a digit box.
                cx, cy = (tb[:, 0] + tb[:, 2]) / 2, (tb[:, 1] + tb[:, 3]) / 2
                d = s.boxes
                on_digit = (cx[:, None] >= d[None, :, 0]) & (cx[:, None] <= d[None, :, 2]) \
                    & (cy[:, None] >= d[None, :, 1]) & (cy[:, None] <= d[None, :, 3])
                assert not on_digit.any(), f"sample {i}: text box centre inside a digit box"
        n_with += len(a.text_boxes) > 0
        n_without += len(b.text_boxes) > 0
        # Without text only the old rare suffix ("12A", "7bis", "3A-B": at most 3 characters) is left.
        assert len(b.text_boxes) <= 3
    assert n_with >= 12, f"text_prob 1: only {n_with}/30 samples show text"
    assert n_without <= 4, f"text_prob 0: {n_without}/30 samples show text"
    assert n_with > 2 * n_without


def test_text_boxes_are_deterministic(fonts) -> None:
    cfg = SynthConfig(text_prob=1.0)
    a, b = Generator(5, cfg, fonts=fonts), Generator(5, cfg, fonts=fonts)
    seen_text = False
    for i in range(6):
        sa, sb = a.sample(i), b.sample(i)
        assert sa.image.tobytes() == sb.image.tobytes()
        assert np.array_equal(sa.boxes, sb.boxes) and np.array_equal(sa.text_boxes, sb.text_boxes)
        assert sa.info == sb.info
        seen_text |= len(sa.text_boxes) > 0
        if len(sa.text_boxes):
            assert sa.info.get("text") is not None and int(sa.info["text"]) >= len(sa.text_boxes)
    assert seen_text


def test_clean_samples_carry_no_text(fonts) -> None:
    gen = Generator(4, SynthConfig(clean=True, text_prob=1.0), fonts=fonts)
    for i in range(10):
        assert len(gen.sample(i).text_boxes) == 0


def test_text_boxes_sit_on_drawn_pixels(fonts) -> None:
    gen = Generator(6, SynthConfig(text_prob=1.0), fonts=fonts)
    checked = 0
    for i in range(20):
        s = gen.sample(i)
        grey = cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        for x1, y1, x2, y2 in s.text_boxes:
            patch = grey[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
            if patch.size >= 16:
                checked += 1
                assert patch.std() > 1.0, f"sample {i}: flat pixels under a text box"
    assert checked > 5


# --------------------------------------------------------------------------- paint_sign


def test_paint_sign_draws_letters_only() -> None:
    families = font_families(find_fonts([DEJAVU]))
    canvas = np.full((90, 260, 3), 0.5, np.float32)
    before = canvas.copy()
    boxes = paint_sign(np.random.default_rng(0), canvas, families, 30.0, 25.0, 30.0, "AB12")
    assert boxes.shape == (2, 4) and boxes.dtype == np.float32  # the digits are dropped
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes[0, 0] < boxes[1, 0]  # left to right
    assert canvas.dtype == np.float32 and canvas.min() >= 0.0 and canvas.max() <= 1.0
    assert not np.array_equal(canvas, before)
    for x1, y1, x2, y2 in boxes:
        patch = canvas[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
        assert np.abs(patch - 0.5).max() > 0.1  # ink under each letter box
    # Same stream, same pixels.
    again = np.full((90, 260, 3), 0.5, np.float32)
    assert np.array_equal(paint_sign(np.random.default_rng(0), again, families, 30.0, 25.0, 30.0, "AB12"), boxes)
    assert np.array_equal(again, canvas)


def test_paint_sign_with_only_digits_draws_nothing() -> None:
    families = font_families(find_fonts([DEJAVU]))
    canvas = np.full((60, 120, 3), 0.3, np.float32)
    boxes = paint_sign(np.random.default_rng(1), canvas, families, 10.0, 10.0, 20.0, "1234")
    assert boxes.shape == (0, 4)
    assert (canvas == np.float32(0.3)).all()


def test_paint_sign_random_text() -> None:
    families = font_families(find_fonts([DEJAVU]))
    rng = np.random.default_rng(3)
    total = 0
    for _ in range(5):
        canvas = np.full((80, 400, 3), 0.6, np.float32)
        boxes = paint_sign(rng, canvas, families, 20.0, 20.0, 24.0)
        assert boxes.ndim == 2 and boxes.shape[1] == 4
        if len(boxes):
            assert not (canvas == np.float32(0.6)).all()
        total += len(boxes)
    assert total > 0


# --------------------------------------------------------------------------- tools/synth.py crops --text-crops


def test_make_crops_with_text_crops_labels_letters_minus_one() -> None:
    d = synth_cli.make_crops(60, 11, text_crops=True, workers=1, config=SynthConfig(text_prob=1.0))
    X, y = d["X"], d["y"]
    assert X.shape == (60, 32, 32, 3) and X.dtype == np.uint8 and y.shape == (60,)
    assert (y == -1).sum() > 0 and ((y >= 0) & (y <= 9)).sum() > 0
    assert ((y == -1) | ((y >= 0) & (y <= 9))).all()
    # Each crop is cut from its source image at its box: digits first, then the text.
    gen = Generator(11, SynthConfig(text_prob=1.0))  # the system's fonts, as make_crops uses
    for img_no in np.unique(d["source_image"]):
        rows = np.nonzero(d["source_image"] == img_no)[0]
        s = gen.sample(int(img_no) - 1)
        assert len(s.text_chars) == len(s.text_boxes)
        # Letters drawn like digits (I, l, O) are not taught as "not a digit".
        tb = s.text_boxes[[c not in DIGIT_LIKE for c in s.text_chars]]
        labels = np.concatenate([s.digits, np.full(len(tb), -1)])[: len(rows)]
        assert y[rows].tolist() == labels.tolist()
        boxes = np.concatenate([s.boxes, tb])[: len(rows)]
        assert np.array_equal(X[rows], crop_digits(s.image, boxes))
        b = np.round(boxes.astype(np.float64))
        np.testing.assert_allclose(d["source_box"][rows], np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1))


def test_digit_like_letters_are_never_not_a_digit() -> None:
    from train.scene_text import label_of

    assert {"I", "l", "O"} <= DIGIT_LIKE and not (set("0123456789") & DIGIT_LIKE)
    assert [label_of(c, True) for c in "IlOA7"] == [None, None, None, -1, 7]
    gen = Generator(3, SynthConfig(text_prob=1.0))
    chars = [c for i in range(40) for c in gen.sample(i).text_chars]
    assert chars and all(len(c) == 1 and not c.isdigit() for c in chars)


def test_make_crops_without_text_crops_has_digits_only() -> None:
    d = synth_cli.make_crops(40, 11, workers=1, config=SynthConfig(text_prob=1.0))
    assert d["X"].shape == (40, 32, 32, 3)
    assert d["y"].min() >= 0 and d["y"].max() <= 9
    # The default boxes are still SVHN's integer left/top/width/height of the digits.
    gen = Generator(11, SynthConfig(text_prob=1.0))
    first = np.nonzero(d["source_image"] == 1)[0]
    np.testing.assert_array_equal(d["source_box"][first], synth_cli.svhn_boxes(gen.sample(0))[: len(first)])


def test_crops_cli_text_crops_writes_npz_and_refuses_mat(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.npz"
    assert synth_cli.main(["crops", "--out", str(out), "--n", "30", "--seed", "2", "--workers", "1", "--quiet",
                           "--text-crops", "--text-prob", "1"]) == 0
    z = np.load(out)
    assert z["X"].shape == (30, 32, 32, 3) and (z["y"] == -1).any()
    capsys.readouterr()
    mat = tmp_path / "x.mat"
    assert synth_cli.main(["crops", "--text-crops", "--out", str(mat), "--n", "5", "--workers", "1"]) == 2
    assert ".npz" in capsys.readouterr().err
    assert not mat.exists()


@pytest.mark.parametrize("mode, name", [("crops", "c.npz"), ("full", "full")])
@pytest.mark.parametrize("prob", ["1.5", "-0.1"])
def test_synth_cli_rejects_text_prob_outside_0_1(tmp_path: Path, capsys, mode: str, name: str, prob: str) -> None:
    out = tmp_path / name
    assert synth_cli.main([mode, "--out", str(out), "--n", "2", "--workers", "1", "--text-prob", prob]) == 2
    assert f"--text-prob {float(prob)}" in capsys.readouterr().err
    assert not out.exists()


def test_synth_cli_full_passes_text_prob_to_the_generator(tmp_path: Path) -> None:
    from train.svhn import read_digitstruct

    out = tmp_path / "full"
    assert synth_cli.main(["full", "--out", str(out), "--n", "3", "--seed", "5", "--workers", "1", "--quiet",
                           "--text-prob", "0"]) == 0
    gen = Generator(5, SynthConfig(text_prob=0.0))
    for i, rec in enumerate(read_digitstruct(out / "digitStruct.mat", cache=False)):
        s = gen.sample(i)
        assert rec.text == s.text
        assert np.array_equal(cv2.imread(str(out / rec.name)), s.image)


# --------------------------------------------------------------------------- tools/synth_scenes.py


def test_render_scene_boxes_and_digits_agree_and_stay_off_the_signs(monkeypatch, fonts) -> None:
    from tools import synth_scenes

    signs: list[np.ndarray] = []
    real = synth_scenes.paint_sign

    def recording(*args, **kwargs):
        boxes = real(*args, **kwargs)
        signs.append(boxes)
        return boxes

    monkeypatch.setattr(synth_scenes, "paint_sign", recording)
    gen = Generator(seed=21, fonts=fonts)
    scenes_with_signs = 0
    for k in range(4):
        signs.clear()
        img, boxes, digits = synth_scenes.render_scene(np.random.default_rng([9, k]), gen, 10 * k)
        assert img.shape == (240, 320, 3) and img.dtype == np.uint8
        assert boxes.dtype == np.float32 and boxes.shape == (len(digits), 4)
        assert digits.dtype == np.int64 and ((digits >= 0) & (digits <= 9)).all()
        if len(boxes):
            assert boxes[:, 0].min() >= -1 and boxes[:, 1].min() >= -1
            assert boxes[:, 2].max() <= 321 and boxes[:, 3].max() <= 241
        painted = [b for b in signs if len(b)]
        scenes_with_signs += bool(painted)
        for sb in painted:
            for x1, y1, x2, y2 in boxes:
                overlap = (np.minimum(sb[:, 2], x2) > np.maximum(sb[:, 0], x1)) \
                    & (np.minimum(sb[:, 3], y2) > np.maximum(sb[:, 1], y1))
                assert not overlap.any(), f"scene {k}: a digit box overlaps a painted sign"
        # Same stream, same scene.
        img2, boxes2, digits2 = synth_scenes.render_scene(np.random.default_rng([9, k]), gen, 10 * k)
        assert img2.tobytes() == img.tobytes() and np.array_equal(boxes2, boxes) and np.array_equal(digits2, digits)
    assert scenes_with_signs >= 1


# --------------------------------------------------------------------------- train.scene_text


def test_label_of_table() -> None:
    from train.scene_text import NOT_DIGIT, label_of

    assert NOT_DIGIT == -1
    assert label_of("A", False) == -1 and label_of("z", True) == -1
    assert label_of("&", False) == -1 and label_of(".", True) == -1
    assert label_of("7", False) is None and label_of("7", True) == 7
    assert label_of("0", True) == 0
    assert label_of("\u0663", True) == -1  # an Arabic-Indic three: not one of the 10 digit classes
    assert label_of("\u00b2", True) == -1  # superscript two
    assert label_of(" ", True) is None and label_of("", True) is None and label_of("ab", True) is None


def test_word_windows_cover_a_word_along_its_length() -> None:
    from train.scene_text import word_windows

    w = word_windows([0, 0, 40, 0, 40, 10, 0, 10], 0.5)
    assert w.dtype == np.float32 and w.shape == (8, 4)
    np.testing.assert_allclose(w[:, 0], np.arange(0, 40, 5))
    np.testing.assert_allclose(w[:, 2] - w[:, 0], 5.0)  # half the word height
    assert (w[:, 1] == 0).all() and (w[:, 3] == 10).all()
    assert w[-1, 2] == pytest.approx(40.0)
    # A coarser step gives fewer windows; a rotated quad uses its axis-aligned hull.
    assert len(word_windows([0, 0, 40, 0, 40, 10, 0, 10], 1.0)) == 4
    r = word_windows([10, 20, 60, 10, 62, 30, 12, 40], 0.5)
    assert r[:, 1].min() == pytest.approx(10) and r[:, 3].max() == pytest.approx(40)
    assert r[0, 0] == pytest.approx(10) and r[:, 2].max() <= 62 + 1e-4
    # Too small or too narrow: nothing.
    assert word_windows([0, 0, 40, 0, 40, 5, 0, 5], 0.5).shape == (0, 4)
    assert word_windows([0, 0, 3, 0, 3, 20, 0, 20], 0.5).shape == (0, 4)


def _img(path: Path, h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _scene_text_folder(root: Path) -> dict[str, int]:
    """A tiny folder in the ../shared/data/scene_text layout; returns the expected crop counts."""
    from train.scene_text import word_windows

    chars = [{"file": "chars/1.jpg", "char": "A"}, {"file": "chars/2.jpg", "char": "7"},
             {"file": "chars/3.jpg", "char": "b"}, {"file": "chars/404.jpg", "char": "c"}]  # the last is missing
    for k, it in enumerate(chars[:3]):
        _img(root / it["file"], 40, 28, k)
    iiit = [{"file": "words_iiit5k/w1.png", "text": "Ab3",
             "chars": [[2, 4, 10, 22, "A"], [14, 6, 10, 20, "b"], [26, 4, 10, 22, "3"], [38, 4, 1, 22, "x"]]}]
    _img(root / iiit[0]["file"], 30, 48, 10)
    shop = [20, 30, 100, 30, 100, 50, 20, 50]
    icdar = [
        {"file": "scenes_icdar2015/img_1.jpg", "words": [
            {"quad": shop, "text": "SHOP"},
            {"quad": [120, 60, 180, 60, 180, 80, 120, 80], "text": "###"},
            {"quad": [20, 70, 80, 70, 80, 90, 20, 90], "text": "A1"},
        ]},
        {"file": "scenes_icdar2015/img_2.jpg", "words": [{"quad": shop, "text": "No5"}]},  # no letters-only word
    ]
    _img(root / icdar[0]["file"], 120, 200, 11)
    _img(root / icdar[1]["file"], 120, 200, 12)
    svt = [{"file": "words_svt/a.jpg", "text": "living"}, {"file": "words_svt/b.jpg", "text": "route66"}]
    _img(root / svt[0]["file"], 24, 80, 13)
    _img(root / svt[1]["file"], 24, 80, 14)
    for name, data in (("chars", chars), ("words_iiit5k", iiit), ("scenes_icdar2015", icdar), ("words_svt", svt)):
        (root / f"{name}.json").write_text(json.dumps(data))
    return {"chars": 2, "iiit5k": 2, "icdar": len(word_windows(shop, 0.5)),
            "svt": len(word_windows([0, 0, 80, 0, 80, 24, 0, 24], 0.5))}


def test_scene_text_cuts_letters_as_not_digits(tmp_path: Path, capsys) -> None:
    from train.scene_text import main

    data = tmp_path / "scene_text"
    expected = _scene_text_folder(data)
    assert expected["icdar"] > 0 and expected["svt"] > 0
    out = tmp_path / "letters.npz"
    assert main(["--data", str(data), "--out", str(out)]) == 0
    z = np.load(out)
    n = sum(expected.values())
    assert z["X"].shape == (n, 32, 32, 3) and z["X"].dtype == np.uint8
    assert (z["y"] == -1).all() and z["y"].dtype == np.int64
    assert {s: int((z["source"] == s).sum()) for s in expected} == expected
    assert z["char"][z["source"] == "chars"].tolist() == ["A", "b"]
    assert z["char"][z["source"] == "iiit5k"].tolist() == ["A", "b"]
    assert f"{n} crops ({n} not digits, 0 digits" in capsys.readouterr().out
    # A crop is framed as the recognizer frames a detection.
    img = cv2.imread(str(data / "words_iiit5k/w1.png"))
    iiit = np.nonzero(z["source"] == "iiit5k")[0]
    assert np.array_equal(z["X"][iiit], crop_digits(img, np.array([[2, 4, 12, 26], [14, 6, 24, 26]], np.float32)))


def test_scene_text_digits_flag_keeps_real_digits(tmp_path: Path) -> None:
    from train.scene_text import main

    data = tmp_path / "scene_text"
    expected = _scene_text_folder(data)
    out = tmp_path / "with_digits.npz"
    assert main(["--data", str(data), "--out", str(out), "--digits", "--sets", "chars,iiit5k,icdar"]) == 0
    z = np.load(out)
    assert z["y"][z["source"] == "chars"].tolist() == [-1, 7, -1]
    assert z["y"][z["source"] == "iiit5k"].tolist() == [-1, -1, 3]
    # ICDAR words with a digit stay out even with --digits (their characters are not boxed).
    assert int((z["source"] == "icdar").sum()) == expected["icdar"]
    assert not (z["source"] == "svt").any()
    assert len(z["y"]) == 3 + 3 + expected["icdar"]


def test_scene_text_sets_and_limit(tmp_path: Path) -> None:
    from train.scene_text import main

    data = tmp_path / "scene_text"
    _scene_text_folder(data)
    out = tmp_path / "chars.npz"
    assert main(["--data", str(data), "--out", str(out), "--sets", "chars", "--limit", "1"]) == 0
    z = np.load(out)
    assert z["source"].tolist() == ["chars"] and z["char"].tolist() == ["A"]


def test_scene_text_refuses_to_overwrite_and_bad_input(tmp_path: Path, capsys) -> None:
    from train.scene_text import main

    data = tmp_path / "scene_text"
    _scene_text_folder(data)
    out = tmp_path / "exists.npz"
    out.write_bytes(b"keep me")
    assert main(["--data", str(data), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    fresh = tmp_path / "fresh.npz"
    for argv, message in [
        (["--sets", "chars,digits"], "--sets"),
        (["--sets", ","], "--sets"),
        (["--icdar-step", "0"], "--icdar-step"),
    ]:
        assert main(["--data", str(data), "--out", str(fresh), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("train.scene_text: error: ") and message in err[-1]
    assert main(["--data", str(data), "--out", str(tmp_path / "x.mat")]) == 2
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(fresh)]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--data", str(empty), "--out", str(fresh), "--sets", "svt"]) == 2
    assert "words_svt.json" in capsys.readouterr().err
    assert not fresh.exists()


def test_scene_text_icdar_images_keeps_the_rest_as_a_check(tmp_path: Path) -> None:
    from train.scene_text import main, photo_number

    assert photo_number("scenes_icdar2015/img_12.jpg") == 12 and photo_number("words/a.jpg") is None
    data = tmp_path / "scene_text"
    expected = _scene_text_folder(data)
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    assert main(["--data", str(data), "--out", str(first), "--sets", "icdar", "--icdar-images", "1"]) == 0
    assert int((np.load(first)["source"] == "icdar").sum()) == expected["icdar"]
    # img_2 has no letters-only word, so selecting it alone finds nothing: a usage error, no file.
    assert main(["--data", str(data), "--out", str(second), "--sets", "icdar", "--icdar-images", "2-"]) == 2
    assert not second.exists()
    assert main(["--data", str(data), "--out", str(second), "--sets", "icdar", "--limit", "0"]) == 2


def test_letters_check_counts_digits_read_on_letters_only_words() -> None:
    from recognizer.types import DigitBox, Reading
    from train.letters_check import letters_only_boxes, score_photo
    from train.metrics import centres_inside as digits_on_words

    words = [{"quad": [10, 10, 50, 10, 50, 30, 10, 30], "text": "SHOP"},
             {"quad": [60, 10, 90, 10, 90, 30, 60, 30], "text": "No5"},      # has a digit: not judged
             {"quad": [0, 40, 20, 40, 20, 60, 0, 60], "text": "###"}]        # unreadable: not judged
    wb = letters_only_boxes(words)
    assert wb.tolist() == [[10, 10, 50, 30]]
    on = digits_on_words(np.array([[12, 12, 20, 28], [70, 12, 78, 28]]), wb)
    assert on.tolist() == [[True], [False]]

    def reading(*boxes: tuple[float, float, float, float]) -> Reading:
        digits = tuple(DigitBox(b, 1, 0.9, 0.9) for b in boxes)
        return Reading("1" * len(boxes), 0.9, boxes[0], digits)

    s = score_photo([reading((12, 12, 20, 28), (22, 12, 30, 28)), reading((70, 12, 78, 28))], words)
    assert s == {"words": 1, "words_hit": 1, "false_digits": 2, "invented_numbers": 1}
    # A reading with one digit on a word and one off it adds a false digit, not an invented number.
    s = score_photo([reading((12, 12, 20, 28), (70, 12, 78, 28))], words)
    assert s == {"words": 1, "words_hit": 1, "false_digits": 1, "invented_numbers": 0}
    assert score_photo([], words)["words_hit"] == 0


def test_letters_check_cli_runs_and_reports(tmp_path: Path, tiny_checkpoints, capsys) -> None:
    from train.letters_check import main

    data = tmp_path / "scene_text"
    _scene_text_folder(data)
    out = tmp_path / "check"
    args = ["--data", str(data), "--detector", str(tiny_checkpoints["detector"]),
            "--classifier", str(tiny_checkpoints["classifier"]), "--out", str(out)]
    assert main(args + ["--images", "1-2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["photos"] == 2 and report["words"] == 1
    assert 0 <= report["words_hit"] <= report["words"]
    rows = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == ["scenes_icdar2015/img_1.jpg", "scenes_icdar2015/img_2.jpg"]
    assert "2 photos, 1 letters-only words" in capsys.readouterr().out
    assert main(args + ["--images", "7-9"]) == 2
    assert main(args + ["--score-thresh", "1.5"]) == 2
