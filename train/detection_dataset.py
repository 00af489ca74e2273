"""The detector's dataset: whole SVHN-format images and their digit boxes.

Images are :func:`recognizer.models.preprocess.frame_to_tensor` output (RGB float in [0, 1]), as the
detector sees frames at inference; the split is read by :func:`train.datasets.load_split` and
images by :func:`train.datasets.read_image`, as for the classifier's crops.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from recognizer.models.labels import DETECTOR_DIGIT
from recognizer.models.preprocess import frame_to_tensor
from train.datasets import DatasetError, load_split, read_image, select_indices
from train.svhn import SVHNImage

log = logging.getLogger(__name__)

DetectionTransform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(image (H, W, 3) uint8 BGR, boxes (N, 4) float32 xyxy) -> (image, boxes)``, same N."""

MIN_BOX_SIDE = 1.0
"""Boxes thinner than this many pixels after clipping are dropped from detector targets
(Faster R-CNN rejects degenerate boxes; SVHN has a few at the image border)."""


# --------------------------------------------------------------------------- detection


class DetectionDataset(Dataset):
    """Whole images and their digit boxes, for the detector.

    Items are ``(image, target)``: ``image`` a ``(3, H, W)`` float32 RGB tensor in [0, 1]
    (:func:`recognizer.models.preprocess.frame_to_tensor`); ``target`` a dict with ``"boxes"``
    ``(N, 4)`` float32 xyxy clipped to the image (boxes thinner than 1 px dropped),
    ``"labels"`` ``(N,)`` int64 all 1 (detector class "digit"), ``"digits"`` ``(N,)`` int64
    0..9 and ``"image_id"`` (int, the image's position in the annotation file).

    Images listed but absent are skipped at construction; images that cannot be decoded are
    skipped when first met (the next image is served in their place, so ``target["image_id"]``
    tells which one came back). Both are logged and listed in :attr:`skipped`. Pass
    ``verify=True`` to decode everything up front so indices and :attr:`records` stay aligned.

    Attributes:
        records: the :class:`SVHNImage` of each index (unclipped boxes, for evaluation).
        image_ids: position of each index in the annotation file.
        skipped: ``(name, reason)`` of every image left out.
        split: the annotations read (all images, also unselected ones).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        transforms: DetectionTransform | None = None,
        indices: Iterable[int] | None = None,
        names: Iterable[str] | None = None,
        verify: bool = False,
        cache: bool = True,
        workers: int = 1,
    ) -> None:
        """Open a split.

        Args:
            root: SVHN-format folder (``digitStruct.mat`` or ``labels.json`` + images), or the
                annotation file.
            transforms: optional augmentation on uint8 BGR images and xyxy boxes.
            indices: use only these positions of the annotation file.
            names: use only these images (``"5.png"``, or ``"train/5.png"`` for labels.json).
            verify: decode every image now and skip the corrupt ones.
            cache: cache the parsed ``digitStruct.mat``.
            workers: processes for parsing an uncached ``digitStruct.mat``.

        Raises:
            DatasetError: no annotations, an empty split or selection, or no image usable.
            train.svhn.SVHNFormatError: unreadable annotations.
        """
        self.split = load_split(root, cache=cache, workers=workers)
        self.root = self.split.image_root
        self.transforms = transforms
        where = self.split.annotation_file
        if not self.split.records:
            raise DatasetError(f"{where}: the split lists no images")
        chosen = select_indices(self.split.records, indices, names, where)
        if not chosen:
            raise DatasetError(f"{where}: the selection matches none of its {len(self.split.records)} images")
        self.skipped: list[tuple[str, str]] = []
        kept: list[int] = []
        for i in chosen:
            record = self.split.records[i]
            path = self.root / record.name
            reason = None
            if verify:
                _, reason = read_image(path)
            elif not path.is_file():
                reason = "missing"
            if reason is None:
                kept.append(i)
            else:
                self.skipped.append((record.name, reason))
        if self.skipped:
            first = ", ".join(f"{n} ({r})" for n, r in self.skipped[:3])
            log.warning("%s: skipping %d of %d images: %s%s", where, len(self.skipped), len(chosen), first,
                        " ..." if len(self.skipped) > 3 else "")
        if not kept:
            raise DatasetError(
                f"{where}: none of the {len(chosen)} selected images can be read "
                f"(first: {self.skipped[0][0]}, {self.skipped[0][1]}); are the images next to the annotations?"
            )
        self.image_ids: list[int] = kept
        self.records: list[SVHNImage] = [self.split.records[i] for i in kept]

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, index: int) -> Path:
        """Path of image ``index``."""
        return self.root / self.records[index].name

    def load_image(self, index: int) -> np.ndarray:
        """Image ``index`` as ``(H, W, 3)`` uint8 BGR.

        Raises:
            DatasetError: the file is missing or cannot be decoded.
        """
        image, reason = read_image(self.image_path(index))
        if image is None:
            raise DatasetError(f"{self.image_path(index)}: {reason}")
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index %= n
        for attempt in range(n):
            i = (index + attempt) % n
            image, reason = read_image(self.image_path(i))
            if image is not None:
                return self._item(i, image)
            name = self.records[i].name
            if (name, reason) not in self.skipped:
                self.skipped.append((name, str(reason)))
                log.warning("%s: skipping %s (%s)", self.split.annotation_file, name, reason)
        raise DatasetError(f"{self.split.annotation_file}: no image of the split can be read")

    def _item(self, i: int, image_bgr: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:
        record = self.records[i]
        boxes = record.xyxy
        if self.transforms is not None:
            image_bgr, new_boxes = self.transforms(image_bgr, boxes)
            new_boxes = np.asarray(new_boxes, dtype=np.float32).reshape(-1, 4)
            if len(new_boxes) != len(boxes):
                raise ValueError(
                    f"transforms returned {len(new_boxes)} boxes for {len(boxes)}; expected the same boxes, moved"
                )
            boxes = new_boxes
        h, w = image_bgr.shape[:2]
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= MIN_BOX_SIDE) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_BOX_SIDE)
        digits = record.digits[keep]
        target = {
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes[keep])).reshape(-1, 4),
            "labels": torch.full((len(digits),), DETECTOR_DIGIT, dtype=torch.int64),
            "digits": torch.from_numpy(np.array(digits, dtype=np.int64)),
            "image_id": int(self.image_ids[i]),
        }
        return frame_to_tensor(image_bgr), target


def detection_collate(batch: Sequence[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """Collate detection items into ``(list of images, list of targets)`` (sizes differ)."""
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets
