"""Image files in, ``(H, W, 3)`` uint8 BGR arrays out: the project's one image decoder.

Every image file the project reads goes through here: ``recognizer image``, image folders
given to ``recognizer run`` (:class:`recognizer.io.sources.ImageFolderSource`) and the training
and evaluation tools (``train.datasets.read_image``). Decoding is careful about what real
folders hold: only regular files are opened (a FIFO named ``x.png`` would block the reader
forever), transparent pixels are composited on white (as image viewers show them) or, when
what is opaque is mostly light (white digits on a transparent plate), on black, a JPEG
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
:attr:`recognizer.types.Frame.original_size`); the annotated copies (``--save``, ``--dump``,
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

    Only regular files are opened. Transparent pixels (an alpha channel, or a PNG's
    transparent colour) are composited on white, as image viewers show them, or on black when
    the opaque pixels are mostly light (light digits would vanish on white). A JPEG whose data ends before its end-of-image marker is refused as
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
            if decodable and with_alpha.ndim == 2 and data[:8] == _PNG_MAGIC:
                with_alpha = _grey_key_alpha(data, with_alpha)  # grey + tRNS: OpenCV drops the key
            if decodable and with_alpha.ndim == 3 and with_alpha.shape[2] in (2, 4):
                image = _on_background(with_alpha)
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


def _grey_key_alpha(data: bytes, grey: np.ndarray) -> np.ndarray:
    """A grey PNG's transparent colour (its ``tRNS`` chunk) as an alpha channel: ``(H, W, 2)``
    grey + alpha; ``grey`` unchanged when the file has no such chunk.

    OpenCV turns the transparent colour of palette and RGB PNGs into alpha but ignores a grey
    one, so dark digits on a transparent background came out dark on black.
    """
    if len(data) < 33 or data[12:16] != b"IHDR" or data[25] != 0:  # colour type 0: grey
        return grey
    depth, pos, key = data[24], 8, None
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind == b"tRNS" and length >= 2:
            key = int.from_bytes(data[pos + 8 : pos + 10], "big")
            break
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    if key is None:
        return grey
    if depth < 8 and grey.dtype == np.uint8:  # decoded with 1/2/4-bit samples scaled to 0..255
        key = key * 255 // ((1 << depth) - 1)
    top = np.iinfo(grey.dtype).max if grey.dtype.kind == "u" else 255
    alpha = np.where(grey == key, 0, top).astype(grey.dtype)
    return np.dstack([grey, alpha])


def _as_uint8(part: np.ndarray) -> np.ndarray:
    if part.dtype == np.uint16:
        return (part >> 8).astype(np.uint8)
    return part if part.dtype == np.uint8 else cv2.convertScaleAbs(part)


def _colour(part: np.ndarray) -> np.ndarray:
    """The colour channels of a BGRA or grey + alpha block, as BGR."""
    if part.shape[2] == 2:
        return cv2.cvtColor(np.ascontiguousarray(part[..., 0]), cv2.COLOR_GRAY2BGR)
    return part[..., :3]


def background_for(image: np.ndarray, rows: int = 512) -> int:
    """The grey level to composite a BGRA (or grey + alpha) image on: 255 (white, as viewers
    show transparency) unless more than half of what is opaque (weighted by alpha) is light,
    then 0 (black): white digits on a transparent plate would vanish on white."""
    opaque = light = 0.0
    for y in range(0, image.shape[0], rows):
        part = _as_uint8(image[y : y + rows])
        alpha = part[..., -1].astype(np.float64)
        grey = cv2.cvtColor(np.ascontiguousarray(_colour(part)), cv2.COLOR_BGR2GRAY)
        opaque += float(alpha.sum())
        light += float(alpha[grey >= 128].sum())
    return 0 if opaque > 0 and light > 0.5 * opaque else 255


def _on_background(image: np.ndarray, rows: int = 512) -> np.ndarray:
    """A BGRA (or grey + alpha) image composited on :func:`background_for`'s grey, as uint8 BGR.

    Done ``rows`` rows at a time, so a huge image needs no float copy of itself.
    """
    h, w = image.shape[:2]
    back = float(background_for(image, rows))
    out = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, rows):
        part = _as_uint8(image[y : y + rows])
        alpha = part[..., -1:].astype(np.float32) / 255.0
        blended = _colour(part).astype(np.float32) * alpha + back * (1.0 - alpha)
        out[y : y + rows] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out

