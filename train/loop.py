"""The skeleton both training recipes share: resume, the epoch loop's bounds, best-by-validation
and the checkpoints.

``train/classifier.py`` and ``train/detector.py`` each train one epoch and validate in their
own way; around that, both

* resume from ``--resume``'s ``last.pt`` (:func:`resume`: optimizer, scheduler and scaler
  state, epochs and steps done, the best metric and its epoch, the wall time so far);
* run the epochs still to do, stopping early at ``--max-steps`` (:func:`epochs`);
* keep the best validation metric (:meth:`RunProgress.end_epoch`, higher is better);
* write ``OUT/last.pt`` after every epoch and ``OUT/best.pt`` whenever the metric improved, and
  reload ``best.pt`` at the end (:class:`Checkpoints`).

A training checkpoint is an ordinary ``recognizer.models`` checkpoint (it rebuilds its own
model) whose ``extra`` dict carries what resuming needs: ``epoch`` (epochs completed),
``step`` (optimizer steps taken), ``best_metric``, and the optimizer, scheduler and AMP scaler
state dicts.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from train.common import TrainingError, UsageError, load_model_checkpoint, recognizer_models


class Stopwatch:
    """Wall time since creation, in seconds (for checkpoint metadata)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


# --------------------------------------------------------------------------- checkpoint files


def save_training_checkpoint(
    path: Path,
    model: torch.nn.Module,
    *,
    metadata: dict[str, Any],
    epoch: int,
    step: int,
    best_metric: float | None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write a self-describing checkpoint with resume state, atomically.

    Args:
        path: destination file.
        model: the bare model (unwrap DDP first).
        metadata: JSON-able training facts (data specs, epochs, metrics, command line).
        epoch: epochs completed.
        step: optimizer steps taken.
        best_metric: best validation metric so far (None before any validation).
        optimizer, scheduler, scaler: their state dicts are stored for ``--resume``.
    """
    models = recognizer_models()
    extra: dict[str, Any] = {"epoch": int(epoch), "step": int(step)}
    extra["best_metric"] = None if best_metric is None else float(best_metric)
    if optimizer is not None:
        extra["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        extra["scheduler"] = scheduler.state_dict()
    if scaler is not None and scaler.is_enabled():
        extra["scaler"] = scaler.state_dict()
    # save_checkpoint writes a temporary file and renames it: an interrupted save never
    # destroys the previous last.pt/best.pt.
    return Path(models.save_checkpoint(path, model, metadata=metadata, extra=extra))


def restore_training_state(
    extra: dict[str, Any],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    source: str = "checkpoint",
) -> tuple[int, int, float | None]:
    """Load optimizer/scheduler/scaler state saved by :func:`save_training_checkpoint`.

    Returns:
        ``(epochs_completed, steps_taken, best_metric)``.

    Raises:
        UsageError: when the checkpoint lacks resume state (a shipped weights file, say).
    """
    extra = dict(extra or {})
    if "epoch" not in extra or (optimizer is not None and "optimizer" not in extra):
        raise UsageError(
            f"--resume {source}: the file has no training state (epoch/optimizer); "
            "use --init to start from its weights instead"
        )
    if optimizer is not None:
        try:
            optimizer.load_state_dict(extra["optimizer"])
        except (ValueError, KeyError) as exc:
            raise UsageError(f"--resume {source}: optimizer state does not match this run: {exc}") from exc
    if scheduler is not None and extra.get("scheduler") is not None:
        scheduler.load_state_dict(extra["scheduler"])
    if scaler is not None and scaler.is_enabled() and extra.get("scaler") is not None:
        scaler.load_state_dict(extra["scaler"])
    best = extra.get("best_metric")
    return int(extra["epoch"]), int(extra.get("step", 0)), None if best is None else float(best)


# --------------------------------------------------------------------------- the run


@dataclass
class RunProgress:
    """Where a training run stands (what its checkpoints record).

    Attributes:
        epoch: epochs completed.
        step: optimizer steps taken.
        best: best validation metric so far (higher is better), None before any.
        best_epoch: the epoch (1-based) that reached ``best``.
        previous_wall: wall time of the runs this one resumes, in seconds.
    """

    epoch: int = 0
    step: int = 0
    best: float | None = None
    best_epoch: int | None = None
    previous_wall: float = 0.0

    def end_epoch(self, epoch_done: int, score: float) -> bool:
        """Record a finished epoch and its validation ``score``; True when it is the best so far."""
        self.epoch = epoch_done
        improved = self.best is None or score > self.best
        if improved:
            self.best, self.best_epoch = score, epoch_done
        return improved

    def wall_time(self, clock: Stopwatch) -> float:
        """Seconds of training in all, this run and the ones it resumes (rounded to 0.1)."""
        return round(self.previous_wall + clock.elapsed(), 1)


def resume(
    ckpt: Any, *, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler, source: str
) -> RunProgress:
    """The progress of a run resumed from ``ckpt`` (a ``last.pt`` loaded by ``load_model_checkpoint``),
    loading its optimizer, scheduler and scaler state; a fresh start when ``ckpt`` is None.

    Raises:
        UsageError: ``ckpt`` has no training state (see :func:`restore_training_state`).
    """
    if ckpt is None:
        return RunProgress()
    epoch, step, best = restore_training_state(
        ckpt.extra, optimizer=optimizer, scheduler=scheduler, scaler=scaler, source=source
    )
    return RunProgress(
        epoch=epoch, step=step, best=best, best_epoch=ckpt.metadata.get("best_epoch"),
        previous_wall=float(ckpt.metadata.get("wall_time_s", 0.0) or 0.0),
    )


def epochs(progress: RunProgress, total: int, max_steps: int | None) -> Iterator[int]:
    """The 0-based epochs still to run, up to ``total``; stops once ``progress.step`` reaches
    ``max_steps`` (checked before each epoch)."""
    for epoch in range(progress.epoch, total):
        if max_steps is not None and progress.step >= max_steps:
            break
        yield epoch


class Checkpoints:
    """``OUT/last.pt`` after every epoch, ``OUT/best.pt`` when the validation metric improved.

    Args:
        out: the run's folder.
        optimizer, scheduler, scaler: their state goes into every file, for ``--resume``.
    """

    def __init__(self, out: Path, *, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler) -> None:
        self.out = Path(out)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"

    def save(self, model: torch.nn.Module, progress: RunProgress, metadata: dict[str, Any], *, improved: bool) -> None:
        """Write ``last.pt`` (and ``best.pt`` when ``improved``) of the bare ``model`` at ``progress``."""
        state = {"epoch": progress.epoch, "step": progress.step, "best_metric": progress.best,
                 "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}
        save_training_checkpoint(self.out / "last.pt", model, metadata=metadata, **state)
        if improved:
            save_training_checkpoint(self.best_path, model, metadata=metadata, **state)

    def load_best(self, kind: str) -> Any:
        """The ``best.pt`` written by this run, loaded (``recognizer.models.Checkpoint``).

        Raises:
            TrainingError: no epoch finished, so there is none.
        """
        if not self.best_path.is_file():
            raise TrainingError(
                f"no epoch finished, so {self.best_path} was never written; raise --epochs or --max-steps"
            )
        return load_model_checkpoint(self.best_path, kind, "best checkpoint")
