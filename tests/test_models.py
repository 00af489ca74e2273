from __future__ import annotations

import pytest
import torch

from recognizer.models import SmallCNN, build_detector
from recognizer.models.detector import PROFILES


def test_smallcnn_shapes_and_layers():
    model = SmallCNN()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 3 and len(bns) == 3
    out = model(torch.randn(5, 3, 32, 32))
    assert out.shape == (5, 10)


@pytest.mark.parametrize("channels", [(8,), (0, 8, 8)])
def test_smallcnn_rejects_bad_channels(channels):
    with pytest.raises(ValueError, match="channels"):
        SmallCNN(channels=channels)


def _targets():
    return [
        {"boxes": torch.tensor([[10.0, 12.0, 30.0, 60.0], [34.0, 12.0, 52.0, 60.0]]), "labels": torch.tensor([1, 1])},
        # An image with no digit at all is a valid training sample.
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)},
    ]


@pytest.mark.parametrize("arch", ["light", "mobilenet_v3_fpn", "resnet50_fpn"])
def test_detector_train_losses_and_eval_boxes(arch):
    torch.manual_seed(0)
    small = {"min_size": 96, "max_size": 128}
    model = build_detector(arch=arch, **small)
    images = [torch.rand(3, 80, 120), torch.rand(3, 90, 100)]
    model.train()
    losses = model(images, _targets())
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for o in out:
        assert o["boxes"].ndim == 2 and o["boxes"].shape[1] == 4
        assert (o["labels"] <= 1).all()
    # The new predictor has exactly 2 classes: background and digit.
    assert model.roi_heads.box_predictor.cls_score.out_features == 2


def test_detector_profile_overrides_and_errors():
    model = build_detector(arch="light", rpn_post_nms_top_n_test=42, min_size=200)
    assert model.rpn._post_nms_top_n["testing"] == 42
    assert model.transform.min_size == (200,)
    assert model.recognizer_config["arch"] == "light"
    assert PROFILES["light"]["rpn_post_nms_top_n_test"] == 100  # profile left untouched
    with pytest.raises(ValueError, match="unknown detector arch 'yolo'"):
        build_detector(arch="yolo")
    with pytest.raises(ValueError, match="unknown option"):
        build_detector(arch="light", not_a_key=1)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_detector(arch="light", pretrained_backbone=True)


def test_light_anchors_are_tall():
    model = build_detector(arch="light")
    ratios = model.rpn.anchor_generator.aspect_ratios[0]
    assert min(ratios) >= 1.0 and max(ratios) > 2.0
