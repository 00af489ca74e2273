"""Self-describing checkpoints: the file alone rebuilds its model.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``)::

    {"format": "recognizer-checkpoint", "format_version": 1,
     "kind": "classifier" | "detector", "config": {...}, "labels": [...],
     "state_dict": {...}, "metadata": {...}, "extra": {...}}

``config`` holds the constructor arguments (``SmallCNN(**config)`` or
``build_detector(**config)``), ``metadata`` says where the weights came from (data, command,
time, accuracy) and ``extra`` carries training state for resuming (optimizer, epoch, ...).
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recognizer.labels import label_map
from recognizer.models.smallcnn import SmallCNN

FORMAT = "recognizer-checkpoint"
FORMAT_VERSION = 1
KINDS = ("classifier", "detector")


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (in eval mode) and what the file says about it."""

    path: Path
    model: nn.Module
    kind: str
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def model_kind(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """Return ``(kind, config)`` for a model built by this package."""
    if isinstance(model, SmallCNN):
        return "classifier", dict(model.config)
    config = getattr(model, "recognizer_config", None)
    if isinstance(config, dict):
        return "detector", dict(config)
    raise TypeError(
        f"{type(model).__name__} is not a recognizer model; build it with SmallCNN(...) or build_detector(...)"
    )


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel / DataParallel keep the real model in .module.
    return getattr(model, "module", model)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a self-describing checkpoint, atomically (temp file + rename).

    Args:
        path: destination file.
        model: a ``SmallCNN`` or a model from ``build_detector`` (DDP-wrapped is fine).
        metadata: provenance (plain Python values).
        extra: resumable training state (state dicts, numbers).

    Returns:
        The path written.
    """
    model = _unwrap(model)
    kind, config = model_kind(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config,
        "labels": label_map(int(config.get("num_classes", 10)) if kind == "classifier" else 10)[kind],
        "state_dict": state,
        "metadata": dict(metadata or {}),
        "extra": dict(extra or {}),
    }
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A crash mid-write must not leave a half file under the real name.
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild an untrained model of ``kind`` from its stored ``config``."""
    if kind == "classifier":
        cfg = dict(config)
        if "channels" in cfg:
            cfg["channels"] = tuple(cfg["channels"])
        return SmallCNN(**cfg)
    if kind == "detector":
        from recognizer.models.detector import build_detector

        return build_detector(**config)
    raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {', '.join(KINDS)}")


def read_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate the raw checkpoint dict (no model is built).

    Raises:
        CheckpointError: missing, unreadable, damaged, or not a recognizer checkpoint.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a directory, expected a checkpoint file (.pt)")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: damaged or not a PyTorch checkpoint ({first[:200]})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a recognizer checkpoint (no '{FORMAT}' header)")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{p}: checkpoint format version {version!r} is not supported (this recognizer reads 1..{FORMAT_VERSION}); upgrade recognizer"
        )
    for key in ("kind", "config", "state_dict"):
        if key not in data:
            raise CheckpointError(f"{p}: checkpoint is missing '{key}'")
    if data["kind"] not in KINDS:
        raise CheckpointError(f"{p}: unknown checkpoint kind {data['kind']!r}; expected one of {', '.join(KINDS)}")
    return data


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Load a checkpoint and rebuild its model from the file alone (eval mode).

    Args:
        path: the ``.pt`` file.
        kind: ``"classifier"`` or ``"detector"`` to insist on; None accepts either.
        map_location: where tensors are loaded.

    Raises:
        CheckpointError: the file is missing, damaged, of the wrong kind, or its weights do not
            fit its architecture.
    """
    p = Path(path)
    data = read_checkpoint(p, map_location=map_location)
    if kind is not None and data["kind"] != kind:
        raise CheckpointError(f"{p}: is a {data['kind']} checkpoint, expected a {kind} checkpoint")
    try:
        model = build_model(data["kind"], data["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{p}: its architecture config cannot be built ({exc})") from exc
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise CheckpointError(f"{p}: weights do not match the architecture ({detail[:300]})") from exc
    model.eval()
    return Checkpoint(
        path=p,
        model=model,
        kind=data["kind"],
        config=dict(data["config"]),
        metadata=dict(data.get("metadata") or {}),
        extra=dict(data.get("extra") or {}),
    )
