"""Image files in, ``(H, W, 3)`` uint8 BGR arrays out: the project's one image decoder.

Every image file the project reads goes through here: ``recognizer image``, image folders
given to ``recognizer run`` (:class:`recognizer.sources.ImageFolderSource`) and the training
and evaluation tools (``train.datasets.read_image``). Decoding is careful about what real
folders hold: only regular files are opened (a FIFO named ``x.png`` would block the reader
forever), transparent pixels are composited on white (as image viewers show them), a JPEG
whose data ends before its end-of-image marker is refused as damaged, and an image larger than
:data:`MAX_SIDE` is downscaled right after decoding (unless the caller asks for full size).
"""
from __future__ import annotations

import os
import stat

import cv2
import numpy as np

__all__ = [
    "MAX_SIDE",
    "ImageReadError",
    "as_bgr",
    "bound_size",
    "load_image",
    "read_image",
    "read_image_file",
]

MAX_SIDE = 4096
"""Longest side, in pixels, of a frame as the recognizer gets it: larger images and video
frames are downscaled right after decoding (INTER_AREA). The detector looks at 240x320 anyway
and a digit it can find is still wider than a 32x32 crop at this size, while a 10000x10000
image at full size took 4.6 GiB to read (1.6 GiB now; BENCHMARKS.md). Readings of a downscaled
frame are mapped back to the file's pixels in every output that reports boxes (see
:class:`recognizer.sources.ScaledFrame`); the annotated copies (``--save``, ``--dump``,
``--save-dir``) are drawn at the size the frame was read."""


def bound_size(image: np.ndarray, max_side: int | None = MAX_SIDE) -> tuple[np.ndarray, tuple[int, int] | None]:
    """``image`` with its longer side cut to ``max_side`` (INTER_AREA), and its former
    ``(width, height)``; ``(image, None)`` when it is small enough (or ``max_side`` is None)."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image, None
    s = max_side / max(h, w)
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), (w, h)


class ImageReadError(Exception):
    """An image file cannot be used. ``str(error)`` says why in a few words, without the path
    (``"no such file"``, ``"not a readable image (damaged PNG data)"``, ...).

    Attributes:
        missing: True when there is no file at the path (nothing there, a folder, or a path
            through something that is not a folder); False when there is one but it cannot be
            read or decoded.
    """

    def __init__(self, why: str, *, missing: bool = False) -> None:
        super().__init__(why)
        self.missing = missing


def load_image(
    path: str | os.PathLike[str], *, max_side: int | None = MAX_SIDE
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Decode an image file as ``(H, W, 3)`` uint8 BGR: ``(image, original size)``.

    Only regular files are opened. Transparent pixels are composited on white, as image
    viewers show them. A JPEG whose data ends before its end-of-image marker is refused as
    damaged: libjpeg would fill the missing part with grey and only print a warning. An image
    whose longer side exceeds ``max_side`` is downscaled right after decoding (``None`` keeps
    the full size); the second value is then its ``(width, height)`` in the file (else None).

    Raises:
        ImageReadError: the file is missing or cannot be used; the message says why.
    """
    image = _decode_image_file(path)
    return bound_size(image, max_side)


def read_image(
    path: str | os.PathLike[str], *, max_side: int | None = MAX_SIDE
) -> tuple[np.ndarray | None, str, tuple[int, int] | None]:
    """:func:`load_image` without raising: ``(image, "", original size)``, or
    ``(None, why, None)`` when the file cannot be used."""
    try:
        image, original = load_image(path, max_side=max_side)
    except ImageReadError as exc:
        return None, str(exc), None
    return image, "", original


