"""Digit detectors: torchvision Faster R-CNN with a 2-class (background, digit) box predictor.

``build_detector`` follows torchvision's detection builders: keyword-only, a named profile of
defaults per architecture that the caller overrides key by key. Nothing is downloaded unless
the caller asks for a pretrained backbone.

Architectures:
    ``light``: a small conv backbone (strides 8/16/32) with a 64-channel FPN, anchors shaped for
        tall digits, 240x320 input and 100 test-time proposals; meant for real time on a laptop CPU.
    ``resnet50_fpn``: the notebook's model (torchvision's ResNet-50 FPN Faster R-CNN).
    ``mobilenet_v3_fpn``: torchvision's MobileNetV3-Large 320 FPN, for users who want an
        ImageNet-initialised light-ish model.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from recognizer._compat import require_torchvision
from recognizer.models.labels import DETECTOR_NUM_CLASSES

ARCHES = ("light", "resnet50_fpn", "mobilenet_v3_fpn")

# Keys understood by torchvision's FasterRCNN constructor that a profile may set.
_RCNN_KEYS = (
    "min_size",
    "max_size",
    "rpn_pre_nms_top_n_train",
    "rpn_pre_nms_top_n_test",
    "rpn_post_nms_top_n_train",
    "rpn_post_nms_top_n_test",
    "rpn_nms_thresh",
    "rpn_batch_size_per_image",
    "box_score_thresh",
    "box_nms_thresh",
    "box_detections_per_img",
    "box_batch_size_per_image",
)

PROFILES: dict[str, dict[str, Any]] = {
    "light": {
        "widths": [16, 24, 48, 96, 160],
        "fpn_channels": 64,
        "representation_size": 256,
        # Digit boxes are taller than wide: aspect ratio here is height / width.
        "anchor_sizes": [[16, 24], [32, 48], [64, 96], [128, 192]],
        "aspect_ratios": [1.0, 1.7, 2.5],
        "min_size": 240,
        "max_size": 320,
        "rpn_pre_nms_top_n_train": 1000,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_train": 500,
        "rpn_post_nms_top_n_test": 100,
        "box_batch_size_per_image": 128,
        "box_score_thresh": 0.05,
        "box_detections_per_img": 50,
    },
    "resnet50_fpn": {
        "anchor_sizes": [[16], [32], [64], [128], [256]],
        "aspect_ratios": [1.0, 1.7, 2.5],
        "min_size": 480,
        "max_size": 640,
        "trainable_backbone_layers": 3,
        "box_score_thresh": 0.05,
        "box_detections_per_img": 50,
    },
    "mobilenet_v3_fpn": {
        "min_size": 320,
        "max_size": 640,
        "rpn_pre_nms_top_n_test": 150,
        "rpn_post_nms_top_n_test": 150,
        "trainable_backbone_layers": 6,
        "box_score_thresh": 0.05,
        "box_detections_per_img": 50,
    },
}


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LightBackbone(nn.Module):
    """A small conv backbone + FPN returning torchvision-style feature maps.

    ``widths`` are the channels at strides 2, 4, 8, 16, 32. Output: an ``OrderedDict`` of
    ``fpn_channels``-channel maps at strides 8 ("0"), 16 ("1"), 32 ("2") and 64 ("pool").
    """

    def __init__(self, widths: list[int], fpn_channels: int) -> None:
        super().__init__()
        tv = require_torchvision()
        ops = tv.ops
        w2, w4, w8, w16, w32 = (int(w) for w in widths)
        self.stem = nn.Sequential(_conv_bn(3, w2, 2), _conv_bn(w2, w4, 2))
        self.stage8 = nn.Sequential(_conv_bn(w4, w8, 2), _conv_bn(w8, w8, 1))
        self.stage16 = nn.Sequential(_conv_bn(w8, w16, 2), _conv_bn(w16, w16, 1))
        self.stage32 = nn.Sequential(_conv_bn(w16, w32, 2), _conv_bn(w32, w32, 1))
        self.fpn = ops.FeaturePyramidNetwork(
            [w8, w16, w32], fpn_channels, extra_blocks=ops.feature_pyramid_network.LastLevelMaxPool()
        )
        self.out_channels = fpn_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        c8 = self.stage8(self.stem(x))
        c16 = self.stage16(c8)
        c32 = self.stage32(c16)
        return self.fpn(OrderedDict([("0", c8), ("1", c16), ("2", c32)]))


def _anchor_generator(tv: Any, sizes: list[list[int]], ratios: list[float]) -> nn.Module:
    sizes_t = tuple(tuple(int(s) for s in level) for level in sizes)
    ratios_t = (tuple(float(r) for r in ratios),) * len(sizes_t)
    return tv.models.detection.anchor_utils.AnchorGenerator(sizes=sizes_t, aspect_ratios=ratios_t)


def _build_light(tv: Any, cfg: dict[str, Any], num_classes: int) -> nn.Module:
    det = tv.models.detection
    backbone = LightBackbone(cfg["widths"], cfg["fpn_channels"])
    anchors = _anchor_generator(tv, cfg["anchor_sizes"], cfg["aspect_ratios"])
    rpn_head = det.rpn.RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0])
    roi_pool = tv.ops.MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7, sampling_ratio=2)
    rep = int(cfg["representation_size"])
    box_head = det.faster_rcnn.TwoMLPHead(backbone.out_channels * 7 * 7, rep)
    predictor = det.faster_rcnn.FastRCNNPredictor(rep, num_classes)
    kwargs = {k: cfg[k] for k in _RCNN_KEYS if k in cfg}
    return det.FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=rpn_head,
        box_roi_pool=roi_pool,
        box_head=box_head,
        box_predictor=predictor,
        **kwargs,
    )


def _build_torchvision(tv: Any, arch: str, cfg: dict[str, Any], num_classes: int, pretrained_backbone: bool) -> nn.Module:
    det = tv.models.detection
    kwargs = {k: cfg[k] for k in _RCNN_KEYS if k in cfg}
    if arch == "resnet50_fpn":
        weights_backbone = tv.models.ResNet50_Weights.IMAGENET1K_V1 if pretrained_backbone else None
        anchors = _anchor_generator(tv, cfg["anchor_sizes"], cfg["aspect_ratios"])
        model = det.fasterrcnn_resnet50_fpn(
            weights=None,
            weights_backbone=weights_backbone,
            trainable_backbone_layers=cfg["trainable_backbone_layers"] if pretrained_backbone else None,
            rpn_anchor_generator=anchors,
            **kwargs,
        )
    else:
        weights_backbone = tv.models.MobileNet_V3_Large_Weights.IMAGENET1K_V1 if pretrained_backbone else None
        model = det.fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None,
            weights_backbone=weights_backbone,
            trainable_backbone_layers=cfg["trainable_backbone_layers"] if pretrained_backbone else None,
            **kwargs,
        )
    # The notebook's step: a new box predictor with 2 classes (background, digit).
    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = det.faster_rcnn.FastRCNNPredictor(in_features, num_classes)
    return model


def detector_config(arch: str, **overrides: Any) -> dict[str, Any]:
    """The full configuration of ``arch`` with ``overrides`` applied, validated.

    Raises:
        ValueError: unknown arch or override key.
    """
    if arch not in PROFILES:
        raise ValueError(f"unknown detector arch {arch!r}; expected one of {', '.join(ARCHES)}")
    cfg = copy.deepcopy(PROFILES[arch])
    unknown = sorted(k for k in overrides if k not in cfg and k not in _RCNN_KEYS)
    if unknown:
        allowed = sorted(set(cfg) | set(_RCNN_KEYS))
        raise ValueError(f"unknown option(s) {unknown} for arch {arch!r}; allowed: {', '.join(allowed)}")
    for key, value in overrides.items():
        cfg[key] = list(value) if isinstance(value, tuple) else value
    return cfg


def build_detector(
    *,
    arch: str = "light",
    num_classes: int = DETECTOR_NUM_CLASSES,
    pretrained_backbone: bool = False,
    **overrides: Any,
) -> nn.Module:
    """Build a Faster R-CNN digit detector.

    Args:
        arch: one of ``light``, ``resnet50_fpn``, ``mobilenet_v3_fpn``.
        num_classes: including background (2: background, digit).
        pretrained_backbone: start from torchvision's ImageNet backbone (downloads it; for users
            who are online). Not available for ``light``, which has its own backbone.
        **overrides: profile keys to change (see ``PROFILES``), e.g. ``min_size=320``.

    Returns:
        A torchvision ``FasterRCNN``; in train mode ``model(images, targets)`` returns a loss
        dict, in eval mode a list of ``{"boxes": (K, 4) xyxy, "labels": (K,), "scores": (K,)}``.
        Its ``recognizer_config`` attribute rebuilds it: ``build_detector(**model.recognizer_config)``.
    """
    tv = require_torchvision()
    cfg = detector_config(arch, **overrides)
    if arch == "light":
        if pretrained_backbone:
            raise ValueError(
                "arch 'light' has its own small backbone with no ImageNet weights; "
                "use arch='mobilenet_v3_fpn' or 'resnet50_fpn' with pretrained_backbone=True"
            )
        model = _build_light(tv, cfg, num_classes)
    else:
        model = _build_torchvision(tv, arch, cfg, num_classes, pretrained_backbone)
    model.recognizer_config = {"arch": arch, "num_classes": int(num_classes), **cfg}
    return model
