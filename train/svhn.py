"""SVHN's file formats: ``digitStruct.mat`` (format 1), ``labels.json``, ``*_32x32.mat`` (format 2).

This module reads them; the writers are in :mod:`train.svhn_write` and the record and error
types in :mod:`train.svhn_records`, all importable from here.

Format 1 ("full numbers") ships each split as PNG images plus ``digitStruct.mat``, a MATLAB v7.3
file, that is an HDF5 file behind a 512-byte MATLAB header. Its layout::

    /digitStruct            group (MATLAB struct)
        name   (N, 1)       object references -> (L, 1) uint16 char arrays ("1.png")
        bbox   (N, 1)       object references -> groups with datasets
                            height, label, left, top, width:
                              one box:   (1, 1) float64 scalars stored in place
                              n boxes:   (n, 1) object references -> (1, 1) float64 scalars
    /#refs#                 every referenced object (named a, b, ... as MATLAB does)

Labels are raw SVHN labels: 1..9 for those digits and 10 for the digit 0.

Reading it object by object through h5py's high-level API (``f[ref][()]`` per object) costs
tens of microseconds per object, and the train file has over half a million objects.
:func:`read_digitstruct` reads the two reference tables in bulk, dereferences with h5py's
low-level API into reused buffers, can split the work over processes, and caches the parsed
result as an ``.npz`` keyed by the file's size and mtime. Measured on the build machine (2 CPU
cores shared with other jobs) on a generated 33,402-image file with 1-5 boxes per image
(100,468 boxes, about 670,000 HDF5 objects, more than SVHN's real train file with 73,257
boxes): 36 s cold in one process, 24 s with ``workers=2``, 0.2 s from the cache; the
high-level per-object loop needs about 156 s for the same file.

``labels.json`` is the project's own plain-text equivalent (used by ``data/svhn_real/full``):
``[{"file": "train/1.png", "width": W, "height": H, "md5": "...",
"boxes": [[left, top, width, height, digit], ...]}, ...]``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recognizer.models.labels import svhn_to_digits
from train.svhn_records import BOX_FIELDS, SVHNFormatError, SVHNImage, scipy_io, short_error
from train.svhn_write import write_32x32_mat, write_digitstruct, write_labels_json

__all__ = [
    "BOX_FIELDS", "CACHE_DIR_ENV", "CACHE_VERSION", "SVHNFormatError", "SVHNImage", "read_32x32_mat",
    "read_digitstruct", "read_labels_json", "write_32x32_mat", "write_digitstruct", "write_labels_json",
]

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever the cache's content or meaning changes, so stale caches are re-parsed."""

CACHE_DIR_ENV = "RECOGNIZER_CACHE_DIR"
"""Environment variable naming the fallback cache folder (default ``~/.cache/recognizer``)."""

# --------------------------------------------------------------------------- digitStruct.mat


class _FastReader:
    """Dereferences and reads digitStruct objects with h5py's low-level API.

    The high-level ``f[ref][()]`` builds a Dataset wrapper, a selection and a fresh array per
    object; here each object costs one dereference and one ``H5Dread`` into a reused buffer,
    and types are checked by HDF5 class rather than by building numpy dtypes.
    """

    def __init__(self, f: h5py.File) -> None:
        self.fid = f.id
        self.scalar = np.empty((1, 1), dtype=np.float64)

    def deref(self, ref: h5py.Reference) -> Any:
        return h5py.h5r.dereference(ref, self.fid)

    def read_name(self, ref: h5py.Reference) -> str:
        dsid = self.deref(ref)
        if not isinstance(dsid, h5py.h5d.DatasetID):
            raise ValueError("name entry is not a dataset")
        shape = dsid.shape
        if dsid.get_type().get_class() != h5py.h5t.INTEGER or len(shape) > 2:
            raise ValueError(f"name is a {shape} {dsid.dtype} dataset; expected (L, 1) uint16 characters")
        buf = np.empty(shape, dtype=dsid.dtype)
        dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, buf)
        if buf.dtype == np.uint64 and shape == (2,):
            return ""  # MATLAB's empty char array stores its dimensions instead of characters
        return "".join(map(chr, buf.reshape(-1).tolist()))

    def read_scalar(self, dsid: Any) -> float:
        if not isinstance(dsid, h5py.h5d.DatasetID):
            raise ValueError("box value is not a dataset")
        shape = dsid.shape
        if shape != (1, 1):
            if shape not in ((1,), ()):
                raise ValueError(f"box value has shape {shape}; expected (1, 1)")
            buf = np.empty(shape, dtype=np.float64)
        else:
            buf = self.scalar
        # H5Dread converts any numeric file type to the float64 buffer.
        dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, buf)
        return float(buf.reshape(-1)[0])

    def read_field(self, gid: Any, field_name: bytes) -> list[float]:
        dsid = h5py.h5o.open(gid, field_name)
        if not isinstance(dsid, h5py.h5d.DatasetID):
            raise ValueError(f"bbox field {field_name.decode()!r} is not a dataset")
        cls = dsid.get_type().get_class()
        if cls == h5py.h5t.REFERENCE:
            table = np.empty(dsid.shape, dtype=h5py.ref_dtype)
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, table)
            return [self.read_scalar(self.deref(r)) for r in table.reshape(-1)]
        if cls == h5py.h5t.INTEGER and dsid.shape == (2,):
            return []  # MATLAB's empty double: an image without boxes
        if cls not in (h5py.h5t.FLOAT, h5py.h5t.INTEGER):
            raise ValueError(f"bbox field {field_name.decode()!r} has type {dsid.dtype}; expected float64")
        return [self.read_scalar(dsid)]

    def read_boxes(self, ref: h5py.Reference) -> tuple[list[list[float]], list[float]]:
        gid = self.deref(ref)
        if not isinstance(gid, h5py.h5g.GroupID):
            raise ValueError("bbox entry is not a struct group")
        cols = [self.read_field(gid, k) for k in _FIELD_KEYS]
        if len({len(c) for c in cols}) != 1:
            lengths = dict(zip(_FIELD_NAMES, map(len, cols)))
            raise ValueError(f"bbox fields have different lengths {lengths}")
        return cols[:4], cols[4]


_FIELD_NAMES = (*BOX_FIELDS, "label")
_FIELD_KEYS = tuple(k.encode("ascii") for k in _FIELD_NAMES)


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise SVHNFormatError(f"{path}: no such file; expected SVHN's digitStruct.mat") from None
    except OSError as exc:
        raise SVHNFormatError(
            f"{path}: not a readable MATLAB v7.3 / HDF5 file ({short_error(exc)}); is it truncated? "
            "re-download or re-extract the split"
        ) from None


def _reference_tables(path: Path, f: h5py.File) -> tuple[np.ndarray, np.ndarray]:
    """The ``(N,)`` name and bbox reference arrays, each read in one call."""
    try:
        group = f["digitStruct"]
        name_table = group["name"][()].reshape(-1)
        bbox_table = group["bbox"][()].reshape(-1)
        if name_table.dtype != object or bbox_table.dtype != object:
            raise TypeError(f"name is {name_table.dtype}, bbox is {bbox_table.dtype}, not references")
    except (KeyError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise SVHNFormatError(
            f"{path}: no digitStruct/name and digitStruct/bbox reference tables ({short_error(exc)}); "
            "expected SVHN's digitStruct.mat"
        ) from None
    if len(name_table) != len(bbox_table):
        raise SVHNFormatError(
            f"{path}: {len(name_table)} names but {len(bbox_table)} bbox entries; expected one per image"
        )
    return name_table, bbox_table


def _count_images(path: Path) -> int:
    with _open_h5(path) as f:
        return len(_reference_tables(path, f)[0])


_Parsed = tuple[list[str], np.ndarray, np.ndarray, np.ndarray]

_MIN_IMAGES_PER_WORKER = 1000
"""A worker process costs about as much to start as parsing this many images."""


def _parse_range(path: Path, start: int = 0, stop: int | None = None) -> _Parsed:
    """Parse images ``start..stop-1``: names, per-image counts, boxes (M,4) f32, raw labels (M,) f64."""
    with _open_h5(path) as f:
        name_table, bbox_table = _reference_tables(path, f)
        stop = len(name_table) if stop is None else stop
        reader = _FastReader(f)
        names: list[str] = []
        counts = np.empty(stop - start, dtype=np.int64)
        cols: list[list[float]] = [[], [], [], []]
        labels: list[float] = []
        for i in range(start, stop):
            try:
                names.append(reader.read_name(name_table[i]))
                box_cols, image_labels = reader.read_boxes(bbox_table[i])
            except Exception as exc:  # h5py raises many types on damaged objects
                raise SVHNFormatError(f"{path}: image entry {i} is damaged: {short_error(exc)}") from None
            counts[i - start] = len(image_labels)
            for col, values in zip(cols, box_cols):
                col.extend(values)
            labels.extend(image_labels)
    boxes = np.array(cols, dtype=np.float32).T.reshape(-1, 4)
    return names, counts, boxes, np.asarray(labels, dtype=np.float64)


def _parse_digitstruct(path: Path, workers: int = 1) -> _Parsed:
    """Parse the whole file, in ``workers`` processes when asked (each opens the file)."""
    if workers <= 1:
        return _parse_range(path)
    n = _count_images(path)
    workers = max(1, min(workers, n // _MIN_IMAGES_PER_WORKER))
    if workers <= 1:
        return _parse_range(path)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bounds = np.linspace(0, n, workers + 1).astype(int).tolist()
    # fork where there is one: spawn would re-run a caller's script that lacks a __main__ guard.
    # The children only open their own read-only handle of the file.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        parts = list(pool.map(_parse_range, [path] * workers, bounds[:-1], bounds[1:]))
    return (
        [name for part in parts for name in part[0]],
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )


def _cache_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns), "version": CACHE_VERSION}


def _cache_candidates(path: Path, cache_dir: str | os.PathLike | None) -> list[Path]:
    """Where a cache may live: the given folder, next to the file, then a per-user folder."""
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:16]
    fallback_root = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "recognizer")
    if cache_dir is not None:
        return [Path(cache_dir) / f"{path.stem}-{digest}.npz"]
    return [
        path.with_name(path.name + ".cache.npz"),
        fallback_root / "svhn" / f"{path.stem}-{digest}.npz",
    ]


def _load_cache(candidate: Path, key: dict[str, int]) -> list[SVHNImage] | None:
    try:
        with np.load(candidate, allow_pickle=False) as z:
            if {k: int(z[k]) for k in key} != key:
                return None
            return _images_from_arrays(list(z["names"].tolist()), z["counts"], z["boxes"], z["digits"])
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged cache is re-built, never fatal
        log.warning("ignoring unreadable cache %s: %s", candidate, short_error(exc))
        return None


def _save_cache(candidate: Path, key: dict[str, int], images: Sequence[SVHNImage]) -> bool:
    names = np.array([im.name for im in images], dtype=str)
    counts = np.array([len(im) for im in images], dtype=np.int64)
    boxes = np.concatenate([im.boxes for im in images]) if images else np.zeros((0, 4), np.float32)
    digits = np.concatenate([im.digits for im in images]) if images else np.zeros(0, np.int64)
    tmp = candidate.with_name(f"{candidate.name}.{os.getpid()}.tmp.npz")
    try:
        candidate.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, names=names, counts=counts, boxes=boxes, digits=digits, **{k: np.int64(v) for k, v in key.items()})
        os.replace(tmp, candidate)
        return True
    except OSError as exc:
        log.debug("cannot write cache %s: %s", candidate, exc)
        try:
            tmp.unlink()
        except OSError:
            pass
        return False


def _images_from_arrays(
    names: Sequence[str], counts: np.ndarray, boxes: np.ndarray, digits: np.ndarray
) -> list[SVHNImage]:
    ends = np.cumsum(counts)
    starts = ends - counts
    return [SVHNImage(n, boxes[s:e], digits[s:e]) for n, s, e in zip(names, starts.tolist(), ends.tolist())]


def read_digitstruct(
    path: str | os.PathLike,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 1,
) -> list[SVHNImage]:
    """Read SVHN's ``digitStruct.mat`` (format 1 annotations).

    Args:
        path: the ``digitStruct.mat`` file.
        cache: reuse / write a parsed copy (``.npz``) keyed by the file's size and mtime:
            next to the file (``digitStruct.mat.cache.npz``) or, when that folder is read-only,
            under ``$RECOGNIZER_CACHE_DIR`` (default ``~/.cache/recognizer``)/svhn.
        cache_dir: put the cache here instead.
        workers: parse a file that is not cached yet in this many processes (each takes a
            contiguous range of images; at least 1,000 images per worker).

    Returns:
        One :class:`SVHNImage` per image, in file order; digits 0..9 (raw 10 -> 0).

    Raises:
        SVHNFormatError: the file is missing, truncated, not HDF5 or not digitStruct-shaped.
    """
    path = Path(path)
    if not path.is_file():
        raise SVHNFormatError(f"{path}: no such file; expected SVHN's digitStruct.mat")
    key = _cache_key(path)
    candidates = _cache_candidates(path, cache_dir) if cache else []
    for candidate in candidates:
        images = _load_cache(candidate, key)
        if images is not None:
            log.debug("read %d images from cache %s", len(images), candidate)
            return images
    t0 = time.perf_counter()
    names, counts, boxes, raw = _parse_digitstruct(path, workers)
    try:
        digits = svhn_to_digits(raw) if len(raw) else np.zeros(0, np.int64)
        if len(raw) and not np.array_equal(raw, np.round(raw)):
            raise ValueError(f"SVHN label {raw[raw != np.round(raw)][0]} is not an integer")
    except ValueError as exc:
        raise SVHNFormatError(f"{path}: {exc}") from None
    images = _images_from_arrays(names, counts, boxes, digits)
    log.info("parsed %s: %d images, %d boxes in %.2f s", path, len(images), len(digits), time.perf_counter() - t0)
    for candidate in candidates:
        if _save_cache(candidate, key, images):
            break
    return images


