"""Recognizer: BGR frames in, house-number readings out.

One batched detector call per batch of frames, then one batched classifier call for every
digit crop of the batch, then composition per frame. Runs on CUDA when there is one (fp16
autocast) or on the CPU.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from recognizer.models import load_checkpoint
from recognizer.models.compose import compose_readings
from recognizer.models.labels import NOT_DIGIT_CLASS, NUM_DIGITS
from recognizer.models.preprocess import DEFAULT_CROP_PAD, crop_digits, crop_views, crops_to_tensor, frame_to_tensor
from recognizer.types import Reading, check_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecognizerConfig:
    """Inference settings.

    Attributes:
        det_score_thresh: keep detections scoring at least this (0..1).
        min_digit_score: drop digits whose classifier probability is below this (0..1).
        not_digit_thresh: with a classifier that has the 11th "not a digit" class, drop a
            detection whose "not a digit" probability is at least this (0..1; 1 keeps all).
        crop_pad: margin around each square digit crop (fraction of its side).
        tta: classify each crop as the average over a few shifted and zoomed views
            (:data:`recognizer.models.preprocess.TTA_VIEWS`): more accurate, 5x the classifier's work.
        fp16: use float16 autocast on CUDA (ignored on the CPU).
    """

    det_score_thresh: float = 0.5
    min_digit_score: float = 0.0
    not_digit_thresh: float = 0.5
    crop_pad: float = DEFAULT_CROP_PAD
    tta: bool = True
    fp16: bool = True

    def __post_init__(self) -> None:
        for name in ("det_score_thresh", "min_digit_score", "not_digit_thresh"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r}; expected a number in [0, 1]")
        if not 0.0 <= self.crop_pad <= 2.0:
            raise ValueError(f"crop_pad={self.crop_pad!r}; expected a number in [0, 2]")


def config_from_metadata(
    detector_metadata: dict[str, Any],
    classifier_metadata: dict[str, Any],
    *,
    det_score_thresh: float | None = None,
    not_digit_thresh: float | None = None,
    **settings: Any,
) -> RecognizerConfig:
    """The settings for a pair of weight files: each threshold the file recommends
    (:func:`recommended_score_thresh`) unless given here, plus any other ``settings``.

    Every command that runs a pair of files resolves its thresholds through here.
    """
    return RecognizerConfig(
        det_score_thresh=det_score_thresh if det_score_thresh is not None else recommended_score_thresh(detector_metadata),
        not_digit_thresh=not_digit_thresh if not_digit_thresh is not None else recommended_score_thresh(
            classifier_metadata, RecognizerConfig.not_digit_thresh, key="not_digit_thresh"),
        **settings,
    )


def recommended_score_thresh(
    metadata: dict[str, Any], default: float = RecognizerConfig.det_score_thresh, *, key: str = "score_thresh"
) -> float:
    """The threshold a checkpoint recommends: ``metadata["score_thresh"]`` of a detector file
    (detection score), ``metadata["not_digit_thresh"]`` of a classifier file with ``key``."""
    value = metadata.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if 0.0 <= value <= 1.0 else default


def keep_digits(
    probs: np.ndarray, not_digit: np.ndarray, *, min_digit_score: float, not_digit_thresh: float
) -> np.ndarray:
    """Which classified detections a reading keeps: ``(K,)`` bool.

    A detection stays when its digit probability is at least ``min_digit_score`` and it is
    not judged "not a digit": its "not a digit" probability is below ``not_digit_thresh``, or
    0 (a classifier without that class gives 0 for every crop, so 0 never drops one).
    The engine filters with this, and ``train.tune`` replays it over a grid of thresholds.
    """
    probs, not_digit = np.asarray(probs), np.asarray(not_digit)
    return (probs >= min_digit_score) & ~((not_digit > 0) & (not_digit >= not_digit_thresh))


def classifier_log_probs(
    classifier: nn.Module, crops_rgb: np.ndarray, device: str | torch.device, *, tta: bool
) -> torch.Tensor:
    """Log-probabilities ``(N, C)`` float32 of ``(N, 32, 32, 3)`` uint8 RGB crops, in one call.

    The classifier gets them as float32 RGB in [0, 1] (:func:`recognizer.models.preprocess.crops_to_tensor`)
    and normalises them itself.

    With ``tta`` each crop is classified as the mean log-probability of its
    :func:`recognizer.models.preprocess.crop_views` (the views go through the model in one batch).
    The engine and ``train.evaluate`` both classify through here.
    """
    n = len(crops_rgb)
    x = crops_to_tensor(crop_views(crops_rgb) if tta else crops_rgb).to(device, non_blocking=True)
    logits = classifier(x).float()
    # view-major rows: row v * n + i is view v of crop i
    return torch.log_softmax(logits, dim=1).reshape(-1, n, logits.shape[1]).mean(dim=0)


def choose_device(device: str | torch.device | None = None, *, local_rank: int | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise the device named.

    Names are read case-insensitively and without surrounding blanks (``" CUDA "`` is
    ``"cuda"``; an empty name is ``"auto"``).

    Args:
        device: ``None``, ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ... or a
            ``torch.device``.
        local_rank: under torchrun, the process's GPU index: ``"auto"`` (with CUDA) and a
            plain ``"cuda"`` then mean ``cuda:local_rank``. None leaves ``"cuda"`` as the
            current CUDA device.

    Raises:
        ValueError: an unknown device name, or a device this machine does not have (CUDA,
            ``cuda:N`` beyond the GPUs present, ``mps``, ...).
    """
    if device is None or isinstance(device, str):
        device = (device or "").strip().lower() or "auto"
        if device == "auto":
            if not torch.cuda.is_available():
                return torch.device("cpu")
            device = "cuda"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r} is not a torch device; expected auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and dev.index is None and local_rank is not None:
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: there is no CUDA device {dev.index} here ({torch.cuda.device_count()} found)")
    if dev.type == "meta":
        raise ValueError(f"device {device!r} holds no data; expected auto, cpu, cuda, cuda:N or mps")
    if dev.type not in ("cpu", "cuda"):
        try:  # mps, xpu, ...: usable only when this torch build and machine have them
            torch.empty(1, device=dev)
        except Exception as exc:  # noqa: BLE001 - any failure means the device cannot be used
            raise ValueError(f"device {device!r} is not available here; use --device cpu") from exc
    return dev


