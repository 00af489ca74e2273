"""Shared test fixtures: tiny untrained models saved as real checkpoints, and the CLI options that use them."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Two cores, several test processes: keep torch from oversubscribing them.
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An untrained light detector (small input) and SmallCNN, saved with save_checkpoint."""
    from recognizer.models import SmallCNN, build_detector, save_checkpoint

    folder = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    det = build_detector(arch="light", min_size=128, max_size=160, box_score_thresh=0.0)
    clf = SmallCNN(channels=(8, 16, 32))
    return {
        "detector": save_checkpoint(folder / "detector.pt", det, metadata={"note": "untrained test model"}),
        "classifier": save_checkpoint(folder / "classifier.pt", clf, metadata={"note": "untrained test model"}),
    }


@pytest.fixture
def models(tiny_checkpoints: dict[str, Path]) -> list[str]:
    """The CLI options that run the tiny models on the CPU."""
    return ["--detector", str(tiny_checkpoints["detector"]), "--classifier", str(tiny_checkpoints["classifier"]), "--device", "cpu"]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A real local Ray instance for one test module (skipped without the ``[batch]`` extra)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False, logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
