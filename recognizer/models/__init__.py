"""The model layer: what turns pixels into readings, with no threads and no I/O of frames.

``smallcnn`` (the digit reader), ``detector`` (Faster R-CNN digit detectors), ``checkpoint``
(self-describing checkpoint files), ``weights`` (where the shipped files are), ``labels``,
``preprocess`` (the only image-to-tensor code), ``engine`` (:class:`~recognizer.models.engine.Recognizer`:
frames in, readings out), ``compose`` (digit boxes to house numbers), ``textreader`` (the
pretrained scene-text reader) and ``fusion`` (both readers on still images).

The names below are imported when first used, so importing a light module of this package
(``labels``, ``weights``, ``compose``) does not load torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "build_model": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "SmallCNN": "smallcnn",
    "build_detector": "detector",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'recognizer.models' has no attribute '{name}'")
    return getattr(importlib.import_module(f"recognizer.models.{module}"), name)
