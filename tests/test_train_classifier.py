"""train.classifier (one tiny CPU training run, resume, fine-tune, bad input) and the crop
augmentation it uses (train.augment)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train import augment
from train.common import UsageError, in_ranges, parse_ranges

# --------------------------------------------------------------------------- crop augmentation


def _crop(seed: int = 0) -> np.ndarray:
    from svhn_fixtures import draw_crop

    return draw_crop(7, np.random.default_rng(seed))


def test_crop_augment_keeps_shape_dtype_and_repeats_per_seed() -> None:
    aug = augment.crop_augment("full")
    crop = _crop()
    a = aug(crop, np.random.default_rng(5))
    b = aug(crop, np.random.default_rng(5))
    c = aug(crop, np.random.default_rng(6))
    assert a.shape == crop.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Over a few draws the "full" profile really changes crops.
    changed = [not np.array_equal(aug(crop, np.random.default_rng(s)), crop) for s in range(10)]
    assert sum(changed) >= 8


def test_crop_profiles_none_and_unknown() -> None:
    assert augment.crop_augment("none") is None
    with pytest.raises(ValueError, match="'wild' is unknown"):
        augment.crop_augment("wild")


def test_photometric_pieces_do_what_they_say() -> None:
    crop = _crop()
    rng = np.random.default_rng(0)
    assert np.array_equal(augment.invert(augment.invert(crop)), crop)
    assert int(augment.invert(crop)[0, 0, 0]) == 255 - int(crop[0, 0, 0])
    assert np.array_equal(augment.color_jitter(crop, rng), crop)  # all strengths 0
    assert np.array_equal(augment.random_affine(crop, rng), crop)  # no shift/scale/rotation
    gray = augment.to_gray(crop)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    blurred = augment.gaussian_blur(crop, 1.5)
    assert blurred.std() < crop.std()
    jpg = augment.jpeg(crop, 40)
    assert jpg.shape == crop.shape and 0 < np.abs(jpg.astype(int) - crop).mean() < 20
    noisy = augment.gaussian_noise(crop, rng, 8.0)
    assert 2 < np.abs(noisy.astype(int) - crop).mean() < 12


def test_random_affine_shift_moves_the_digit() -> None:
    crop = np.zeros((32, 32, 3), np.uint8)
    crop[12:20, 14:18] = 255
    moved = augment.random_affine(crop, np.random.default_rng(1), shift=0.2)
    ys, xs = np.nonzero(moved[..., 0] > 128)
    assert len(xs) > 0
    assert (xs.mean(), ys.mean()) != pytest.approx((15.5, 15.5), abs=0.5)


@pytest.mark.parametrize(
    ("text", "inside", "outside", "error"),
    [
        ("1-128,257-", [1, 128, 257, 10_000], [0, 129, 256], None),
        ("129-256", [129, 200, 256], [128, 257], None),
        ("7", [7], [6, 8], None),
        ("-5", [0, 5], [6], None),
        ("", None, None, "empty"),
        ("3-1", None, None, "ends before it starts"),
        ("a-b", None, None, "not a number or range"),
    ],
)
def test_parse_ranges_table(text: str, inside: list[int], outside: list[int], error: str | None) -> None:
    if error:
        with pytest.raises(UsageError, match=error):
            parse_ranges(text)
        return
    ranges = parse_ranges(text)
    assert all(in_ranges(v, ranges) for v in inside)
    assert not any(in_ranges(v, ranges) for v in outside)


# --------------------------------------------------------------------------- training runs

FAST = ["--batch-size", "8", "--workers", "0", "--device", "cpu", "--no-progress", "--channels", "4", "8", "8"]


def test_one_tiny_training_run_writes_loadable_best_and_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from svhn_fixtures import make_crops_npz

    from recognizer.models import SmallCNN, load_checkpoint
    from train.classifier import main

    npz = tmp_path / "crops.npz"
    make_crops_npz(npz, n=40)
    out = tmp_path / "run"
    rc = main(["--train", str(npz), "--npz-source-images", "1-20,31-", "--val", str(npz),
               "--val-npz-source-images", "21-30", "--epochs", "1", "--max-steps", "2", "--out", str(out), *FAST])
    assert rc == 0
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(out / name, kind="classifier")
        assert isinstance(ckpt.model, SmallCNN) and ckpt.config["channels"] == [4, 8, 8]
        meta = ckpt.metadata
        assert meta["train_size"] == 30 and meta["val_size"] == 10  # the source-image filters
        assert meta["train"] == [str(npz)] and meta["train_filter"] == "1-20,31-"
        assert meta["epochs"] == 1 and meta["steps"] == 2
        assert 0.0 <= meta["val_accuracy"] <= 1.0 and "--max-steps" in meta["command"]
        assert meta["wall_time_s"] >= 0
        assert ckpt.extra["epoch"] == 1 and ckpt.extra["step"] == 2 and "optimizer" in ckpt.extra
    printed = capsys.readouterr().out
    assert "held-out accuracy:" in printed and "on 10 crops" in printed


def test_training_changes_the_weights_and_resume_continues(tmp_path: Path) -> None:
    from svhn_fixtures import make_32x32_mat

    from recognizer.models import load_checkpoint
    from train.classifier import main

    mat = tmp_path / "train_32x32.mat"
    make_32x32_mat(mat, n=24)
    out = tmp_path / "run"
    base = ["--train", str(mat), "--val-split", "0.25", "--out", str(out), *FAST]
    assert main([*base, "--epochs", "1"]) == 0
    first = load_checkpoint(out / "last.pt")
    assert first.extra["epoch"] == 1 and first.extra["step"] == 2  # 18 crops, batches of 8, last dropped
    assert first.metadata["val_size"] == 6
    assert main([*base, "--epochs", "3", "--resume", str(out / "last.pt")]) == 0
    resumed = load_checkpoint(out / "last.pt")
    assert resumed.extra["epoch"] == 3 and resumed.extra["step"] == 6
    assert resumed.metadata["wall_time_s"] >= first.metadata["wall_time_s"]
    changed = [not torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), resumed.model.state_dict().values())
               if a.is_floating_point()]
    assert any(changed)
    # Adam's moments came back: the optimizer state has one entry per parameter.
    assert len(resumed.extra["optimizer"]["state"]) == len(list(resumed.model.parameters()))


def test_init_fine_tunes_from_a_checkpoint_and_svhn_folders_are_crop_sources(
    tmp_path: Path, tiny_checkpoints: dict[str, Path]
) -> None:
    from svhn_fixtures import make_svhn_dir

    from recognizer.models import load_checkpoint
    from train.classifier import main

    split = make_svhn_dir(tmp_path, n_images=6)
    out = tmp_path / "ft"
    rc = main(["--train", str(split), "--val", str(split), "--init", str(tiny_checkpoints["classifier"]),
               "--epochs", "1", "--max-steps", "1", "--out", str(out), "--augment", "light",
               "--batch-size", "4", "--workers", "0", "--device", "cpu", "--no-progress"])
    assert rc == 0
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt.config["channels"] == [8, 16, 32]  # the --init model's architecture, not --channels
    assert ckpt.metadata["init"] == str(tiny_checkpoints["classifier"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "{tmp}/none.npz"], "--train '{tmp}/none.npz': "),
        (["--train", "{npz}", "--val-split", "1.5"], "--val-split 1.5 must be between 0 and 1"),
        (["--train", "{npz}", "--npz-source-images", "500-"], "no crops left"),
        (["--train", "{npz}", "--npz-source-images", "x"], "not a number or range"),
        (["--train", "{npz}", "--epochs", "0"], "--epochs 0 must be at least 1"),
        (["--train", "{npz}", "--label-smoothing", "1"], "--label-smoothing 1.0 must be in [0, 1)"),
        (["--train", "{npz}", "--resume", "{cls}"], "has no training state"),
        (["--train", "{npz}", "--init", "{det}"], "is a detector checkpoint, expected a classifier"),
        (["--train", "{npz}", "--init", "{cls}", "--resume", "{cls}"], "--init and --resume both given"),
        (["--train", "{npz}", "--device", "tpu"], "--device 'tpu'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, tiny_checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from svhn_fixtures import make_crops_npz

    from train.classifier import main

    npz = tmp_path / "crops.npz"
    make_crops_npz(npz, n=12)
    fill = {"tmp": str(tmp_path), "npz": str(npz), "cls": str(tiny_checkpoints["classifier"]),
            "det": str(tiny_checkpoints["detector"])}
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"an earlier run")
    argv = [a.format(**fill) for a in args] + ["--out", str(out), "--workers", "0", "--no-progress"]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and err[0].startswith("train.classifier: error: ")
    assert message.format(**fill) in err[0]
    assert (out / "last.pt").read_bytes() == b"an earlier run"  # nothing written is lost


def test_truncated_32x32_mat_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from svhn_fixtures import corrupt_file, make_32x32_mat

    from train.classifier import main

    mat = tmp_path / "train_32x32.mat"
    make_32x32_mat(mat, n=12)
    corrupt_file(mat, "truncate")
    assert main(["--train", str(mat), "--out", str(tmp_path / "run"), "--workers", "0"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and err[0].startswith(f"train.classifier: error: --train '{mat}'")
    assert not (tmp_path / "run").exists()
