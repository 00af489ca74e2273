"""train.detector (one tiny CPU training step, resume, bad input), its learning-rate schedule,
and the detection augmentation (boxes must follow the image; nothing is flipped)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train import augment
from train.detector import lr_lambda_factory
from train.metrics import box_iou

GEOMETRY_ONLY = augment.DetectionAugment(
    augment.DetectionAugmentConfig(
        p_geometric=1.0,
        photometric=augment.PhotometricConfig(p_color=0, p_gray=0, p_blur=0, p_downscale=0, p_noise=0, p_jpeg=0),
    )
)
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _canvas() -> tuple[np.ndarray, np.ndarray]:
    """Three solid, upright, digit-shaped rectangles of distinct colours on black."""
    image = np.zeros((120, 200, 3), np.uint8)
    boxes = np.array([[40, 30, 60, 80], [64, 32, 84, 82], [88, 31, 108, 81]], np.float32)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), COLOURS):
        image[y1:y2, x1:x2] = colour
    return image, boxes


def _ink_box(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    mask = np.all(np.abs(image.astype(int) - colour) < 60, axis=2)
    ys, xs = np.nonzero(mask)
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)


@pytest.mark.parametrize("seed", range(8))
def test_detection_augment_boxes_follow_the_content(seed: int) -> None:
    image, boxes = _canvas()
    out, moved = GEOMETRY_ONLY(image, boxes, np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert moved.shape == boxes.shape and moved.dtype == np.float32
    h, w = image.shape[:2]
    assert (moved[:, [0, 2]] >= 0).all() and (moved[:, [0, 2]] <= w).all()
    assert (moved[:, [1, 3]] >= 0).all() and (moved[:, [1, 3]] <= h).all()
    for box, colour in zip(moved, COLOURS):
        assert box_iou(box[None], _ink_box(out, colour))[0, 0] > 0.8


def test_detection_augment_never_mirrors_left_to_right_order() -> None:
    image, boxes = _canvas()
    aug = augment.detection_augment("full")
    for seed in range(30):
        _, moved = aug(image, boxes, np.random.default_rng(seed))
        centres = (moved[:, 0] + moved[:, 2]) / 2
        assert np.all(np.diff(centres) > 0), f"seed {seed}: digit order changed {centres}"


def test_detection_augment_changes_images_and_handles_no_boxes() -> None:
    image, boxes = _canvas()
    aug = augment.detection_augment("full")
    changed = [not np.array_equal(aug(image, boxes, np.random.default_rng(s))[0], image) for s in range(10)]
    assert sum(changed) >= 8
    out, none = aug(image, np.zeros((0, 4), np.float32), np.random.default_rng(0))
    assert out.shape == image.shape and none.shape == (0, 4)
    assert augment.detection_augment("none") is None
    with pytest.raises(ValueError, match="expected one of"):
        augment.detection_augment("flip")


def test_transform_boxes_identity_and_pure_scale() -> None:
    boxes = np.array([[10, 20, 30, 60]], np.float32)
    assert np.allclose(augment.transform_boxes(boxes, np.eye(3)), boxes)
    scale = np.diag([2.0, 2.0, 1.0])
    assert np.allclose(augment.transform_boxes(boxes, scale), boxes * 2)


# --------------------------------------------------------------------------- schedule


def test_lr_schedule_warmup_then_cosine() -> None:
    f = lr_lambda_factory(total_steps=100, warmup_steps=10, warmup_factor=0.01, schedule="cosine", milestones=[], gamma=0.1)
    values = [f(s) for s in range(101)]
    assert values[0] == pytest.approx(0.01)
    assert all(a < b for a, b in zip(values[:10], values[1:11]))  # rising during warmup
    assert values[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))  # then never rising
    assert values[100] < 0.01


def test_lr_schedule_step_and_short_runs() -> None:
    f = lr_lambda_factory(total_steps=100, warmup_steps=0, warmup_factor=0.1, schedule="step", milestones=[50, 80], gamma=0.1)
    assert [f(0), f(49), f(50), f(79), f(80)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    # A 4-step smoke run with the default 500-step warmup still reaches the peak and decays.
    g = lr_lambda_factory(total_steps=4, warmup_steps=500, warmup_factor=0.001, schedule="cosine", milestones=[], gamma=0.1)
    assert g(0) < g(2) and g(2) == pytest.approx(1.0) and g(4) < g(2)


# --------------------------------------------------------------------------- training runs

TINY = ["--min-size", "64", "--max-size", "96", "--batch-size", "2", "--workers", "0", "--device", "cpu",
        "--no-progress", "--val-batch-size", "4"]


def test_one_tiny_training_step_writes_a_loadable_detector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from svhn_fixtures import make_svhn_dir

    from recognizer.models import load_checkpoint
    from train.detector import main

    split = make_svhn_dir(tmp_path, n_images=6)
    out = tmp_path / "run"
    rc = main(["--train", str(split), "--train-images", "1-4", "--val", str(split), "--val-images", "5-",
               "--epochs", "1", "--max-steps", "1", "--out", str(out), *TINY])
    assert rc == 0
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(out / name, kind="detector")
        assert ckpt.config["arch"] == "light" and ckpt.config["min_size"] == 64
        meta = ckpt.metadata
        assert meta["train_size"] == 4 and meta["val_size"] == 2
        assert meta["steps"] == 1 and meta["epochs"] == 1 and meta["world_size"] == 1
        assert meta["val_ap50"] is None or 0.0 <= meta["val_ap50"] <= 1.0
        assert ckpt.extra["step"] == 1 and "optimizer" in ckpt.extra and "scheduler" in ckpt.extra
    out_text = capsys.readouterr().out
    assert "held-out AP@0.5:" in out_text and "on 2 images" in out_text
    # The saved model runs as a detector.
    model = load_checkpoint(out / "best.pt").model.eval()
    with torch.inference_mode():
        result = model([torch.rand(3, 60, 90)])[0]
    assert set(result) >= {"boxes", "scores", "labels"}


def test_resume_continues_steps_and_schedule(tmp_path: Path) -> None:
    from svhn_fixtures import make_svhn_split

    from recognizer.models import load_checkpoint
    from train.detector import main

    split, _ = make_svhn_split(tmp_path / "json", 5, annotations="json")  # labels.json layout
    out = tmp_path / "run"
    base = ["--train", str(split), "--val-split", "0.2", "--out", str(out), "--opt", "adamw", *TINY]
    assert main([*base, "--epochs", "1"]) == 0
    first = load_checkpoint(out / "last.pt")
    assert first.extra["epoch"] == 1 and first.extra["step"] == 2  # 4 train images, batches of 2
    assert main([*base, "--epochs", "2", "--resume", str(out / "last.pt")]) == 0
    second = load_checkpoint(out / "last.pt")
    assert second.extra["epoch"] == 2 and second.extra["step"] == 4
    assert second.extra["scheduler"]["last_epoch"] == 4
    assert second.metadata["val"].startswith("random 0.2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "{tmp}/nowhere"], "--train '{tmp}/nowhere': no such folder"),
        (["--train", "{tmp}"], "has neither digitStruct.mat nor labels.json"),
        (["--train", "{split}", "--train-images", "50-60"], "no images selected"),
        (["--train", "{split}", "--val-split", "0"], "--val-split 0.0 must be between 0 and 1"),
        (["--train", "{split}", "--arch", "huge"], "unknown detector arch 'huge'"),
        (["--train", "{split}", "--dist-backend", "mpi"], "--dist-backend 'mpi' is not valid"),
        pytest.param(["--train", "{split}", "--amp", "on"], "--amp on needs a CUDA device",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
        (["--train", "{split}", "--resume", "{tmp}/nope.pt"], "--resume '{tmp}/nope.pt': no such file"),
        (["--train", "{split}", "--init", "{cls}"], "is a classifier checkpoint, expected a detector"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, tiny_checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from svhn_fixtures import make_svhn_dir

    from train.detector import main

    split = make_svhn_dir(tmp_path / "data", 3)
    fill = {"tmp": str(tmp_path), "split": str(split), "cls": str(tiny_checkpoints["classifier"])}
    argv = [a.format(**fill) for a in args] + ["--out", str(tmp_path / "run"), "--workers", "0", "--device", "cpu"]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and err[0].startswith("train.detector: error: ")
    assert message.format(**fill) in err[0]
    assert not (tmp_path / "run").exists()
