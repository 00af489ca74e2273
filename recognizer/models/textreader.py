"""The second reader: a pretrained scene-text recognizer (and text detector) beside the digit models.

Our own models (detector + SmallCNN) learned from a few thousand real images; PP-OCR's
recognizer learned from millions. It reads a well-boxed number better than our per-digit
reader, reads plates we miss, and tells letters from digits. It is also 10-100x slower, so
the recognizer uses it where it pays (see :mod:`recognizer.models.fusion` for still images and
:mod:`recognizer.live.textworker` for video).

Backend: PP-OCRv6 (small) recognizer and text detector as ONNX files *inside* the ``rapidocr``
wheel, run by onnxruntime. Nothing is downloaded at run time: the model files are read from
the installed package, and a missing or broken backend is one warning line, after which the
digit models work alone (:func:`load_text_reader` returns None).

One small batched interface::

    reader = load_text_reader()
    reads = reader.read_regions(image_bgr, boxes_xyxy)     # [TextRead(text, score), ...]
    boxes, scores = reader.detect(image_bgr, max_side=1600)  # text lines, xyxy in the image's pixels
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Letters that a recognizer may give for a digit of a narrow, blurred or unusual font (1 as I or
# l, 0 as O, 6 as G or b, 7 as T, 4 as A). A read needs two letters outside this set to be a
# "letters" veto: one odd letter on a blurred crop is too often a digit.
DIGIT_LIKE = frozenset("IilLjJ|!OoDQUSsZzBGbgqTA")

ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ -./#")
"""The characters the text reader may read (digits, Latin letters, and what separates them)."""

_LETTER = "A-HJKMNP-RT-Ya-hjkmnp-rt-y"
_NUMBER = re.compile(rf"^(?P<pre>[{_LETTER}]?)(?P<sep>[-/.]?)(?P<digits>[0-9]{{1,6}})(?P<suf>[{_LETTER}]{{0,2}})$", re.ASCII)
"""A house number as the text reader spells it: digits, with an optional block letter before
(``C-24``, ``B12``) and a letter suffix after (``12A``, ``2d``; ``79bis`` is mixed). Letters a
blurred digit is read as (I, l, O, o, S, s, Z, z) are no block letter or suffix: ``Z1`` for a
blurred 21 or ``1ZZ`` for 177 is ``mixed``, never the number ``1``."""
_EDGES = "-.,:;'\"#"


@dataclass(frozen=True)
class TextRead:
    """What the text reader read in one region.

    Attributes:
        text: the characters as read (may hold spaces, punctuation, letters of any script).
        score: the recognizer's confidence in [0, 1] (mean character probability).
    """

    text: str
    score: float

    @property
    def compact(self) -> str:
        """The text without blanks."""
        return "".join(self.text.split())

    @property
    def kind(self) -> str:
        """``"number"`` (a house number, maybe with a letter: ``221``, ``12A``, ``C-24``),
        ``"letters"`` (letters and no digit, e.g. a family name), ``"mixed"`` (digits among
        other text: ``No.12``, ``Apt 4 B5``) or ``"empty"``."""
        t = self.compact
        if not any(ch.isalnum() for ch in t):
            return "empty"
        if _NUMBER.match(t.strip(_EDGES)):
            return "number"
        if not any(ch.isdigit() for ch in t):
            return "letters"
        return "mixed"

    @property
    def digits(self) -> str:
        """The house number's digits when :attr:`kind` is ``"number"``, else ``""``."""
        m = _NUMBER.match(self.compact.strip(_EDGES))
        return m.group("digits") if m else ""

    @property
    def label(self) -> str:
        """The house number with its letters when :attr:`kind` is ``"number"`` (``"12A"``,
        ``"C-24"``), else ``""``."""
        m = _NUMBER.match(self.compact.strip(_EDGES))
        if not m:
            return ""
        pre, sep, digits, suf = m.group("pre"), m.group("sep"), m.group("digits"), m.group("suf")
        return f"{pre.upper()}{sep}{digits}{suf}" if pre else f"{digits}{suf}"

    @property
    def is_letters(self) -> bool:
        """Letters only, at least two of them letters that no digit is misread as (``"IG"``
        for a blurred 16 is not letters; ``"Smith"`` is)."""
        return self.kind == "letters" and sum(ch.isalpha() and ch not in DIGIT_LIKE for ch in self.compact) >= 2

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(float(self.score), 4), "kind": self.kind}


