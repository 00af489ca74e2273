"""Plumbing shared by the training and evaluation recipes.

Seeding, device choice, distributed setup (torchrun), mixed precision, progress bars, logging,
index-range filters, checkpoint loading and the commands' error handling live here so that
``train/classifier.py`` and ``train/detector.py`` read top to bottom as recipes; the loop
skeleton they share (resume, checkpoint writing, best-by-validation) is :mod:`train.loop`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import shlex
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from recognizer.errors import FailedError, UsageError
from recognizer.errors import run_main as cli_run_main

log = logging.getLogger(__name__)

T = TypeVar("T")


class TrainingError(FailedError):
    """Training cannot go on (a non-finite loss, say): printed as one line, exit code 1."""


# --------------------------------------------------------------------------- seeding, devices


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker init: give each worker's numpy/random generators a distinct seed.

    torch seeds each worker's torch generator itself; numpy and ``random`` are derived from it
    so augmentation differs between workers and epochs but repeats for a fixed ``--seed``.
    """
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)


def choose_device(name: str | None = "auto", local_rank: int | None = None) -> torch.device:
    """Resolve a ``--device`` value with :func:`recognizer.models.engine.choose_device`.

    Args:
        name: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
            or ``"mps"`` (case and surrounding spaces ignored).
        local_rank: under torchrun, the process's GPU index; ``"auto"``/``"cuda"`` then mean
            ``cuda:local_rank`` (else ``cuda:0``: a CUDA device here always has an index).

    Raises:
        UsageError: for an unknown name or a device that is not available.
    """
    from recognizer.models.engine import choose_device as engine_choose_device

    name = (name or "auto").strip().lower()
    try:
        device = engine_choose_device(name)
        if device.type == "cuda" and device.index is None:
            device = engine_choose_device(f"cuda:{local_rank or 0}")
    except ValueError as exc:
        message = str(exc)  # "device 'x' ...": the option's own message
        raise UsageError(f"--{message}" if message.startswith("device ") else f"--device {name!r}: {message}") from exc
    return device


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly one-process) job.

    Attributes:
        rank: global rank, 0 when not distributed.
        world_size: number of processes, 1 when not distributed.
        local_rank: rank on this node (the GPU index under torchrun).
        distributed: True when a process group was initialised.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) logs, draws progress bars and writes files."""
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` without initialising anything."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise UsageError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {exc}") from exc
    return DistInfo(rank=rank, world_size=world, local_rank=local, distributed=world > 1)


def init_distributed(backend: str | None, device_type: str) -> DistInfo:
    """Initialise the process group when launched by torchrun with more than one process.

    Args:
        backend: ``"nccl"``, ``"gloo"`` or None/``"auto"`` (nccl on CUDA, else gloo).
        device_type: ``"cuda"`` or ``"cpu"`` (the device this process trains on).

    Returns:
        The process's :class:`DistInfo` (``distributed`` False for a plain single process).
    """
    info = env_dist_info()
    if not info.distributed:
        return info
    import torch.distributed as dist

    if backend in (None, "", "auto"):
        backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl" and device_type != "cuda":
        raise UsageError("--dist-backend nccl needs CUDA devices; use --dist-backend gloo on CPU")
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        # Rank 0 validates while the others wait at a barrier: allow a long validation.
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=60))
    return info


def cleanup_distributed(info: DistInfo) -> None:
    """Tear down the process group (a no-op for a single process)."""
    if info.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process (a no-op for a single process)."""
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


# --------------------------------------------------------------------------- logging, progress


def setup_logging(verbose: bool = False, rank: int = 0) -> None:
    """Configure root logging for a recipe: INFO on rank 0, WARNING elsewhere."""
    level = logging.DEBUG if verbose else logging.INFO
    if rank != 0:
        level = logging.WARNING
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s"
        if rank
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


def progress(iterable: Iterable[T], *, desc: str, enabled: bool = True, total: int | None = None) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when ``enabled`` (rank 0), else return it as is."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but a bar is never worth a crash
        return iterable
    return tqdm(iterable, desc=desc, total=total, dynamic_ncols=True, leave=False, file=sys.stderr)


