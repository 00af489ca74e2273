"""SVHN-format splits and the classifier's 32x32 crops (detector images: :mod:`train.detection_dataset`).

All conversion and cropping goes through :mod:`recognizer.models.preprocess`, so training sees exactly
what inference sees: classifier crops are cut by ``crop_digits`` and normalised by
``crops_to_tensor`` (detector images are ``frame_to_tensor`` output).

An SVHN-format folder ("split") holds ``digitStruct.mat`` (SVHN's format 1) or ``labels.json``
(the project's plain-text equivalent) plus the images they name, relative to the folder.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from recognizer.models.labels import NOT_DIGIT_CLASS, NOT_DIGIT_LABEL, crop_labels_to_classes
from recognizer.models.preprocess import crop_digits, crops_to_tensor
from train.svhn import SVHNImage, read_32x32_mat, read_digitstruct, read_labels_json

log = logging.getLogger(__name__)

CropAugment = Callable[[np.ndarray], np.ndarray]
"""``(crop (32, 32, 3) uint8 RGB) -> crop (32, 32, 3) uint8 RGB``."""


class DatasetError(ValueError):
    """A split or crop source is unusable as a whole (empty, unknown layout, all images bad)."""


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Split:
    """The annotations of an SVHN-format folder.

    Attributes:
        records: one :class:`SVHNImage` per listed image, in file order.
        image_root: folder the record names are relative to.
        annotation_file: the ``digitStruct.mat`` or ``labels.json`` read.
    """

    records: list[SVHNImage]
    image_root: Path
    annotation_file: Path


def load_split(root: str | os.PathLike, *, cache: bool = True, workers: int = 1) -> Split:
    """Read the annotations of an SVHN-format folder.

    Args:
        root: a folder with ``digitStruct.mat`` or ``labels.json`` (the former wins), or the
            annotation file itself.
        cache: let :func:`train.svhn.read_digitstruct` cache the parsed file.
        workers: processes for parsing an uncached ``digitStruct.mat``.

    Raises:
        DatasetError: no such folder or no annotation file in it.
        train.svhn.SVHNFormatError: an annotation file that cannot be read.
    """
    root = Path(root)
    if root.is_file():
        annotation = root
    elif root.is_dir():
        candidates = [root / "digitStruct.mat", root / "labels.json"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise DatasetError(
                f"{root}: has neither digitStruct.mat nor labels.json; expected an SVHN split folder "
                "(e.g. the train/ folder of train.tar.gz)"
            )
        annotation = found[0]
    else:
        raise DatasetError(f"{root}: no such file or folder; expected an SVHN split folder")
    if annotation.suffix.lower() == ".json":
        records = read_labels_json(annotation)
    else:
        records = read_digitstruct(annotation, cache=cache, workers=workers)
    return Split(records, annotation.parent, annotation)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray | None, str | None]:
    """Read an image file as ``(H, W, 3)`` uint8 BGR, at full size, decoded exactly as the
    recognizer decodes it (:func:`recognizer.io.imageio.load_image`).

    Returns:
        ``(image, None)``, or ``(None, "missing")`` / ``(None, "unreadable image")``.
    """
    from recognizer.io.imageio import ImageReadError, load_image

    try:
        image, _ = load_image(path, max_side=None)  # never downscaled: boxes are in the file's pixels
    except ImageReadError as exc:
        return None, "missing" if exc.missing else "unreadable image"
    return image, None


def image_number(name: str) -> int | None:
    """The number of an SVHN image name (``"train/129.png"`` -> 129); None when it has none."""
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else None


def select_indices(records: Sequence[SVHNImage], indices: Iterable[int] | None, names: Iterable[str] | None, where: Path) -> list[int]:
    """Positions in ``records`` chosen by ``indices`` and/or ``names`` (all when both are None)."""
    chosen = list(range(len(records)))
    if indices is not None:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(records)]
        if bad:
            raise DatasetError(f"{where}: image index {bad[0]} out of range; expected 0..{len(records) - 1}")
        chosen = idx
    if names is not None:
        by_name: dict[str, int] = {}
        for i, r in enumerate(records):
            by_name.setdefault(r.name, i)
            by_name.setdefault(Path(r.name).name, i)
        wanted = list(names)
        missing = [n for n in wanted if n not in by_name]
        if missing:
            example = f" (names look like {records[0].name!r})" if records else ""
            raise DatasetError(f"{where}: image {missing[0]!r} is not in the annotations{example}")
        allowed = set(chosen)
        chosen = [by_name[n] for n in wanted if by_name[n] in allowed]
    return chosen


# --------------------------------------------------------------------------- crops


def _digit_folders(root: Path) -> list[tuple[int, Path]]:
    return [(d, root / str(d)) for d in range(10) if (root / str(d)).is_dir()]


class CropDataset(Dataset):
    """32x32 digit crops and their digits, for the classifier.

    Items are ``(crop, label)``: ``crop`` a ``(3, 32, 32)`` float32 tensor normalised by
    :func:`recognizer.models.preprocess.crops_to_tensor` (after the optional ``augment`` on the
    uint8 crop), ``label`` an int 0..9, or 10 (``NOT_DIGIT_CLASS``) for a crop that is not a
    digit (label -1 in crop files; see :mod:`recognizer.models.labels`).

    Attributes:
        images: ``(N, 32, 32, 3)`` uint8 RGB.
        labels: ``(N,)`` int64 digits 0..9, or -1 for "not a digit".
        source_image: ``(N,)`` int64 SVHN image number each crop came from (-1 unknown), or
            None when the source does not say.
        skipped: ``(file, reason)`` of inputs left out.
        augment: optional callable on ``(32, 32, 3)`` uint8 RGB crops.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        augment: CropAugment | None = None,
        source_image: np.ndarray | None = None,
        skipped: Sequence[tuple[str, str]] = (),
        description: str = "crops",
    ) -> None:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
            raise DatasetError(f"{description}: images have shape {images.shape} dtype {images.dtype}; expected (N, 32, 32, 3) uint8")
        try:
            classes = crop_labels_to_classes(np.asarray(labels))
            labels = np.where(classes == NOT_DIGIT_CLASS, NOT_DIGIT_LABEL, classes).astype(np.int64)
        except ValueError as exc:
            raise DatasetError(f"{description}: {exc}") from None
        if len(labels) != len(images):
            raise DatasetError(f"{description}: {len(images)} crops but {len(labels)} labels; expected one per crop")
        if source_image is not None:
            source_image = np.asarray(source_image, dtype=np.int64).reshape(-1)
            if len(source_image) != len(images):
                raise DatasetError(f"{description}: source_image has {len(source_image)} entries for {len(images)} crops")
        self.images = images
        self.labels = labels
        self.source_image = source_image
        self.augment = augment
        self.skipped = list(skipped)
        self.description = description

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        crop = self.images[index]
        if self.augment is not None:
            crop = np.asarray(self.augment(crop))
            if crop.shape != (32, 32, 3) or crop.dtype != np.uint8:
                raise ValueError(f"augment returned {crop.shape} {crop.dtype}; expected (32, 32, 3) uint8")
        label = int(self.labels[index])
        return crops_to_tensor(crop[None])[0], NOT_DIGIT_CLASS if label == NOT_DIGIT_LABEL else label

    @property
    def classes(self) -> np.ndarray:
        """``(N,)`` int64 classifier classes: :attr:`labels` with -1 as ``NOT_DIGIT_CLASS`` (10)."""
        return np.where(self.labels == NOT_DIGIT_LABEL, NOT_DIGIT_CLASS, self.labels).astype(np.int64)

    def subset(self, indices: Sequence[int] | np.ndarray) -> CropDataset:
        """A new dataset of the crops at ``indices`` (or a boolean mask)."""
        idx = np.asarray(indices)
        if idx.dtype == bool and len(idx) != len(self):
            raise DatasetError(f"{self.description}: mask of {len(idx)} for {len(self)} crops")
        src = None if self.source_image is None else self.source_image[idx]
        return CropDataset(self.images[idx], self.labels[idx], augment=self.augment, source_image=src,
                           description=self.description)

    @classmethod
    def concat(cls, *datasets: CropDataset, augment: CropAugment | None = None) -> CropDataset:
        """All crops of ``datasets`` in order (``source_image`` kept only when all have it)."""
        if not datasets:
            raise DatasetError("concat: no crop datasets given")
        sources = [d.source_image for d in datasets]
        src = None if any(s is None for s in sources) else np.concatenate(sources)  # type: ignore[arg-type]
        return cls(
            np.concatenate([d.images for d in datasets]),
            np.concatenate([d.labels for d in datasets]),
            augment=augment if augment is not None else datasets[0].augment,
            source_image=src,
            skipped=[s for d in datasets for s in d.skipped],
            description=" + ".join(d.description for d in datasets),
        )

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_folder(cls, root: str | os.PathLike, *, augment: CropAugment | None = None) -> CropDataset:
        """Crops laid out as ``root/<digit>/*.png`` (``SVHN_crops/train`` of ``train.prepare``).

        Images that are not 32x32 are resized by :func:`recognizer.models.preprocess.crop_digits`;
        unreadable files are skipped (logged, in :attr:`skipped`).

        Raises:
            DatasetError: no digit folders, or no readable crop in them.
        """
        root = Path(root)
        folders = _digit_folders(root)
        if not folders:
            splits = [p.name for p in sorted(root.iterdir()) if p.is_dir() and _digit_folders(p)] if root.is_dir() else []
            hint = f"; did you mean {root / splits[0]}?" if splits else ""
            raise DatasetError(f"{root}: no digit folders 0..9; expected {root}/<digit>/*.png{hint}")
        images: list[np.ndarray] = []
        labels: list[int] = []
        sources: list[int] = []
        skipped: list[tuple[str, str]] = []
        for digit, folder in folders:
            for file in sorted(folder.iterdir()):
                if file.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
                    continue
                image, reason = read_image(file)
                if image is None:
                    skipped.append((str(file), str(reason)))
                    continue
                h, w = image.shape[:2]
                # crop_digits on the whole image: the project's one BGR->RGB and resize path.
                images.append(crop_digits(image, np.array([[0, 0, w, h]], np.float32), square=False)[0])
                labels.append(digit)
                stem = file.stem.split("_")[0]
                sources.append(int(stem) if stem.isdigit() else -1)
        if skipped:
            log.warning("%s: skipped %d unreadable crop files (first: %s)", root, len(skipped), skipped[0][0])
        if not images:
            raise DatasetError(f"{root}: no readable crop images in its digit folders")
        return cls(np.stack(images), np.asarray(labels), augment=augment, source_image=np.asarray(sources),
                   skipped=skipped, description=str(root))

    @classmethod
    def from_mat(cls, path: str | os.PathLike, *, augment: CropAugment | None = None) -> CropDataset:
        """SVHN's format-2 file (``train_32x32.mat``); raw label 10 becomes 0."""
        X, digits = read_32x32_mat(path)
        if len(X) == 0:
            raise DatasetError(f"{path}: holds no crops")
        return cls(X, digits, augment=augment, description=str(path))

    @classmethod
    def from_npz(
        cls, path: str | os.PathLike, *, indices: Sequence[int] | np.ndarray | None = None, augment: CropAugment | None = None
    ) -> CropDataset:
        """An ``.npz`` with ``X`` ``(N, 32, 32, 3)`` uint8 RGB and ``y`` ``(N,)`` digits (10 allowed;
        -1 marks a crop that is not a digit),
        optionally ``source_image`` (as ``data/svhn_real/crops/train_crops_1083.npz``).

        Args:
            path: the file.
            indices: keep only these crops (positions or a boolean mask).
            augment: optional crop augmentation.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "X" not in z or "y" not in z:
                    raise DatasetError(f"{path}: arrays {sorted(z.files)}; expected X (N, 32, 32, 3) and y (N,)")
                X, y = z["X"], z["y"]
                src = z["source_image"] if "source_image" in z else None
        except DatasetError:
            raise
        except FileNotFoundError:
            raise DatasetError(f"{path}: no such file") from None
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{path}: not a readable .npz ({' '.join(str(exc).split())[:200]})") from None
        ds = cls(X, np.asarray(y).reshape(-1), augment=augment, source_image=src, description=str(path))
        if indices is not None:
            ds = ds.subset(indices)
        if len(ds) == 0:
            raise DatasetError(f"{path}: no crops selected")
        return ds

    @classmethod
    def from_svhn_dir(
        cls,
        root: str | os.PathLike,
        *,
        pad: float = 0.0,
        indices: Iterable[int] | None = None,
        names: Iterable[str] | None = None,
        augment: CropAugment | None = None,
    ) -> CropDataset:
        """Crop every digit of an SVHN-format folder with :func:`recognizer.models.preprocess.crop_digits`.

        Args:
            root: folder with ``digitStruct.mat`` or ``labels.json`` + images (or the file).
            pad: margin fraction around the square digit window (0 = SVHN's 32x32 framing).
            indices: use only these positions of the annotation file.
            names: use only these images.
            augment: optional crop augmentation.

        Raises:
            DatasetError: empty split, or no readable image.
        """
        split = load_split(root)
        where = split.annotation_file
        if not split.records:
            raise DatasetError(f"{where}: the split lists no images")
        chosen = select_indices(split.records, indices, names, where)
        crops: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        sources: list[np.ndarray] = []
        skipped: list[tuple[str, str]] = []
        for i in chosen:
            record = split.records[i]
            if len(record) == 0:
                continue
            image, reason = read_image(split.image_root / record.name)
            if image is None:
                skipped.append((record.name, str(reason)))
                continue
            crops.append(crop_digits(image, record.xyxy, pad=pad))
            labels.append(record.digits)
            number = image_number(record.name)
            sources.append(np.full(len(record), -1 if number is None else number, dtype=np.int64))
        if skipped:
            log.warning("%s: skipped %d images (first: %s, %s)", where, len(skipped), *skipped[0])
        if not crops:
            raise DatasetError(f"{where}: no digit could be cropped from {len(chosen)} selected images")
        return cls(np.concatenate(crops), np.concatenate(labels), augment=augment,
                   source_image=np.concatenate(sources), skipped=skipped, description=str(where))


def open_crops(spec: str | os.PathLike, *, pad: float = 0.0, augment: CropAugment | None = None) -> CropDataset:
    """Open classifier crops from whatever ``spec`` names.

    * a folder with digit folders ``0``..``9`` (``SVHN_crops/train``) -> :meth:`CropDataset.from_folder`
    * a folder with ``digitStruct.mat`` / ``labels.json``, or that file -> :meth:`CropDataset.from_svhn_dir`
    * a ``*.mat`` file (``train_32x32.mat``) -> :meth:`CropDataset.from_mat`
    * a ``*.npz`` file with ``X`` and ``y`` -> :meth:`CropDataset.from_npz`

    Raises:
        DatasetError: ``spec`` is none of these (the message lists what would work).
        train.svhn.SVHNFormatError: a file of the right kind that cannot be read.
    """
    path = Path(spec)
    expected = (
        "expected a folder of crops (<digit>/*.png), an SVHN folder (digitStruct.mat or labels.json + images), "
        "a 32x32 .mat file or an .npz with X and y"
    )
    if path.is_dir():
        if (path / "digitStruct.mat").is_file() or (path / "labels.json").is_file():
            return CropDataset.from_svhn_dir(path, pad=pad, augment=augment)
        if _digit_folders(path):
            return CropDataset.from_folder(path, augment=augment)
        splits = [p.name for p in sorted(path.iterdir()) if p.is_dir() and _digit_folders(p)]
        hint = f" (did you mean {path / splits[0]}?)" if splits else ""
        raise DatasetError(f"{path}: a folder without digit folders or annotations{hint}; {expected}")
    if path.is_file():
        suffix = path.suffix.lower()
        if path.name == "digitStruct.mat" or suffix == ".json":
            return CropDataset.from_svhn_dir(path, pad=pad, augment=augment)
        if suffix == ".mat":
            return CropDataset.from_mat(path, augment=augment)
        if suffix == ".npz":
            return CropDataset.from_npz(path, augment=augment)
        raise DatasetError(f"{path}: unknown kind of file; {expected}")
    raise DatasetError(f"{path}: no such file or folder; {expected}")
