"""recognizer: real-time house-number recognition (Faster R-CNN digit detector + SmallCNN reader)."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