def command_line(argv: Sequence[str] | None) -> str:
    """The command that ran, as a shell-quoted string for checkpoint metadata."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join(shlex.quote(a) for a in [prog, *args])


# --------------------------------------------------------------------------- mixed precision


def amp_enabled(requested: str, device: torch.device) -> bool:
    """Resolve ``--amp auto|on|off``: auto means on for CUDA only (CPU autocast is slow)."""
    if requested == "auto":
        return device.type == "cuda"
    if requested == "on":
        if device.type != "cuda":
            raise UsageError(f"--amp on needs a CUDA device, got {device}; use --amp auto or off")
        return True
    if requested == "off":
        return False
    raise UsageError(f"--amp {requested!r} is not valid; expected auto, on or off")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """An autocast context for ``device`` (float16 on CUDA), or a null context when disabled."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16)


def make_grad_scaler(enabled: bool) -> torch.amp.GradScaler:
    """A CUDA GradScaler (disabled scalers pass losses through unchanged)."""
    return torch.amp.GradScaler("cuda", enabled=enabled)


# --------------------------------------------------------------------------- index ranges


def parse_ranges(text: str) -> list[tuple[int, int | None]]:
    """Parse an inclusive index filter such as ``"1-128,257-"`` or ``"129-256"`` or ``"7"``.

    Returns:
        A list of ``(low, high)`` pairs, ``high`` None for an open end.

    Raises:
        UsageError: naming the bad part and the expected form.
    """
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise UsageError(f"index filter {text!r} is empty; expected e.g. 1-128,257-")
    out: list[tuple[int, int | None]] = []
    for part in parts:
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo = int(lo_s) if lo_s.strip() else 0
                hi = int(hi_s) if hi_s.strip() else None
            else:
                lo = hi = int(part)
        except ValueError as exc:
            raise UsageError(
                f"index filter part {part!r} of {text!r} is not a number or range; expected e.g. 1-128,257-"
            ) from exc
        if hi is not None and hi < lo:
            raise UsageError(f"index filter part {part!r} of {text!r} ends before it starts")
        out.append((lo, hi))
    return out


def in_ranges(value: int, ranges: Sequence[tuple[int, int | None]]) -> bool:
    """True when ``value`` falls in any inclusive ``(low, high)`` pair of :func:`parse_ranges`."""
    return any(value >= lo and (hi is None or value <= hi) for lo, hi in ranges)


# --------------------------------------------------------------------------- checkpoints


def recognizer_models() -> Any:
    """Import ``recognizer.models`` lazily, so ``--help`` works even before it exists."""
    try:
        import recognizer.models as models
    except ImportError as exc:  # pragma: no cover - only while the package is incomplete
        raise UsageError(f"recognizer.models is not importable: {exc}") from exc
    return models


def load_model_checkpoint(path: str | Path, kind: str, option: str) -> Any:
    """Load a checkpoint for ``--init``/``--resume``/evaluation, as a one-line UsageError on failure.

    Args:
        path: checkpoint file.
        kind: ``"classifier"`` or ``"detector"``.
        option: the command-line option that named the file (for the message).

    Returns:
        ``recognizer.models.Checkpoint``.
    """
    models = recognizer_models()
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{option} {str(path)!r}: no such file")
    try:
        return models.load_checkpoint(p, kind=kind, map_location="cpu")
    except models.CheckpointError as exc:
        raise UsageError(f"{option}: {exc}") from exc


def run_main(fn: Any, argv: Sequence[str] | None, prog: str) -> int:
    """Call a recipe body through the project's one error-to-exit-status mapping
    (:func:`recognizer.errors.run_main`): UsageError exits 2, TrainingError 1, Ctrl-C 130 (the
    checkpoints already written stay)."""
    return cli_run_main(prog, lambda: fn(argv))


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to a compressed .npz atomically: under a temporary name in the same
    folder, then renamed, so a crash leaves any earlier file of that name as it was."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def chunks(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``seq`` of at most ``size`` items."""
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