class Recognizer:
    """Detect, crop, classify and compose house numbers in batches of frames.

    Args:
        detector: a torchvision Faster R-CNN from ``build_detector`` (or any module with the
            same eval-mode interface).
        classifier: a ``SmallCNN``: (N, 3, 32, 32) RGB in [0, 1] -> (N, 10) logits, or (N, 11)
            where class 10 is "not a digit" (such detections are dropped, see
            ``not_digit_thresh``). It normalises its input itself.
        device: ``None``/"auto", "cpu", "cuda", a ``torch.device``.
        config: inference settings.
    """

    def __init__(
        self,
        detector: nn.Module,
        classifier: nn.Module,
        *,
        device: str | torch.device | None = None,
        config: RecognizerConfig | None = None,
    ) -> None:
        self.device = choose_device(device)
        self.config = config or RecognizerConfig()
        self.detector = detector.to(self.device).eval()
        self.classifier = classifier.to(self.device).eval()
        self.metadata: dict[str, Any] = {}

    @classmethod
    def from_checkpoints(
        cls,
        detector_path: str | os.PathLike[str],
        classifier_path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        config: RecognizerConfig | None = None,
        **settings: Any,
    ) -> Recognizer:
        """Load both models from self-describing checkpoints (``CheckpointError`` if unusable).

        Without ``config``, the settings are resolved by :func:`config_from_metadata`: the
        detector file's own ``metadata["score_thresh"]`` and the classifier file's
        ``metadata["not_digit_thresh"]`` (thresholds tuned on validation images when they were
        shipped), else the defaults (0.5 each), each replaced by a value given in ``settings``
        (``det_score_thresh=``, ``not_digit_thresh=``, ``tta=``, ... as in :class:`RecognizerConfig`).
        """
        det = load_checkpoint(detector_path, kind="detector")
        clf = load_checkpoint(classifier_path, kind="classifier")
        if config is None:
            config = config_from_metadata(det.metadata, clf.metadata, **settings)
        elif settings:
            raise TypeError("give either config or settings, not both")
        rec = cls(det.model, clf.model, device=device, config=config)
        rec.metadata = {"detector": det.metadata, "classifier": clf.metadata}
        return rec

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda" and self.config.fp16:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run the detector once on a batch; per frame ``(boxes (K,4) float32 xyxy, scores (K,) float32)``."""
        tensors = [frame_to_tensor(check_image(img, f"frame {i}")).to(self.device, non_blocking=True) for i, img in enumerate(images)]
        with self._autocast():
            outputs = self.detector(tensors)
        results = []
        for out in outputs:
            scores = out["scores"].float()
            keep = scores >= self.config.det_score_thresh
            boxes = out["boxes"][keep].float().cpu().numpy().astype(np.float32)
            results.append((boxes.reshape(-1, 4), scores[keep].cpu().numpy().astype(np.float32)))
        return results

    def classify(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classify ``(N, 32, 32, 3)`` uint8 RGB crops in one call; ``(digits int64, probs float32)``.

        ``digits`` is the most probable digit 0..9 and ``probs`` its probability, also for a
        classifier with the "not a digit" class (see :meth:`classify_full`).
        """
        digits, probs, _ = self.classify_full(crops_rgb)
        return digits, probs

    @torch.inference_mode()
    def classify_full(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`classify`, plus each crop's "not a digit" probability ``(N,)`` float32
        (zeros for a 10-class classifier).

        With a "not a digit" class, ``probs`` is the digit's probability given that the crop is
        a digit (renormalised over the ten digit classes).
        """
        if len(crops_rgb) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.float32)
        with self._autocast():
            logp = classifier_log_probs(self.classifier, crops_rgb, self.device, tta=self.config.tta)
        probs = torch.softmax(logp, dim=1)
        conf, digit = probs[:, :NUM_DIGITS].max(dim=1)
        if probs.shape[1] > NUM_DIGITS:
            not_digit = probs[:, NOT_DIGIT_CLASS]
            # A crop kept as a digit is scored by which digit it is, given that it is one: the
            # probability renormalised over the ten digits. (Unnormalised, a thin "1" that looks
            # a little like a letter kept a confidence of 0.2 and its number was never confirmed.)
            conf = conf / (1.0 - not_digit).clamp_min(1e-6)
        else:
            not_digit = torch.zeros_like(conf)
        return (
            digit.cpu().numpy().astype(np.int64),
            conf.cpu().numpy().astype(np.float32),
            not_digit.cpu().numpy().astype(np.float32),
        )

    def recognize(self, images: Sequence[np.ndarray]) -> list[list[Reading]]:
        """Read the house numbers in each frame.

        Args:
            images: BGR uint8 frames ``(H, W, 3)``; sizes may differ.

        Returns:
            One list of :class:`Reading` per frame (empty where nothing was read).
        """
        return self.recognize_timed(images)[0]

    def recognize_timed(self, images: Sequence[np.ndarray]) -> tuple[list[list[Reading]], dict[str, float]]:
        """:meth:`recognize`, plus the seconds this call spent in each stage.

        Returns:
            ``(readings, timings)``: one list of :class:`Reading` per frame, and
            ``{"detect": s, "classify": s, "compose": s}`` (all 0.0 for no images). The
            timings belong to this call alone, so threads sharing the recognizer each get
            their own.
        """
        if len(images) == 0:
            return [], {"detect": 0.0, "classify": 0.0, "compose": 0.0}
        t0 = time.perf_counter()
        detections = self.detect(images)
        t1 = time.perf_counter()
        crops = [crop_digits(img, boxes, pad=self.config.crop_pad) for img, (boxes, _) in zip(images, detections)]
        counts = [len(c) for c in crops]
        all_crops = np.concatenate(crops, axis=0) if sum(counts) else np.empty((0, 32, 32, 3), np.uint8)
        digits, probs, not_digit = self.classify_full(all_crops)
        t2 = time.perf_counter()
        results: list[list[Reading]] = []
        start = 0
        for (boxes, scores), n in zip(detections, counts):
            d, p, nd = digits[start : start + n], probs[start : start + n], not_digit[start : start + n]
            start += n
            keep = keep_digits(p, nd, min_digit_score=self.config.min_digit_score,
                               not_digit_thresh=self.config.not_digit_thresh)
            results.append(compose_readings(boxes[keep], d[keep], scores[keep], p[keep]))
        t3 = time.perf_counter()
        return results, {"detect": t1 - t0, "classify": t2 - t1, "compose": t3 - t2}