def pad_box(box: Sequence[float], pad_x: float, pad_y: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` (xyxy) grown by ``pad_x`` x its height left and right and ``pad_y`` x its height
    above and below, clipped to an image of ``shape``; integer pixels, at least 1 px each way."""
    x1, y1, x2, y2 = (float(v) for v in box)
    h = max(1.0, y2 - y1)
    H, W = shape[:2]
    a = int(max(0, np.floor(x1 - pad_x * h)))
    b = int(max(0, np.floor(y1 - pad_y * h)))
    c = int(min(W, np.ceil(x2 + pad_x * h)))
    d = int(min(H, np.ceil(y2 + pad_y * h)))
    return a, b, max(c, a + 1), max(d, b + 1)


MAX_ASPECT = 25
"""Crops wider than this many times their height are not read (an empty read)."""


def _bgr(crop: np.ndarray) -> np.ndarray:
    import cv2

    if crop.ndim == 2:
        return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    if crop.shape[2] == 4:
        return cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR)
    if crop.shape[2] == 1:
        return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(crop)


class _Restricted:
    """The recognizer's ONNX session with every character outside :data:`ALPHABET` given
    probability 0, so that decoding picks the likeliest allowed character (its probability,
    not renormalised, is the score: a crop the model took for a CJK character scores low)."""

    def __init__(self, session: Any, allowed: np.ndarray, classes: int) -> None:
        self._session = session
        self._mask = np.zeros(classes, np.float32)
        self._mask[allowed] = 1.0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        preds = np.asarray(self._session(batch))
        if preds.shape[-1] != len(self._mask):  # an unexpected model: leave it as it is
            return preds
        return preds * self._mask

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class TextReader:
    """PP-OCR's recognizer and text detector from the ``rapidocr`` wheel (onnxruntime, CPU).

    Args:
        threads: onnxruntime threads per model call (1 keeps it beside the frame loop on a
            small CPU; 0 lets onnxruntime choose).

    Raises:
        ImportError, RuntimeError, OSError: the backend is missing or its models cannot be loaded
            (use :func:`load_text_reader` for the warn-and-go-on behaviour).
    """

    name = "PP-OCRv6 small (rapidocr, onnxruntime)"

    def __init__(self, *, threads: int = 1) -> None:
        from rapidocr import RapidOCR  # noqa: PLC0415 - optional heavy backend

        params = {
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": int(threads) if threads > 0 else -1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1 if threads > 0 else -1,
        }
        self._engine = RapidOCR(params=params)
        self._rec = self._engine._load_rec_model()  # loads now, so a broken install fails here
        # The model reads some 18,000 characters (Chinese among them); a blurred digit then
        # comes out as a CJK character. Read only what house numbers and plates are made of.
        chars = list(self._rec.postprocess_op.character)
        allowed = [i for i, ch in enumerate(chars) if i == 0 or ch in ALPHABET]
        self._rec.session = _Restricted(self._rec.session, np.asarray(allowed), len(chars))
        self._det: Any = None
        self._det_lock = threading.Lock()

    def read(self, crops: Sequence[np.ndarray]) -> list[TextRead]:
        """Read each ``(h, w, 3)`` uint8 BGR crop (one text line each); one batched call."""
        if len(crops) == 0:
            return []
        from rapidocr.ch_ppocr_rec import TextRecInput

        # The recognizer scales every crop to 48 px tall: a crop far wider than a text line of
        # house-number length would cost seconds and hold no number. Grey and BGRA are made BGR.
        ok = [i for i, c in enumerate(crops)
              if c is not None and c.ndim in (2, 3) and min(c.shape[:2]) >= 2 and c.shape[1] <= MAX_ASPECT * c.shape[0]]
        reads = [TextRead("", 0.0)] * len(crops)
        if not ok:
            return reads
        out = self._rec(TextRecInput(img=[_bgr(crops[i]) for i in ok]))
        for i, text, score in zip(ok, out.txts or (), out.scores or ()):
            reads[i] = TextRead(str(text), float(score))
        return reads

    def read_regions(self, image: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]],
                     *, pad_x: float = 0.0, pad_y: float = 0.0) -> list[TextRead]:
        """Read the regions ``boxes`` ``(N, 4)`` xyxy of ``image`` (BGR, the original pixels),
        each grown by ``pad_x``/``pad_y`` x its height (:func:`pad_box`)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        crops = []
        for box in boxes:
            a, b, c, d = pad_box(box, pad_x, pad_y, image.shape)
            crops.append(image[b:d, a:c])
        return self.read(crops)

    def _detector(self) -> Any:
        with self._det_lock:
            if self._det is None:
                self._det = self._engine._load_det_model()
            return self._det

    def detect(self, image: np.ndarray, *, max_side: int = 1600) -> tuple[np.ndarray, np.ndarray]:
        """Text lines in ``image`` (BGR): ``(boxes (K, 4) float32 xyxy in the image's pixels,
        scores (K,) float32)``.

        The detector runs on the image scaled so that its longer side is ``max_side`` (up or
        down): at 1600 a number 20 px tall in a 12-megapixel photo (4000 px wide) is 8 px
        tall, about the smallest line it finds; tiles of a larger photo at full resolution
        find smaller ones (:meth:`detect_tiled`).
        """
        import cv2

        H, W = image.shape[:2]
        if H == 0 or W == 0:  # nothing to scale or detect in ("no text" is an ordinary result)
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        scale = max_side / max(H, W)
        work = cv2.resize(image, (max(32, round(W * scale)), max(32, round(H * scale))),
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR) if abs(scale - 1) > 1e-3 else image
        det = self._detector()
        with self._det_lock:  # the size is an attribute of the shared detector: set and run together
            # The detector resizes to its own limit; make that limit the size chosen here.
            det.limit_side_len, det.limit_type = max(work.shape[:2]), "max"
            res = det(np.ascontiguousarray(work))
        if res.boxes is None or len(res.boxes) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        quads = np.asarray(res.boxes, np.float32).reshape(-1, 4, 2)
        sx, sy = W / work.shape[1], H / work.shape[0]
        boxes = np.stack([quads[:, :, 0].min(1) * sx, quads[:, :, 1].min(1) * sy,
                          quads[:, :, 0].max(1) * sx, quads[:, :, 1].max(1) * sy], axis=1)
        return boxes.astype(np.float32), np.asarray(res.scores, np.float32).reshape(-1)

    def detect_tiled(self, image: np.ndarray, *, tile: int = 1280, overlap: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
        """Text lines of a large photo at its full resolution: the detector on overlapping
        ``tile`` x ``tile`` tiles (no resizing), boxes back in the image's pixels, a line found
        twice where tiles overlap kept once. A number 20 px tall in a 12-megapixel photo is
        20 px tall for the detector here (at :meth:`detect`'s whole-image 960 px it is 5)."""
        H, W = image.shape[:2]
        step = max(1, int(tile * (1.0 - overlap)))
        xs = list(range(0, max(W - tile, 0) + 1, step))
        ys = list(range(0, max(H - tile, 0) + 1, step))
        if xs[-1] + tile < W:
            xs.append(W - tile)
        if ys[-1] + tile < H:
            ys.append(H - tile)
        boxes, scores = [], []
        for y in ys:
            for x in xs:
                part = image[y : y + tile, x : x + tile]
                b, s = self.detect(part, max_side=max(part.shape[:2]))
                if len(b):
                    boxes.append(b + np.array([x, y, x, y], np.float32))
                    scores.append(s)
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return merge_lines(np.concatenate(boxes), np.concatenate(scores))


def merge_lines(boxes: np.ndarray, scores: np.ndarray, inside: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Boxes with those lying mostly (``inside`` of their area) within a larger one dropped."""
    order = np.argsort(-((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    keep: list[int] = []
    for i in order:
        if keep and overlap_of_smaller(boxes[i : i + 1], boxes[keep]).max() >= inside:
            continue
        keep.append(int(i))
    keep.sort()
    return boxes[keep], scores[keep]


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))``: intersection over the smaller box (1 when one holds the other)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-6)


_LOAD_LOCK = threading.Lock()
_CACHE: dict[int, TextReader | None] = {}


def load_text_reader(*, threads: int = 1, warn: bool = True) -> TextReader | None:
    """The text reader, or None with one warning line when it cannot be loaded (the digit
    models then work alone). Loaded once per process and thread setting."""
    with _LOAD_LOCK:
        if threads in _CACHE:
            return _CACHE[threads]
        try:
            reader: TextReader | None = TextReader(threads=threads)
        except Exception as exc:  # noqa: BLE001 - any failure of the optional backend
            if warn:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("text reader not available (%s: %s); reading with the digit models alone", type(exc).__name__, first)
            reader = None
        _CACHE[threads] = reader
        return reader