def read_image_file(path: str | os.PathLike[str], *, max_side: int | None = MAX_SIDE) -> tuple[np.ndarray | None, str]:
    """Decode an image file as ``(H, W, 3)`` uint8 BGR; ``(None, why)`` when it cannot be used.

    See :func:`load_image` (and :func:`read_image`, which also gives the size in the file of
    a downscaled image).
    """
    image, why, _ = read_image(path, max_side=max_side)
    return image, why


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Frames are always ``(H, W, 3)`` uint8 BGR; grey or BGRA images are converted."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        return cv2.convertScaleAbs(image)
    return image


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _decode_image_file(path: str | os.PathLike[str]) -> np.ndarray:
    """The decoded ``(H, W, 3)`` uint8 BGR image at full size; :class:`ImageReadError` if unusable."""
    try:
        data = _read_regular_file(path)
    except FileNotFoundError as exc:
        raise ImageReadError("no such file", missing=True) from exc
    except IsADirectoryError as exc:
        raise ImageReadError("is a directory", missing=True) from exc
    except _NotRegularFile as exc:
        raise ImageReadError("not a regular file (a pipe, socket or device)") from exc
    except OSError as exc:
        raise ImageReadError(f"cannot be read ({exc.strerror or exc})", missing=isinstance(exc, NotADirectoryError)) from exc
    buf = np.frombuffer(data, np.uint8)
    if data[:3] == b"\xff\xd8\xff":
        if not _jpeg_complete(data):
            raise ImageReadError("damaged: the JPEG data ends early (a truncated or partly written file)")
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    else:
        image = None
        decodable = buf.size > 0
        if data[:8] == _PNG_MAGIC or data[8:12] == b"WEBP" or data[:4] in (b"II*\x00", b"MM\x00*"):
            # Formats that can carry transparency: decode with the alpha channel, if any.
            with_alpha = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            decodable = with_alpha is not None
            if decodable and with_alpha.ndim == 3 and with_alpha.shape[2] in (2, 4):
                image = _on_white(with_alpha)
            del with_alpha  # a huge image is not held twice while it is decoded again below
        if image is None and decodable:
            # Without transparency: OpenCV's own conversion (EXIF orientation, 16-bit to 8-bit).
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        if data[:8] == _PNG_MAGIC:
            raise ImageReadError("not a readable image (damaged PNG data)")
        raise ImageReadError("not a readable image (expected PNG, JPEG, BMP, TIFF or WebP)")
    return as_bgr(image)


class _NotRegularFile(OSError):
    pass


def _read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of ``path`` if it is a regular file (symlinks followed), never blocking on a FIFO."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(mode):
        raise _NotRegularFile(path)
    # O_NONBLOCK: should the file be swapped for a FIFO after the stat, opening it still returns.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegularFile(path)
        return fh.read()


def _jpeg_complete(data: bytes) -> bool:
    """True when a JPEG's segments and entropy-coded scans run on to the end-of-image marker.

    Walks the marker segments (skipping each by its length, so thumbnails inside EXIF do not
    count) and each scan's data up to its next marker. Bytes after the end marker (some
    cameras append data there) are allowed.
    """
    n = len(data)
    i = 2
    while i + 1 < n:
        if data[i] != 0xFF:
            i = data.find(b"\xff", i)  # stray bytes between segments: libjpeg skips them too
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker in (0x00, 0x01):
            i += 2
            continue
        if i + 4 > n:
            return False
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if end > n:
            return False
        if marker != 0xDA:
            i = end
            continue
        # Start of scan: its data runs to the next marker other than FF00 (a stuffed FF) and RSTn.
        j = end
        while True:
            j = data.find(b"\xff", j)
            if j < 0 or j + 1 >= n:
                return False
            nxt = data[j + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                j += 2
            elif nxt == 0xFF:
                j += 1
            else:
                break
        i = j
    return False


def _on_white(image: np.ndarray, rows: int = 512) -> np.ndarray:
    """A BGRA (or grey + alpha) image composited on a white background, as uint8 BGR.

    Done ``rows`` rows at a time, so a huge image needs no float copy of itself.
    """
    h, w = image.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, rows):
        part = image[y : y + rows]
        if part.dtype == np.uint16:
            part = (part >> 8).astype(np.uint8)
        elif part.dtype != np.uint8:
            part = cv2.convertScaleAbs(part)
        if part.shape[2] == 2:
            colour = cv2.cvtColor(np.ascontiguousarray(part[..., 0]), cv2.COLOR_GRAY2BGR)
        else:
            colour = part[..., :3]
        alpha = part[..., -1:].astype(np.float32) / 255.0
        blended = colour.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        out[y : y + rows] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out

