"""The engine and ``train.tune`` keep the same detections: one rule, :func:`recognizer.models.engine.keep_digits`."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from recognizer.models.engine import Recognizer, RecognizerConfig, keep_digits

BOX = [10.0, 10.0, 30.0, 40.0]

# (digit probability, "not a digit" probability, min_digit_score, not_digit_thresh, kept)
CASES = [
    (0.9, 0.0, 0.0, 0.5, True),    # a 10-class classifier gives 0: never dropped as "not a digit"
    (0.9, 0.0, 0.0, 0.0, True),    # ... even at a threshold of 0
    (0.9, 0.49, 0.0, 0.5, True),   # below the "not a digit" threshold
    (0.9, 0.5, 0.0, 0.5, False),   # at it: dropped
    (0.9, 0.7, 0.0, 1.0, True),    # 1.0 keeps every detection
    (0.9, 1.0, 0.0, 1.0, False),   # ... unless the classifier is certain
    (0.4, 0.0, 0.5, 0.5, False),   # below min_digit_score
    (0.5, 0.0, 0.5, 0.5, True),    # at it: kept
    (0.3, 0.2, 0.0, 0.5, True),    # min_digit_score 0 keeps unsure digits
    (0.4, 0.6, 0.5, 0.5, False),   # both rules drop it
]


@pytest.mark.parametrize("prob, nd, min_score, nd_thresh, kept", CASES)
def test_keep_digits_table(prob, nd, min_score, nd_thresh, kept) -> None:
    mask = keep_digits(np.array([prob], np.float32), np.array([nd], np.float32),
                       min_digit_score=min_score, not_digit_thresh=nd_thresh)
    assert mask.dtype == bool and mask.tolist() == [kept]


class _Unused(nn.Module):
    def forward(self, x):  # pragma: no cover - detect and classify_full are replaced
        raise AssertionError("not called")


def _engine_keeps(prob: float, nd: float, min_score: float, nd_thresh: float) -> bool:
    rec = Recognizer(_Unused(), _Unused(), device="cpu",
                     config=RecognizerConfig(det_score_thresh=0.3, min_digit_score=min_score, not_digit_thresh=nd_thresh))
    rec.detect = lambda images: [(np.array([BOX], np.float32), np.array([0.9], np.float32)) for _ in images]
    rec.classify_full = lambda crops: (np.full(len(crops), 7, np.int64), np.full(len(crops), prob, np.float32),
                                       np.full(len(crops), nd, np.float32))
    readings = rec.recognize([np.zeros((60, 60, 3), np.uint8)])[0]
    assert [r.text for r in readings] in ([], ["7"])
    return bool(readings)


def _tune_keeps(prob: float, nd: float, min_score: float, nd_thresh: float) -> bool:
    from train.tune import grid_scores

    cached = [{"truth": "7", "gt": np.array([BOX], np.float64), "boxes": np.array([BOX], np.float32),
               "scores": np.array([0.9], np.float32), "digits": np.array([7], np.int64),
               "probs": np.array([prob], np.float32), "not_digit": np.array([nd], np.float32)}]
    (row,) = grid_scores(cached, [0.3], [nd_thresh], min_digit_score=min_score)
    return row["correct"] == 1


@pytest.mark.parametrize("prob, nd, min_score, nd_thresh, kept", CASES)
def test_engine_and_tune_replay_agree(prob, nd, min_score, nd_thresh, kept) -> None:
    assert _engine_keeps(prob, nd, min_score, nd_thresh) == _tune_keeps(prob, nd, min_score, nd_thresh) == kept


def test_tune_default_min_digit_score_keeps_unsure_digits() -> None:
    # grid_scores without min_digit_score replays as before: every digit probability passes.
    from train.tune import grid_scores

    cached = [{"truth": "7", "gt": np.array([BOX], np.float64), "boxes": np.array([BOX], np.float32),
               "scores": np.array([0.9], np.float32), "digits": np.array([7], np.int64),
               "probs": np.array([0.01], np.float32), "not_digit": np.array([0.0], np.float32)}]
    (row,) = grid_scores(cached, [0.3], [0.5])
    assert row["correct"] == 1
