"""Checks that the heavy dependencies load, turned into one-line errors with the fix."""
from __future__ import annotations

import importlib
from types import ModuleType

FIX = "pip install --force-reinstall torch torchvision  (installs a matching pair from PyPI)"


class DependencyError(RuntimeError):
    """A dependency is missing or broken; the message is one line and says how to fix it."""


def require_torchvision() -> ModuleType:
    """Import torchvision and check its compiled ops (nms) are usable.

    A torchvision built for another torch imports but fails with
    ``operator torchvision::nms does not exist``; we turn that and a missing package into a
    :class:`DependencyError` instead of a traceback.
    """
    try:
        tv = importlib.import_module("torchvision")
        import torch

        if not hasattr(torch.ops.torchvision, "nms"):
            raise RuntimeError("operator torchvision::nms does not exist")
    except ImportError as exc:
        raise DependencyError(f"torchvision is not installed ({exc}); fix: {FIX}") from exc
    except Exception as exc:  # noqa: BLE001 - any failure here means a broken install
        import torch

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DependencyError(
            f"torchvision's compiled ops cannot load with torch {torch.__version__} ({first}); "
            f"torch and torchvision are mismatched; fix: {FIX}"
        ) from exc
    return tv
