"""Self-describing checkpoints: the file alone rebuilds its model.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``)::

    {"format": "recognizer-checkpoint", "format_version": 1,
     "kind": "classifier" | "detector", "config": {...}, "labels": [...],
     "state_dict": {...}, "metadata": {...}, "extra": {...}, "checksum": "sha256:..."}

``config`` holds the constructor arguments (``SmallCNN(**config)`` or
``build_detector(**config)``; a classifier's include its input normalisation ``input_mean`` and
``input_std``, which files written before they were stored lack: those were all trained with
0.5 and 0.25, and are rebuilt so), ``metadata`` says where the weights came from (data, command,
time, accuracy) and ``extra`` carries training state for resuming (optimizer, epoch, ...).
``checksum`` (written since it was added; older files have none and are not checked) covers
everything but ``extra``: a changed byte in a tensor is refused at load instead of silently
reading wrong digits.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recognizer.models.labels import label_map
from recognizer.models.smallcnn import DEFAULT_INPUT_MEAN, DEFAULT_INPUT_STD, SmallCNN

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
    payload["checksum"] = payload_checksum(payload)
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


def payload_checksum(payload: dict[str, Any]) -> str:
    """``"sha256:HEX"`` of a checkpoint's header, config, labels, metadata and every tensor.

    ``extra`` (training state for resuming) is left out. Tensors are hashed by name, dtype,
    shape and raw bytes, so the value does not depend on how the file was laid out.
    """
    h = hashlib.sha256()
    header = {k: payload.get(k) for k in ("format", "format_version", "kind", "config", "labels", "metadata")}
    try:
        text = json.dumps(header, sort_keys=True, default=repr)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted
        text = repr(header)
    h.update(text.encode("utf-8"))
    state = payload.get("state_dict")
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"\n{name}:{t.dtype}:{tuple(state[name].shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild an untrained model of ``kind`` from its stored ``config``.

    Never downloads: a ``pretrained_backbone`` in the config is ignored (the checkpoint's own
    weights replace the backbone's anyway).
    """
    if kind == "classifier":
        cfg = dict(config)
        if "channels" in cfg:
            cfg["channels"] = tuple(cfg["channels"])
        # Files written before the normalisation was part of the config were trained with these.
        cfg.setdefault("input_mean", DEFAULT_INPUT_MEAN)
        cfg.setdefault("input_std", DEFAULT_INPUT_STD)
        return SmallCNN(**cfg)
    if kind == "detector":
        from recognizer.models.detector import build_detector

        cfg = dict(config)
        cfg["pretrained_backbone"] = False
        return build_detector(**cfg)
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
    if not p.is_file():
        raise CheckpointError(f"{p}: not a recognizer checkpoint (not a regular file: a pipe, socket or device)")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise CheckpointError(f"{p}: cannot be read ({exc.strerror or exc})") from exc
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols of foreign files; the error below says enough.
            warnings.simplefilter("ignore")
            data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways inside torch.load
        raise CheckpointError(_load_failure(p, exc)) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a recognizer checkpoint (no '{FORMAT}' header)")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{p}: checkpoint format version {repr(version)[:40]} is not supported (this recognizer reads 1..{FORMAT_VERSION}); upgrade recognizer"
        )
    for key in ("kind", "config", "state_dict"):
        if key not in data:
            raise CheckpointError(f"{p}: damaged or not a recognizer checkpoint: it is missing '{key}'")
    if not isinstance(data["kind"], str) or data["kind"] not in KINDS:
        raise CheckpointError(f"{p}: unknown checkpoint kind {repr(data['kind'])[:40]}; expected one of {', '.join(KINDS)}")
    if not isinstance(data["config"], dict):
        raise CheckpointError(f"{p}: damaged or not a recognizer checkpoint: its config is not a mapping")
    state = data["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{p}: damaged or not a recognizer checkpoint: its state_dict is not a mapping of names to tensors")
    stored = data.get("checksum")
    if stored is not None and stored != payload_checksum(data):
        raise CheckpointError(
            f"{p}: damaged or not a recognizer checkpoint: its contents do not match the checksum stored when it "
            "was saved (changed bytes, an incomplete copy, or an edited file)"
        )
    return data


def _load_failure(p: Path, exc: BaseException) -> str:
    """One line saying why ``torch.load(weights_only=True)`` refused ``p``."""
    text = str(exc)
    if "Weights only load failed" in text:
        code = re.search(r"GLOBAL ([\w.]+)", text)
        if code:
            # A pickle naming a Python callable: torch's advice to retry with weights_only=False
            # would run it. Say plainly what the file is instead.
            return (
                f"{p}: not a recognizer checkpoint; not loaded because it could run code "
                f"(it calls {code.group(1)}); do not load it with other tools either unless you trust its source"
            )
        detail = "it holds data other than tensors and plain values"
    elif isinstance(exc, EOFError):
        detail = "the file ends early"
    elif isinstance(exc, OSError):
        detail = "the archive is cut short or damaged"
    elif isinstance(exc, RuntimeError) and text.strip():
        # First sentence of the first line: torch's advice after it does not help here.
        detail = text.strip().splitlines()[0].split(". ")[0][:160]
    else:  # KeyError, IndexError, UnicodeDecodeError, ... from unpickling garbage
        detail = f"unreadable data, {type(exc).__name__}"
    return f"{p}: not a recognizer checkpoint: damaged or not a PyTorch checkpoint ({detail})"


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
    except Exception as exc:  # noqa: BLE001 - any value in a damaged config can fail the constructor
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"{p}: damaged or not a recognizer checkpoint: its architecture config cannot be built ({detail})") from exc
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except Exception as exc:  # noqa: BLE001 - RuntimeError for a mismatch, others for a state_dict of the wrong type
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3]) or type(exc).__name__
        raise CheckpointError(f"{p}: damaged or not a recognizer checkpoint: weights do not match the architecture ({detail[:300]})") from exc
    model.eval()
    return Checkpoint(
        path=p,
        model=model,
        kind=data["kind"],
        config=dict(data["config"]),
        metadata=_mapping(data.get("metadata")),
        extra=_mapping(data.get("extra")),
    )


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` as a dict; anything else (a damaged field) as an empty one."""
    return dict(value) if isinstance(value, dict) else {}
