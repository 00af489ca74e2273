"""Models: the SmallCNN digit reader, Faster R-CNN digit detectors and their checkpoints."""
from __future__ import annotations

from recognizer.models.checkpoint import (
    Checkpoint,
    CheckpointError,
    build_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from recognizer.models.smallcnn import SmallCNN


def build_detector(**kwargs):  # noqa: ANN003, ANN201 - thin lazy wrapper, documented below
    """See :func:`recognizer.models.detector.build_detector` (imported lazily: torchvision is heavy)."""
    from recognizer.models.detector import build_detector as _build

    return _build(**kwargs)


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "SmallCNN",
    "build_detector",
    "build_model",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]
