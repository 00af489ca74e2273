from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognizer import cli
from recognizer._compat import DependencyError, require_torchvision


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "recognizer", *args], capture_output=True, text=True, timeout=120, env=env)


def test_help_lists_the_image_command():
    res = run_cli("--help")
    assert res.returncode == 0
    assert "image" in res.stdout
    res = run_cli("image", "--help")
    assert res.returncode == 0 and "--save-dir" in res.stdout and "--json" in res.stdout


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), rng.integers(0, 255, (100, 150, 3), dtype=np.uint8))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    return {"good": good, "corrupt": corrupt, "missing": tmp_path / "missing.png"}


def test_bad_images_are_reported_by_name_and_the_rest_processed(images, tiny_checkpoints, tmp_path, capsys):
    out_dir = tmp_path / "drawn"
    code = cli.main(
        [
            "image",
            str(images["missing"]),
            str(images["good"]),
            str(images["corrupt"]),
            "--detector",
            str(tiny_checkpoints["detector"]),
            "--classifier",
            str(tiny_checkpoints["classifier"]),
            "--device",
            "cpu",
            "--json",
            "--save-dir",
            str(out_dir),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert f"cannot read image '{images['missing']}': no such file" in captured.err
    assert f"cannot read image '{images['corrupt']}': not a readable image" in captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["path"] for line in lines] == [str(images["good"])]
    assert isinstance(lines[0]["readings"], list)
    drawn = cv2.imread(str(out_dir / "good_read.png"))
    assert drawn is not None and drawn.shape == (100, 150, 3)


def test_all_good_exits_zero_with_plain_output(images, tiny_checkpoints, capsys):
    code = cli.main(
        ["image", str(images["good"]), "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"])]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith(f"{images['good']}: ")


def test_missing_weights_say_how_to_get_them(images, tmp_path, capsys):
    code = cli.main(["image", str(images["good"]), "--detector", str(tmp_path / "nope.pt")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nope.pt" in err and "does not exist" in err


def test_default_weights_missing_message(monkeypatch, tmp_path):
    from recognizer.models import weights

    monkeypatch.setattr(weights, "weight_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(weights.WeightsNotFoundError, match="python -m train.detector") as info:
        weights.default_weight_path("detector")
    assert str(tmp_path / "a") in str(info.value)


def test_damaged_weights_named(images, tmp_path, tiny_checkpoints, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    code = cli.main(["image", str(images["good"]), "--detector", str(bad), "--classifier", str(tiny_checkpoints["classifier"])])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "damaged" in err


@pytest.mark.parametrize("args, match", [(["--batch", "0"], "--batch 0"), (["--score-thresh", "2"], "--score-thresh 2.0")])
def test_bad_options(images, args, match, capsys):
    assert cli.main(["image", str(images["good"]), *args]) == 2
    assert match in capsys.readouterr().err


def test_mismatched_torchvision_is_one_line(monkeypatch, images, capsys):
    import importlib

    real = importlib.import_module

    def broken(name, *a, **k):
        if name == "torchvision":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(DependencyError, match="mismatched.*pip install --force-reinstall torch torchvision"):
        require_torchvision()
    code = cli.main(["image", str(images["good"])])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1 and "torchvision" in err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage: recognizer" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["image", "demo"])
def test_score_thresh_default_uses_the_detector_file(command, tmp_path, tiny_checkpoints, capsys, monkeypatch):
    """No --score-thresh: every command builds its recognizer with the file's own threshold."""
    from recognizer.cli import options as cli_image
    from recognizer.models import load_checkpoint, save_checkpoint

    det = load_checkpoint(tiny_checkpoints["detector"])
    tuned = save_checkpoint(tmp_path / "det.pt", det.model, metadata={"score_thresh": 0.93})
    seen = {}
    real = cli_image.load_recognizer

    def spy(args, **kw):
        rec = real(args, **kw)
        seen["thresh"] = rec.config.det_score_thresh
        raise SystemExit(0)

    monkeypatch.setattr(cli_image, "load_recognizer", spy)
    args = [command, "--detector", str(tuned), "--classifier", str(tiny_checkpoints["classifier"])]
    if command == "image":
        img = tmp_path / "a.png"
        cv2.imwrite(str(img), np.zeros((20, 20, 3), np.uint8))
        args.insert(1, str(img))
    else:
        args += ["--out", str(tmp_path / "demo"), "--frames", "4"]
    with pytest.raises(SystemExit):
        cli.main(args)
    assert seen["thresh"] == 0.93


def test_not_digit_thresh_from_the_classifier_file_and_from_the_option(tmp_path, tiny_checkpoints, capsys, monkeypatch):
    from recognizer.cli import options as cli_image
    from recognizer.models import SmallCNN, save_checkpoint

    clf = save_checkpoint(tmp_path / "clf.pt", SmallCNN(num_classes=11, channels=(4, 8, 8)),
                          metadata={"not_digit_thresh": 0.7})
    seen = []
    real = cli_image.load_recognizer

    def spy(args, **kw):
        rec = real(args, **kw)
        seen.append((rec.config.not_digit_thresh, rec.config.det_score_thresh, rec.config.tta))
        raise SystemExit(0)

    monkeypatch.setattr(cli_image, "load_recognizer", spy)
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((20, 20, 3), np.uint8))
    base = ["image", str(img), "--detector", str(tiny_checkpoints["detector"]), "--classifier", str(clf)]
    for extra in ([], ["--not-digit-thresh", "0.25", "--score-thresh", "0.4", "--no-tta"]):
        with pytest.raises(SystemExit):
            cli.main(base + extra)
    assert seen == [(0.7, 0.5, True), (0.25, 0.4, False)]
    # video commands read each digit once unless --tta asks for the views
    monkeypatch.setattr(cli_image, "load_recognizer", real)
    import argparse

    from recognizer.cli.options import load_recognizer

    ns = argparse.Namespace(detector=str(tiny_checkpoints["detector"]), classifier=str(clf), device="cpu",
                            score_thresh=None, not_digit_thresh=None, tta=None)
    assert load_recognizer(ns, video=True).config.tta is False
    assert load_recognizer(ns).config.tta is True
    ns.tta = True
    assert load_recognizer(ns, video=True).config.tta is True
    assert cli.main(base + ["--not-digit-thresh", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--not-digit-thresh 1.5" in err and "[0, 1]" in err