# --------------------------------------------------------------------------- labels.json


def read_labels_json(path: str | os.PathLike) -> list[SVHNImage]:
    """Read the project's ``labels.json`` annotations (see the module docstring).

    Digits may be raw SVHN labels (10 for 0). ``width``/``height``/``md5`` are optional.

    Raises:
        SVHNFormatError: missing file, invalid JSON, or an entry without ``file``/``boxes``.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SVHNFormatError(f"{path}: no such file; expected a labels.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SVHNFormatError(f"{path}: not valid JSON ({short_error(exc)})") from None
    if not isinstance(entries, list):
        raise SVHNFormatError(f"{path}: top level is {type(entries).__name__}; expected a list of entries")
    images: list[SVHNImage] = []
    for i, entry in enumerate(entries):
        try:
            name = entry["file"]
            rows = np.asarray(entry["boxes"], dtype=np.float64).reshape(-1, 5)
            if not isinstance(name, str) or not name:
                raise ValueError(f"file is {name!r}")
            digits = svhn_to_digits(rows[:, 4])
            if not np.array_equal(rows[:, 4], np.round(rows[:, 4])):
                raise ValueError("a digit is not an integer")
            images.append(SVHNImage(name, rows[:, :4], digits))
        except (KeyError, TypeError, ValueError) as exc:
            raise SVHNFormatError(
                f"{path}: entry {i} is invalid ({short_error(exc)}); expected "
                '{"file": "train/1.png", "boxes": [[left, top, width, height, digit], ...]}'
            ) from None
    return images


# --------------------------------------------------------------------------- *_32x32.mat


def read_32x32_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an official format-2 file (``train_32x32.mat``, ``test_32x32.mat``, ``extra_32x32.mat``).

    MATLAB v5 files are read with scipy; a v7.3 (HDF5) re-save is read with h5py.

    Returns:
        ``X`` ``(N, 32, 32, 3)`` uint8 RGB and digits ``(N,)`` int64 0..9 (raw 10 -> 0).

    Raises:
        SVHNFormatError: missing or damaged file, or no ``X``/``y`` of the right shapes.
        ImportError: scipy is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise SVHNFormatError(f"{path}: no such file; expected an SVHN *_32x32.mat file")
    if h5py.is_hdf5(path):
        try:
            with h5py.File(path, "r") as f:
                X = np.asarray(f["X"][()]).transpose(0, 3, 2, 1)  # MATLAB's (32,32,3,N) reversed
                y = np.asarray(f["y"][()]).reshape(-1)
        except (KeyError, OSError, ValueError) as exc:
            raise SVHNFormatError(f"{path}: no readable X and y ({short_error(exc)})") from None
    else:
        sio = scipy_io()
        try:
            data = sio.loadmat(str(path))
        except Exception as exc:  # scipy raises ValueError, TypeError, OSError... on damage
            raise SVHNFormatError(f"{path}: not a readable .mat file ({short_error(exc)}); is it truncated?") from None
        if "X" not in data or "y" not in data:
            raise SVHNFormatError(f"{path}: variables {sorted(k for k in data if not k.startswith('__'))}; expected X and y")
        raw_X = np.asarray(data["X"])
        if raw_X.ndim != 4 or raw_X.shape[:3] != (32, 32, 3):
            raise SVHNFormatError(f"{path}: X has shape {raw_X.shape}; expected (32, 32, 3, N)")
        X = raw_X.transpose(3, 0, 1, 2)
        y = np.asarray(data["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[1:] != (32, 32, 3) or len(X) != len(y):
        raise SVHNFormatError(f"{path}: X has shape {X.shape} and y {len(y)} labels; expected N crops 32x32x3 and N labels")
    try:
        digits = svhn_to_digits(y)
    except ValueError as exc:
        raise SVHNFormatError(f"{path}: {exc}") from None
    return np.ascontiguousarray(X, dtype=np.uint8), digits
