"""Where the shipped weights live, and a clear error when they are missing."""
from __future__ import annotations

import os
import sys
from pathlib import Path

WEIGHT_FILES = {"classifier": "classifier.pt", "detector": "detector_light.pt"}
ENV_DIR = "RECOGNIZER_WEIGHTS"


class WeightsNotFoundError(FileNotFoundError):
    """No weights file could be found; the message says how to get or train one."""


def weight_dirs() -> list[Path]:
    """Folders searched for shipped weights, in order.

    ``$RECOGNIZER_WEIGHTS``, the checkout's ``weights/`` (editable installs and source runs),
    then ``<prefix>/share/recognizer/weights`` (where a regular ``pip install`` puts them).
    """
    dirs: list[Path] = []
    env = os.environ.get(ENV_DIR)
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parent.parent / "weights")
    dirs.append(Path(sys.prefix) / "share" / "recognizer" / "weights")
    return dirs


def default_weight_path(kind: str) -> Path:
    """The first existing shipped file for ``kind`` ("classifier" or "detector").

    Raises:
        WeightsNotFoundError: none of :func:`weight_dirs` holds it.
    """
    if kind not in WEIGHT_FILES:
        raise ValueError(f"unknown weights kind {kind!r}; expected one of {', '.join(WEIGHT_FILES)}")
    name = WEIGHT_FILES[kind]
    searched = weight_dirs()
    for folder in searched:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    recipe = "python -m train.classifier" if kind == "classifier" else "python -m train.detector"
    raise WeightsNotFoundError(
        f"no {kind} weights: {name} is not in {', '.join(str(d) for d in searched)}; "
        f"pass --{kind} PATH, set {ENV_DIR}=DIR, reinstall from a checkout that has weights/, "
        f"or train your own with '{recipe}' (README: Train on SVHN)"
    )


def resolve_weights(path: str | os.PathLike[str] | None, kind: str) -> Path:
    """``path`` if given (it must exist), else the shipped default for ``kind``."""
    if path is None:
        return default_weight_path(kind)
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError(f"{kind} weights file {str(p)!r} does not exist; pass an existing .pt checkpoint")
    return p
