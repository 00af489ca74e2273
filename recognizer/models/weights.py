"""Where the shipped weights live, and a clear error when they are missing."""
from __future__ import annotations

import os
import sys
from pathlib import Path

WEIGHT_FILES = {"classifier": "classifier.pt", "detector": "detector_light.pt"}
ENV_DIR = "RECOGNIZER_WEIGHTS"


class WeightsNotFoundError(FileNotFoundError):
    """No weights file could be found; the message says how to get or train one."""


_CHECKOUT = Path(__file__).resolve().parents[2]
"""The folder holding the ``recognizer`` package: the checkout, for a source run or an editable install."""


def weight_dirs() -> list[Path]:
    """Folders searched for shipped weights, in order.

    The checkout's ``weights/`` (editable installs and source runs), then
    ``<prefix>/share/recognizer/weights`` (where a regular ``pip install`` puts them).
    ``$RECOGNIZER_WEIGHTS``, when set, replaces them (see :func:`default_weight_path`).
    """
    return [
        _CHECKOUT / "weights",
        Path(sys.prefix) / "share" / "recognizer" / "weights",
    ]


def default_weight_path(kind: str) -> Path:
    """The weights file for ``kind`` ("classifier" or "detector") when none is given.

    ``$RECOGNIZER_WEIGHTS=DIR`` must hold it (no silent fall back to the shipped files when
    the variable names a missing or incomplete folder); otherwise the first of
    :func:`weight_dirs` that holds it.

    Raises:
        WeightsNotFoundError: the file is not where it is looked for.
    """
    if kind not in WEIGHT_FILES:
        raise ValueError(f"unknown weights kind {kind!r}; expected one of {', '.join(WEIGHT_FILES)}")
    name = WEIGHT_FILES[kind]
    env = os.environ.get(ENV_DIR)
    if env:
        folder = Path(env)
        if not folder.is_dir():
            raise WeightsNotFoundError(
                f"{ENV_DIR}={env}: no such folder; point it at a folder holding {', '.join(WEIGHT_FILES.values())}, "
                f"or unset it to use the shipped weights"
            )
        if not (folder / name).is_file():
            raise WeightsNotFoundError(
                f"{ENV_DIR}={env}: the folder has no {name}; put it there, pass --{kind} PATH, "
                f"or unset {ENV_DIR} to use the shipped weights"
            )
        return folder / name
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
    if p.exists() and not p.is_file():
        raise WeightsNotFoundError(f"{kind} weights file {str(p)!r} is not a regular file; pass a .pt checkpoint")
    if not p.is_file():
        raise WeightsNotFoundError(f"{kind} weights file {str(p)!r} does not exist; pass an existing .pt checkpoint")
    return p
