"""The synthetic house-number generator: determinism, SVHN formats, exact digit boxes."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognizer.synth import Generator, SynthConfig, find_fonts, font_families, generate, glyphs, render_sample, sample_rng
from tools import synth as synth_cli
from train.svhn import read_32x32_mat, read_digitstruct

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@pytest.fixture(scope="module")
def fonts() -> tuple[str, ...]:
    return find_fonts()


def test_same_seed_and_index_give_identical_bytes(fonts):
    a, b = Generator(11, fonts=fonts), Generator(11, fonts=fonts)
    for i in (0, 5, 123):
        sa, sb = a.sample(i), b.sample(i)
        assert sa.image.tobytes() == sb.image.tobytes()
        assert sa.boxes.tobytes() == sb.boxes.tobytes()
        assert sa.digits.tolist() == sb.digits.tolist()
    assert a.sample(0).image.tobytes() != Generator(12, fonts=fonts).sample(0).image.tobytes()
    assert a.sample(0).image.tobytes() != a.sample(1).image.tobytes()


def test_worker_processes_do_not_change_the_output(fonts):
    one = list(generate(10, 3, workers=1, fonts=fonts))
    two = list(generate(10, 3, workers=2, fonts=fonts, chunk=3))
    assert [i for i, _ in two] == list(range(10))
    for (i, s1), (j, s2) in zip(one, two):
        assert i == j
        assert s1.image.tobytes() == s2.image.tobytes() and np.array_equal(s1.boxes, s2.boxes)


def test_one_to_five_digits_inside_the_image(fonts):
    gen = Generator(5, SynthConfig(digit_count_weights=(1, 1, 1, 1, 1)), fonts=fonts)
    counts = set()
    for i in range(60):
        s = gen.sample(i)
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        h, w = s.image.shape[:2]
        assert 20 <= h <= 250
        assert s.boxes.shape == (len(s.digits), 4) and s.boxes.dtype == np.float32
        assert s.digits.min() >= 0 and s.digits.max() <= 9
        assert (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes[:, 3] > s.boxes[:, 1]).all()
        assert s.boxes[:, :2].min() >= -0.01 and (s.boxes[:, 2] <= w + 0.01).all() and (s.boxes[:, 3] <= h + 0.01).all()
        centres = (s.boxes[:, 0] + s.boxes[:, 2]) / 2
        assert (np.diff(centres) > 0).all(), "digits must be listed left to right"
        counts.add(len(s.digits))
    assert counts == {1, 2, 3, 4, 5}


# Digit boxes of the 256 real SVHN train images in ../shared/data/svhn_real (554 boxes):
# width / height, and the gap to the next box on the right / height, as percentiles 10/50/90.
SVHN_BOX_ASPECT = (0.32, 0.49, 0.68)
SVHN_BOX_GAP = (-0.11, 0.0, 0.10)
# The narrowest tenth of SVHN's digits needs narrow faces. With the font packages .ci/run installs
# the generator's 10th percentile of width/height is 0.35-0.37 (seeds 7-9); a fresh machine with
# DejaVu alone has nothing narrower than DejaVu Sans Condensed and gets 0.38-0.39 from the same
# generator. Only that bound, and only on such a machine, is looser; every other check is the same.
ASPECT_P10_TOL = 0.07
ASPECT_P10_TOL_DEJAVU_ONLY = 0.09


def only_dejavu(fonts) -> bool:
    """The fonts found are DejaVu's alone (a machine without the packages of .ci/apt-packages.txt)."""
    return bool(fonts) and all(Path(f).parent == DEJAVU for f in fonts)


def test_boxes_are_as_narrow_and_as_close_as_svhns(fonts):
    # The 32x32 crops widen each box to a square, so how narrow the digits are and how close
    # their neighbours stand decides what the classifier sees beside the digit. With digits a
    # tenth wider (median 0.55) and one number in eight spaced out, a SmallCNN trained on 30,000
    # generated crops alone read 68.4% of 808 real crops; with the present shapes, 79.1%.
    aspect, gap = [], []
    for _, s in generate(300, 7, workers=1, fonts=fonts):
        b = s.boxes
        h = b[:, 3] - b[:, 1]
        aspect += list((b[:, 2] - b[:, 0]) / h)
        gap += list((b[1:, 0] - b[:-1, 2]) / h[:-1])
    a10, a50, a90 = np.percentile(aspect, [10, 50, 90])
    g10, g50, g90 = np.percentile(gap, [10, 50, 90])
    p10_tol = ASPECT_P10_TOL_DEJAVU_ONLY if only_dejavu(fonts) else ASPECT_P10_TOL
    assert abs(a50 - SVHN_BOX_ASPECT[1]) <= 0.04, f"median box width/height {a50:.2f}"
    assert abs(a10 - SVHN_BOX_ASPECT[0]) <= p10_tol and abs(a90 - SVHN_BOX_ASPECT[2]) <= 0.07, (a10, a90, len(fonts))
    assert abs(g50 - SVHN_BOX_GAP[1]) <= 0.04, f"median gap/height {g50:.2f}"
    assert g10 >= SVHN_BOX_GAP[0] - 0.05 and g90 <= SVHN_BOX_GAP[2] + 0.08, (g10, g90)


