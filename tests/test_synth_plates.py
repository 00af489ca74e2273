"""Close-ups of number plates (recognizer.synth.plates, tools/synth.py plates): boxes on the ink,
the number's size and spacing ranges, letters marked as not digits, determinism, SVHN output."""
from __future__ import annotations

import numpy as np
import pytest

from recognizer.synth import find_fonts, font_families
from recognizer.synth.plates import PlateConfig, PlateGenerator, generate_plates, plate_rng, render_plate
from tools import synth as synth_cli
from tools import synth_scenes
from train.datasets import load_split, read_image


@pytest.fixture(scope="module")
def fonts() -> tuple[str, ...]:
    return find_fonts()


@pytest.fixture(scope="module")
def clean_samples(fonts):
    """150 clean close-ups (flat colours, no camera; geometry, fill and spacing as by default)."""
    gen = PlateGenerator(5, PlateConfig(clean=True), fonts)
    return [gen.sample(i) for i in range(150)]


def _span_fill(s) -> float:
    b = s.char_boxes
    h, w = s.image.shape[:2]
    return max((b[:, 2].max() - b[:, 0].min()) / w, (b[:, 3].max() - b[:, 1].min()) / h)


@pytest.mark.parametrize("size", [(240, 320), (320, 320), (320, 240)])
def test_every_box_is_tight_on_its_ink_and_no_ink_is_unboxed(fonts, size):
    gen = PlateGenerator(1, PlateConfig(size=size, clean=True, suffix_prob=0.5), fonts)
    for i in range(10):
        s = gen.sample(i)
        assert s.image.shape == (*size, 3) and s.image.dtype == np.uint8
        ink = np.abs(s.image.astype(int) - s.image[0, 0].astype(int)).max(axis=2) > 40
        covered = np.zeros_like(ink)
        for (x1, y1, x2, y2), ch in zip(s.char_boxes, s.chars):
            assert 0 <= x1 < x2 <= size[1] and 0 <= y1 < y2 <= size[0], (i, ch)
            a, b = int(np.floor(x1)) - 1, int(np.floor(y1)) - 1
            ys, xs = np.nonzero(ink[max(b, 0) : int(np.ceil(y2)) + 1, max(a, 0) : int(np.ceil(x2)) + 1])
            assert len(xs) > 0.05 * (x2 - x1) * (y2 - y1), f"sample {i}: little ink in the box of {ch!r}"
            xs, ys = xs + max(a, 0), ys + max(b, 0)
            # The ink reaches every side of its box (within 2 px): the box is not loose.
            assert xs.min() <= x1 + 2 and xs.max() + 1 >= x2 - 2 and ys.min() <= y1 + 2 and ys.max() + 1 >= y2 - 2, (i, ch)
            covered[max(b - 1, 0) : int(np.ceil(y2)) + 2, max(a - 1, 0) : int(np.ceil(x2)) + 2] = True
        assert (ink & ~covered).sum() <= 0.005 * ink.sum(), f"sample {i}: ink outside every box"


