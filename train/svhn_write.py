"""Writers of SVHN's file formats: ``digitStruct.mat`` in SVHN's exact MATLAB v7.3 layout,
``labels.json`` and ``*_32x32.mat`` (the layouts are described in :mod:`train.svhn`, which
reads them back and re-exports these writers).

Tests and ``tools/synth*.py`` use them to make SVHN-format data.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recognizer.models.labels import SVHN_ZERO_LABEL, svhn_to_digits
from train.svhn_records import SVHNImage, scipy_io

_MATLAB_HEADER_SIZE = 512



# --------------------------------------------------------------------------- digitStruct.mat


def _matlab_header() -> bytes:
    """The 128-byte MATLAB v7.3 header that sits in the HDF5 user block."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 .".encode("ascii")
    # 116 bytes of text, 8 bytes of subsystem offset, version 0x0200, endian indicator "IM".
    return text.ljust(116, b" ") + b" " * 8 + b"\x00\x02" + b"IM"


def _ref_names() -> Iterable[str]:
    """MATLAB-like names for objects in ``#refs#``: a..z, A..Z, then aa, ab, ..."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    width = 1
    while True:
        n = len(letters) ** width
        for k in range(n):
            chars = []
            for _ in range(width):
                k, r = divmod(k, len(letters))
                chars.append(letters[r])
            yield "".join(reversed(chars))
        width += 1


class _ScalarWriter:
    """Creates ``(1, 1)`` float64 datasets tagged as MATLAB doubles with h5py's low-level API.

    Most objects of a digitStruct.mat are such scalars; h5py's ``create_dataset`` plus
    ``attrs[...]`` cost about three times as much per object.
    """

    def __init__(self) -> None:
        self.space = h5py.h5s.create_simple((1, 1))
        self.buf = np.empty((1, 1), dtype=np.float64)
        self.attr_type = h5py.h5t.C_S1.copy()
        self.attr_type.set_size(6)
        self.attr_type.set_strpad(h5py.h5t.STR_NULLPAD)
        self.attr_space = h5py.h5s.create(h5py.h5s.SCALAR)
        self.attr_value = np.array(b"double", dtype="S6")

    def create(self, loc: Any, name: bytes, value: float) -> h5py.Reference:
        dsid = h5py.h5d.create(loc, name, h5py.h5t.IEEE_F64LE, self.space)
        self.buf[0, 0] = value
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, self.buf)
        h5py.h5a.create(dsid, b"MATLAB_class", self.attr_type, self.attr_space).write(self.attr_value)
        return h5py.h5r.create(loc, name, h5py.h5r.OBJECT)


def write_digitstruct(path: str | os.PathLike, images: Sequence[SVHNImage]) -> Path:
    """Write ``images`` as a MATLAB v7.3 ``digitStruct.mat`` in SVHN's exact layout.

    Labels are written raw (10 for the digit 0). An image with one box stores its fields as
    ``(1, 1)`` float64 datasets; with several boxes as ``(n, 1)`` references to ``(1, 1)``
    float64 datasets; with no box as MATLAB's empty double (SVHN itself has none).

    Args:
        path: output file; overwritten (written to a temporary file first).
        images: the annotations.

    Returns:
        The path written.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    names = _ref_names()
    double = np.bytes_("double")
    with h5py.File(tmp, "w", userblock_size=_MATLAB_HEADER_SIZE) as f:
        scalars = _ScalarWriter()
        refs = f.create_group("#refs#")
        root = f.create_group("digitStruct")
        root.attrs["MATLAB_class"] = np.bytes_("struct")
        name_refs = np.empty((len(images), 1), dtype=h5py.ref_dtype)
        bbox_refs = np.empty((len(images), 1), dtype=h5py.ref_dtype)
        for i, image in enumerate(images):
            chars = np.frombuffer(image.name.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
            d = refs.create_dataset(next(names), data=chars)
            d.attrs["MATLAB_class"] = np.bytes_("char")
            d.attrs["MATLAB_int_decode"] = np.int32(2)
            name_refs[i, 0] = d.ref

            g = refs.create_group(next(names))
            g.attrs["MATLAB_class"] = np.bytes_("struct")
            raw = np.where(image.digits == 0, SVHN_ZERO_LABEL, image.digits).astype(np.float64)
            columns = {
                "height": image.boxes[:, 3],
                "label": raw,
                "left": image.boxes[:, 0],
                "top": image.boxes[:, 1],
                "width": image.boxes[:, 2],
            }
            n = len(image)
            for field_name, values in columns.items():
                if n == 0:
                    e = g.create_dataset(field_name, data=np.zeros(2, dtype=np.uint64))
                    e.attrs["MATLAB_class"] = double
                    e.attrs["MATLAB_empty"] = np.uint8(1)
                elif n == 1:
                    scalars.create(g.id, field_name.encode("ascii"), float(values[0]))
                else:
                    element_refs = np.empty((n, 1), dtype=h5py.ref_dtype)
                    for j, v in enumerate(values.tolist()):
                        element_refs[j, 0] = scalars.create(refs.id, next(names).encode("ascii"), v)
                    g.create_dataset(field_name, data=element_refs)
            bbox_refs[i, 0] = g.ref
        for key, table in (("name", name_refs), ("bbox", bbox_refs)):
            ds = root.create_dataset(key, data=table)
            ds.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(tmp, "r+b") as fh:
        fh.write(_matlab_header())
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- labels.json


def write_labels_json(
    path: str | os.PathLike, images: Sequence[SVHNImage], *, image_root: str | os.PathLike | None = None
) -> Path:
    """Write ``images`` as ``labels.json``.

    Args:
        path: output file.
        images: annotations; ``name`` becomes ``file``.
        image_root: when given, ``width``, ``height`` and ``md5`` of each image file under it
            are added (files that cannot be read get none).

    Returns:
        The path written.
    """
    import cv2  # only needed for image sizes

    entries = []
    for im in images:
        entry: dict[str, Any] = {"file": im.name}
        if image_root is not None:
            file = Path(image_root) / im.name
            data = file.read_bytes() if file.is_file() else b""
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
            if decoded is not None:
                entry["width"], entry["height"] = int(decoded.shape[1]), int(decoded.shape[0])
                entry["md5"] = hashlib.md5(data).hexdigest()
        entry["boxes"] = [
            [*(int(v) if float(v).is_integer() else float(v) for v in box), int(d)]
            for box, d in zip(im.boxes.tolist(), im.digits.tolist())
        ]
        entries.append(entry)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- *_32x32.mat


def write_32x32_mat(path: str | os.PathLike, X: np.ndarray, digits: np.ndarray) -> Path:
    """Write crops in the official format-2 layout (``train_32x32.mat``).

    Args:
        path: output ``.mat`` file (MATLAB v5, as SVHN ships it).
        X: ``(N, 32, 32, 3)`` uint8 RGB crops; stored as ``X`` ``(32, 32, 3, N)``.
        digits: ``(N,)`` digits 0..9 (or raw 1..10); stored as ``y`` ``(N, 1)`` uint8 with 10 for 0.

    Returns:
        The path written.
    """
    sio = scipy_io()
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[1:] != (32, 32, 3) or X.dtype != np.uint8:
        raise ValueError(f"X has shape {X.shape} dtype {X.dtype}; expected (N, 32, 32, 3) uint8")
    d = svhn_to_digits(np.asarray(digits))
    if len(d) != len(X):
        raise ValueError(f"{len(X)} crops but {len(d)} digits; expected one digit per crop")
    y = np.where(d == 0, SVHN_ZERO_LABEL, d).astype(np.uint8).reshape(-1, 1)
    sio.savemat(str(path), {"X": np.ascontiguousarray(X.transpose(1, 2, 3, 0)), "y": y}, do_compression=False)
    return Path(path)