def _ink(image: np.ndarray) -> np.ndarray:
    """Ink of a clean render: pixels a quarter of the way or more from the background to the digit
    colour (thin strokes shrunk to a few pixels never reach full contrast)."""
    im = image.astype(np.float32)
    border = np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]])
    dist = np.abs(im - np.median(border, 0)).sum(2)
    return dist > 0.25 * dist.max()


@pytest.mark.parametrize("seed", [1, 2])
def test_boxes_lie_tight_on_the_drawn_digits(fonts, seed):
    # Clean renders (flat wall, no plate, no camera effects) keep rotation, perspective,
    # slant and every glyph source, so ink can be measured exactly.
    gen = Generator(seed, SynthConfig(clean=True), fonts=fonts)
    worst = 0.0
    for i in range(40):
        s = gen.sample(i)
        ink = _ink(s.image)
        covered = np.zeros_like(ink)
        for x1, y1, x2, y2 in s.boxes:
            ix1, iy1, ix2, iy2 = int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))
            covered[max(iy1 - 1, 0) : iy2 + 1, max(ix1 - 1, 0) : ix2 + 1] = True
            ys, xs = np.nonzero(ink[max(iy1, 0) : iy2, max(ix1, 0) : ix2])
            assert len(xs) > 0, f"sample {i}: no ink inside box {(x1, y1, x2, y2)}"
            ox, oy = max(ix1, 0), max(iy1, 0)
            gaps = [xs.min() + ox - x1, ys.min() + oy - y1, x2 - (xs.max() + ox + 1), y2 - (ys.max() + oy + 1)]
            worst = max(worst, max(abs(g) for g in gaps))
            assert max(abs(g) for g in gaps) <= 1.5, f"sample {i} ({s.info}): box {(x1, y1, x2, y2)} is off its ink by {gaps}"
        assert not (ink & ~covered).any(), f"sample {i} ({s.info}): ink outside every box"
    assert worst > 0.0  # the measure is live (a box exactly on pixel edges everywhere is implausible)


def test_forced_digits_and_bad_digits(fonts):
    s = render_sample(sample_rng(0, 0), font_families(fonts), digits=[4, 0, 7])
    assert s.text == "407" and len(s.boxes) == 3
    with pytest.raises(ValueError, match="0..9"):
        render_sample(sample_rng(0, 0), font_families(fonts), digits=[1, 12])
    with pytest.raises(ValueError, match="must be >= 0"):
        sample_rng(-1, 0)


def test_works_with_only_dejavu_and_with_no_fonts_at_all():
    dejavu = find_fonts([DEJAVU])
    assert dejavu and all(p.startswith(str(DEJAVU)) for p in dejavu)
    for fonts in (dejavu, ()):
        gen = Generator(4, fonts=fonts)
        for i in range(8):
            s = gen.sample(i)
            assert len(s.digits) >= 1 and s.image.size > 0
            if not fonts:
                assert s.info["glyphs"] in ("hershey", "segment", "stroke")


def test_find_fonts_skips_broken_files_and_pictures(tmp_path):
    shutil.copy(DEJAVU / "DejaVuSans.ttf", tmp_path / "Good.ttf")
    (tmp_path / "Broken.ttf").write_bytes(b"not a font at all" * 10)
    shutil.copy(DEJAVU / "DejaVuSans.ttf", tmp_path / "SomeWeatherIcons.ttf")  # excluded by name
    (tmp_path / "sub").mkdir()
    shutil.copy(DEJAVU / "DejaVuSerif.ttf", tmp_path / "sub" / "Serif.otf")
    found = find_fonts([tmp_path])
    assert [Path(p).name for p in found] == ["Good.ttf", "Serif.otf"]
    assert len(font_families(found)) == 2


