"""The CPU settings of a run: inference workers and torch threads (see BENCHMARKS.md)."""
from __future__ import annotations

import os

__all__ = ["choose_parallelism", "configure_threads", "cpu_cores"]


def configure_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (None leaves torch's default) and keep OpenCV single-threaded.

    The capture and main threads already keep cores busy with decoding, drawing and encoding;
    OpenCV's own worker pool on top of that only adds contention (see BENCHMARKS.md).
    """
    import cv2
    import torch

    cv2.setNumThreads(1)
    if threads is not None:
        torch.set_num_threads(threads)


def cpu_cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def choose_parallelism(device_type: str, workers: int | None, threads: int | None) -> tuple[int, int | None]:
    """Default inference workers and torch threads for a device.

    On the CPU: two workers with ``cores // 2`` torch threads each (measured faster than one
    worker using every core, see BENCHMARKS.md); one worker on a single core. On CUDA: one
    worker, torch's default threads. Values given by the user are kept.

    Returns:
        ``(workers, torch threads or None for torch's default)``.
    """
    if device_type != "cpu":
        return (workers or 1, threads)
    cores = cpu_cores()
    w = workers or (2 if cores >= 2 else 1)
    t = threads or max(cores // w, 1)
    return w, t
