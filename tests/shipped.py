"""Whether the shipped weights are here, for the tests that run them."""
from __future__ import annotations

import pytest

from recognizer.models.weights import WeightsNotFoundError, resolve_weights


def shipped_weights() -> bool:
    """True when the shipped detector and classifier can be found (``weights/`` or ``RECOGNIZER_WEIGHTS``)."""
    try:
        resolve_weights(None, "detector"), resolve_weights(None, "classifier")
    except WeightsNotFoundError:
        return False
    return True


needs_models = pytest.mark.skipif(not shipped_weights(), reason="shipped weights (weights/*.pt) not present")