@pytest.mark.parametrize("source", ["font", "hershey", "segment", "stroke"])
def test_every_glyph_source_draws_every_digit_at_the_asked_height(source):
    rng = np.random.default_rng(0)
    fonts = font_families(find_fonts([DEJAVU]))
    weights = tuple(1.0 if s == source else 0.0 for s in ("font", "hershey", "segment", "stroke"))
    style = glyphs.make_style(rng, fonts, weights)
    assert style.source == source
    masks = [glyphs.render_glyph(style, d, 40, rng) for d in range(10)]
    for d, m in enumerate(masks):
        assert m.dtype == np.float32 and m.max() > 0.5, f"digit {d} has no ink"
        rows = np.nonzero((m > 0.5).any(axis=1))[0]
        assert 24 <= rows.max() - rows.min() + 1 <= 60, f"{source} digit {d}: ink {rows.max() - rows.min() + 1} px tall"
    assert len({m.tobytes() for m in masks}) == 10


def test_full_format_is_read_by_the_svhn_reader(tmp_path, fonts):
    out = tmp_path / "full"
    r = synth_cli.write_full(out, 6, 9, workers=1)
    assert r["images"] == 6 and r["images_per_s"] > 0
    images = read_digitstruct(out / "digitStruct.mat", cache=False)
    assert [im.name for im in images] == [f"{i}.png" for i in range(1, 7)]
    gen = Generator(9, fonts=fonts)
    for i, im in enumerate(images):
        s = gen.sample(i)
        assert im.text == s.text
        png = cv2.imread(str(out / im.name))
        assert png.shape == s.image.shape and np.array_equal(png, s.image)
        assert np.array_equal(im.boxes, np.round(im.boxes))  # integer boxes, as SVHN's
        np.testing.assert_allclose(im.xyxy, s.boxes, atol=0.5 + 1e-4)


def test_crops_npz_and_mat(tmp_path):
    npz = tmp_path / "c.npz"
    synth_cli.write_crops(npz, 25, 4, workers=1)
    d = np.load(npz)
    assert d["X"].shape == (25, 32, 32, 3) and d["X"].dtype == np.uint8
    assert d["y"].shape == (25,) and d["y"].min() >= 0 and d["y"].max() <= 9
    assert d["source_image"].shape == (25,) and d["source_image"].min() >= 1
    assert d["source_box"].shape == (25, 4)
    assert d["X"].std() > 5  # not blank
    mat = tmp_path / "c.mat"
    synth_cli.write_crops(mat, 25, 4, workers=1)
    X, y = read_32x32_mat(mat)
    assert np.array_equal(X, d["X"]) and np.array_equal(y, d["y"])


def test_cli_errors_keep_existing_files(tmp_path, capsys):
    out = tmp_path / "full"
    assert synth_cli.main(["full", "--out", str(out), "--n", "2", "--workers", "1", "--quiet"]) == 0
    before = (out / "digitStruct.mat").read_bytes()
    assert synth_cli.main(["full", "--out", str(out), "--n", "3", "--workers", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "digitStruct.mat").read_bytes() == before
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep")
    assert synth_cli.main(["full", "--out", str(a_file), "--n", "2"]) == 2
    assert a_file.read_text() == "keep"
    assert synth_cli.main(["crops", "--out", str(tmp_path / "c.txt"), "--n", "2"]) == 2
    assert ".npz or .mat" in capsys.readouterr().err
    assert synth_cli.main(["full", "--out", str(tmp_path / "x"), "--n", "0"]) == 2
    assert synth_cli.main(["full", "--out", str(tmp_path / "x"), "--n", "2", "--seed", "-3"]) == 2


def test_sheet_without_real_data(tmp_path):
    out = tmp_path / "sheet.png"
    assert synth_cli.main(["sheet", "--out", str(out), "--n", "4", "--real", str(tmp_path / "none")]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 300


def _shipped_classifier():
    try:
        from recognizer.models.weights import default_weight_path

        return default_weight_path("classifier")
    except Exception:
        return None


@pytest.mark.skipif(_shipped_classifier() is None, reason="shipped weights/classifier.pt not present yet")
def test_shipped_classifier_reads_generated_digits():
    import torch

    from recognizer.models import load_checkpoint
    from recognizer.models.preprocess import crop_digits, crops_to_tensor

    model = load_checkpoint(_shipped_classifier(), kind="classifier").model.eval()
    gen = Generator(987_654)  # a seed no training command in the README uses
    X, y = [], []
    for i in range(80):
        s = gen.sample(i)
        X.append(crop_digits(s.image, s.boxes))
        y.append(s.digits)
    with torch.no_grad():
        pred = model(crops_to_tensor(np.concatenate(X))).argmax(1).numpy()
    acc = float((pred == np.concatenate(y)).mean())
    assert acc >= 0.8, f"shipped classifier reads {acc:.1%} of generated digits"
