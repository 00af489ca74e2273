"""Deterministic, parallel generation of many synthetic samples.

Image ``i`` of seed ``s`` is rendered from ``numpy.random.default_rng([s, i])`` alone, so the
result does not depend on how indices are spread over worker processes.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from recognizer.synth.glyphs import find_fonts, font_families
from recognizer.synth.scene import SynthConfig, SynthSample, render_sample

log = logging.getLogger(__name__)


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of image ``index`` under base ``seed`` (both non-negative ints)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed {seed} and index {index} must be >= 0")
    return np.random.default_rng([int(seed), int(index)])


@dataclass
class Generator:
    """Renders samples of one seed.

    Attributes:
        seed: base seed.
        config: generator settings.
        fonts: font files to use; ``None`` finds the system's fonts (:func:`find_fonts`).
    """

    seed: int = 0
    config: SynthConfig | None = None
    fonts: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.fonts is None:
            self.fonts = find_fonts()
        self._families = font_families(list(self.fonts))
        if not self._families:
            log.warning("no font files found; using Hershey, seven-segment and stroke digits only")

    @property
    def families(self) -> list[tuple[str, ...]]:
        """The font families in use (see :func:`recognizer.synth.glyphs.font_families`)."""
        return self._families

    def sample(self, index: int) -> SynthSample:
        """Render image ``index`` (same ``seed``, ``index``, config and fonts -> same pixels)."""
        return render_sample(sample_rng(self.seed, index), self._families, self.config)


_WORKER: Any = None


def _init_worker(make: Callable[..., Any], seed: int, config: Any, fonts: Sequence[str]) -> None:
    global _WORKER
    cv2.setNumThreads(1)
    _WORKER = make(seed, config, list(fonts))


def _render_chunk(indices: Sequence[int]) -> list[tuple[int, Any]]:
    assert _WORKER is not None
    return [(i, _WORKER.sample(i)) for i in indices]


def generate_with(
    make: Callable[..., Any],
    n: int,
    seed: int = 0,
    *,
    start: int = 0,
    workers: int | None = None,
    config: Any = None,
    fonts: Sequence[str] | None = None,
    chunk: int = 32,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, make(seed, config, fonts).sample(index))`` for indices ``start .. start +
    n - 1``, in order, rendered in ``workers`` processes (the same pixels whatever ``workers``
    is). ``make`` is a generator class (:class:`Generator`, :class:`recognizer.synth.plates.PlateGenerator`)."""
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    fonts = list(find_fonts() if fonts is None else fonts)
    workers = max(1, int(workers if workers is not None else (os.cpu_count() or 1)))
    indices = list(range(start, start + n))
    if workers == 1 or n <= chunk:
        gen = make(seed, config, fonts)
        for i in indices:
            yield i, gen.sample(i)
        return
    chunks = [indices[k : k + chunk] for k in range(0, n, chunk)]
    # spawn, not fork: a forked child of a process whose OpenCV (or torch) thread pool is
    # already running can deadlock in its first parallel cv2 call.
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(make, seed, config, fonts)) as pool:
        for part in pool.imap(_render_chunk, chunks):
            yield from part


def generate(
    n: int,
    seed: int = 0,
    *,
    start: int = 0,
    workers: int | None = None,
    config: SynthConfig | None = None,
    fonts: Sequence[str] | None = None,
    chunk: int = 32,
) -> Iterator[tuple[int, SynthSample]]:
    """Yield ``(index, sample)`` for indices ``start .. start + n - 1``, in order.

    Args:
        n: number of images.
        seed: base seed.
        start: first index.
        workers: processes (default: the machine's CPU count; 1 renders in this process).
        config: generator settings.
        fonts: font files (default: :func:`find_fonts`).
        chunk: indices per task sent to a worker.
    """
    yield from generate_with(Generator, n, seed, start=start, workers=workers, config=config, fonts=fonts, chunk=chunk)
