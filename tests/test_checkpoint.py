from __future__ import annotations

import pytest
import torch

from recognizer.models import CheckpointError, SmallCNN, build_detector, load_checkpoint, save_checkpoint


def test_classifier_round_trip_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = SmallCNN(channels=(8, 16, 24)).eval()
    x = torch.randn(4, 3, 32, 32)
    path = save_checkpoint(tmp_path / "c.pt", model, metadata={"data": "unit"}, extra={"epoch": 3})
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 1 and raw["kind"] == "classifier"
    assert raw["labels"] == [str(d) for d in range(10)]
    ck = load_checkpoint(path, kind="classifier")
    assert ck.metadata == {"data": "unit"} and ck.extra == {"epoch": 3}
    with torch.no_grad():
        assert torch.equal(model(x), ck.model(x))


def test_detector_round_trip_identical_outputs(tmp_path):
    torch.manual_seed(2)
    model = build_detector(arch="light", min_size=96, max_size=128, box_score_thresh=0.0).eval()
    images = [torch.rand(3, 100, 120)]
    path = save_checkpoint(tmp_path / "d.pt", model)
    ck = load_checkpoint(path, kind="detector")
    assert ck.config["min_size"] == 96
    with torch.no_grad():
        a, b = model(images)[0], ck.model(images)[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "missing.pt", "no such checkpoint file"),
        (lambda p: _write_bytes(p / "junk.pt", b"not a checkpoint at all"), "damaged or not a PyTorch checkpoint"),
        (lambda p: p, "is a directory"),
    ],
)
def test_unusable_files_are_refused_with_their_name(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", SmallCNN())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_foreign_and_wrong_kind_and_mismatched(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a recognizer checkpoint"):
        load_checkpoint(foreign)

    clf = save_checkpoint(tmp_path / "c.pt", SmallCNN())
    with pytest.raises(CheckpointError, match="is a classifier checkpoint, expected a detector"):
        load_checkpoint(clf, kind="detector")

    raw = torch.load(clf, weights_only=True)
    raw.pop("checksum")  # an edited file keeping its checksum is refused as damaged (test_bad_input)
    raw["config"]["channels"] = [4, 4, 4]
    bad = tmp_path / "bad.pt"
    torch.save(raw, bad)
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(bad)

    raw["format_version"] = 99
    newer = tmp_path / "newer.pt"
    torch.save(raw, newer)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(newer)


def test_save_refuses_foreign_model(tmp_path):
    with pytest.raises(TypeError, match="not a recognizer model"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_saved_file_gets_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "c.pt", SmallCNN(channels=(4, 4, 4)))
    finally:
        os.umask(umask)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