def test_full_renders_show_every_digit_against_its_surroundings(fonts):
    gen = PlateGenerator(2, PlateConfig(size=(240, 320)), fonts)
    for i in range(24):
        s = gen.sample(i)
        grey = s.image.mean(axis=2)
        for x1, y1, x2, y2 in s.boxes:
            patch = grey[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
            assert patch.std() >= 4.0, f"sample {i} ({s.info}): a digit box is flat (std {patch.std():.1f})"


def test_the_number_fills_20_to_95_percent_of_the_frame(clean_samples):
    fills = np.array([_span_fill(s) for s in clean_samples])
    assert fills.min() >= 0.15 and fills.max() <= 1.0
    assert fills.min() < 0.27 and fills.max() > 0.85
    for lo, hi in ((0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.95)):
        assert ((fills >= lo) & (fills < hi)).mean() >= 0.1, f"too few numbers fill {lo:.0%}-{hi:.0%}: {np.sort(fills).round(2)}"


def test_spacing_runs_from_tight_to_a_whole_digit_wide(clean_samples):
    per_number = []
    for s in clean_samples:
        b = s.boxes
        if len(b) < 2:
            continue
        width = float(np.median(b[:, 2] - b[:, 0]))
        per_number.append(float(np.median((b[1:, 0] - b[:-1, 2]) / width)))
    g = np.array(per_number)
    assert np.percentile(g, 10) < 0.12, np.percentile(g, [10, 50, 90])
    assert np.percentile(g, 90) > 0.55, np.percentile(g, [10, 50, 90])
    assert g.max() < 2.0
    assert (g > 0.75).sum() >= 5  # some numbers spaced by most of a digit width ("1 0 8")


def test_suffix_letters_are_boxed_but_not_digits(fonts, clean_samples):
    s = render_plate(plate_rng(0, 0), font_families(list(fonts)), PlateConfig(clean=True), text="502C")
    assert s.chars == ("5", "0", "2", "C") and s.text == "502C"
    assert s.digits.tolist() == [5, 0, 2] and len(s.boxes) == 3
    assert s.text_chars == ("C",) and s.text_boxes.shape == (1, 4)
    assert s.text_boxes[0, 0] > s.boxes[:, 0].max()  # after the digits
    with_letters = sum(len(x.text_chars) > 0 for x in clean_samples) / len(clean_samples)
    assert 0.03 <= with_letters <= 0.2  # about 10%
    counts = np.bincount([len(x.digits) for x in clean_samples], minlength=5)
    assert counts[1:].min() > 0 and counts.argmax() == 3  # 1-4 digits, mostly three as on buildings
    with pytest.raises(ValueError):
        render_plate(plate_rng(0, 0), [], PlateConfig(), text="C5")


def test_a_seed_and_index_give_the_same_image_whatever_the_workers(fonts):
    cfg = PlateConfig(size=(120, 160))
    a = [s for _, s in generate_plates(6, 4, workers=1, config=cfg, fonts=fonts)]
    b = [s for _, s in generate_plates(6, 4, workers=2, config=cfg, fonts=fonts, chunk=3)]
    for x, y in zip(a, b):
        assert x.image.tobytes() == y.image.tobytes() and np.array_equal(x.char_boxes, y.char_boxes) and x.chars == y.chars
    assert a[0].image.tobytes() != a[1].image.tobytes()
    other = PlateGenerator(5, cfg, fonts).sample(0)
    assert other.image.tobytes() != a[0].image.tobytes()


def test_tools_synth_plates_writes_an_svhn_folder_that_reads_and_merges(tmp_path, fonts):
    out = tmp_path / "plates"
    args = ["plates", "--out", str(out), "--n", "5", "--seed", "3", "--workers", "1", "--size", "320x320", "--quiet"]
    assert synth_cli.main(args) == 0
    split = load_split(out)
    gen = PlateGenerator(3, PlateConfig(size=(320, 320)), fonts)
    assert [r.name for r in split.records] == [f"{i}.png" for i in range(1, 6)]
    for i, r in enumerate(split.records):
        image, err = read_image(split.image_root / r.name)
        assert err is None and image.shape == (320, 320, 3)
        assert r.digits.tolist() == gen.sample(i).digits.tolist()
        xyxy = r.xyxy
        assert (xyxy[:, :2] >= -1).all() and (xyxy[:, 2] <= 321).all() and (xyxy[:, 3] <= 321).all()
    assert synth_cli.main(args) != 0  # an existing output is kept without --overwrite
    assert len(synth_scenes.merge(tmp_path / "merged", [str(out), f"{out}:1-2:x2"])) == 9


def test_tools_synth_plate_crops_labels_letters_not_a_digit(tmp_path):
    npz = tmp_path / "c.npz"
    args = ["plate-crops", "--out", str(npz), "--n", "24", "--seed", "1", "--workers", "1", "--suffix-prob", "1",
            "--text-crops", "--size", "120x160", "--quiet"]
    assert synth_cli.main(args) == 0
    data = np.load(npz)
    assert data["X"].shape == (24, 32, 32, 3) and data["X"].dtype == np.uint8
    assert (data["y"] == -1).sum() >= 3 and set(data["y"].tolist()) <= set(range(-1, 10))


@pytest.mark.parametrize("extra", [["--size", "10x10"], ["--size", "240"], ["--suffix-prob", "2"], ["--seed", "-1"],
                                   ["--fill", "0.9,0.2"], ["--fill", "0.5"], ["--fill", "nan,1"]])
def test_tools_synth_plates_rejects_bad_options(tmp_path, extra):
    assert synth_cli.main(["plates", "--out", str(tmp_path / "p"), "--n", "2", "--workers", "1", *extra]) == 2
    assert not (tmp_path / "p").exists()
