from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from recognizer.models import SmallCNN, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_export_keeps_weights_drops_training_state_and_records_provenance(tmp_path):
    model = SmallCNN(channels=(8, 8, 8))
    src = save_checkpoint(tmp_path / "best.pt", model, metadata={"val_acc": 0.5}, extra={"optimizer": {"lr": 0.1}})
    dest = tmp_path / "weights" / "classifier.pt"
    args = ["--data", "synthetic", "--command", "python -m train.classifier", "--wall-time", "1 min", "--machine", "cpu", "--accuracy", "50%"]
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "export_weights.py"), str(src), str(dest), *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    ck = load_checkpoint(dest, kind="classifier")
    assert ck.extra == {}
    assert ck.metadata["val_acc"] == 0.5
    assert ck.metadata["provenance"]["command"] == "python -m train.classifier"
    assert len(ck.metadata["provenance"]["source_md5"]) == 32
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), ck.model(x))


def test_export_refuses_a_damaged_source(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    args = ["--data", "d", "--command", "c", "--wall-time", "w", "--machine", "m", "--accuracy", "a"]
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "export_weights.py"), str(bad), str(tmp_path / "o.pt"), *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "bad.pt" in res.stderr and not (tmp_path / "o.pt").exists()


def test_export_stores_the_not_digit_threshold_only_for_classifiers_with_that_class(tmp_path):
    args = ["--data", "d", "--command", "c", "--wall-time", "w", "--machine", "m", "--accuracy", "a"]
    tool = [sys.executable, str(ROOT / "tools" / "export_weights.py")]
    eleven = save_checkpoint(tmp_path / "c11.pt", SmallCNN(num_classes=11, channels=(4, 4, 4)))
    res = subprocess.run([*tool, str(eleven), str(tmp_path / "o11.pt"), *args, "--not-digit-thresh", "0.35"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert load_checkpoint(tmp_path / "o11.pt").metadata["not_digit_thresh"] == 0.35
    ten = save_checkpoint(tmp_path / "c10.pt", SmallCNN(channels=(4, 4, 4)))
    res = subprocess.run([*tool, str(ten), str(tmp_path / "o10.pt"), *args, "--not-digit-thresh", "0.35"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--not-digit-thresh 0.35" in res.stderr and not (tmp_path / "o10.pt").exists()
