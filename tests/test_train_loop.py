"""train.loop: the resume state, epoch bounds, best-by-validation and checkpoint files the two
training recipes share."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train.common import TrainingError, UsageError, load_model_checkpoint
from train.loop import Checkpoints, RunProgress, Stopwatch, epochs, resume


def _parts() -> tuple[torch.nn.Module, torch.optim.Optimizer, object, torch.amp.GradScaler]:
    from recognizer.models import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(channels=(4, 8, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max")
    return model, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=False)


def test_end_epoch_keeps_the_best_and_its_epoch() -> None:
    run = RunProgress()
    assert run.end_epoch(1, 0.5) and (run.epoch, run.best, run.best_epoch) == (1, 0.5, 1)
    assert not run.end_epoch(2, 0.4) and (run.epoch, run.best, run.best_epoch) == (2, 0.5, 1)
    assert not run.end_epoch(3, 0.5)  # only a higher score is better
    assert run.end_epoch(4, 0.7) and (run.best, run.best_epoch) == (0.7, 4)


def test_epochs_continue_from_the_progress_and_stop_at_max_steps() -> None:
    assert list(epochs(RunProgress(), 3, None)) == [0, 1, 2]
    assert list(epochs(RunProgress(epoch=2), 5, None)) == [2, 3, 4]
    run = RunProgress()
    seen = []
    for epoch in epochs(run, 10, max_steps=5):
        seen.append(epoch)
        run.step += 2  # two steps per epoch: the limit is checked before each epoch
    assert seen == [0, 1, 2] and run.step == 6
    assert list(epochs(RunProgress(step=5), 10, max_steps=5)) == []


def test_wall_time_adds_the_resumed_runs() -> None:
    assert RunProgress(previous_wall=12.0).wall_time(Stopwatch()) == pytest.approx(12.0, abs=0.1)


def test_checkpoints_write_last_always_best_when_improved_and_resume_reads_them(tmp_path: Path) -> None:
    model, optimizer, scheduler, scaler = _parts()
    checkpoints = Checkpoints(tmp_path, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
    with pytest.raises(TrainingError, match="never written"):
        checkpoints.load_best("classifier")
    run = RunProgress(step=4)
    checkpoints.save(model, run, {"epochs": 1, "best_epoch": None, "wall_time_s": 3.5}, improved=run.end_epoch(1, 0.25))
    run.step = 8
    checkpoints.save(model, run, {"epochs": 2, "best_epoch": 1, "wall_time_s": 7.0}, improved=run.end_epoch(2, 0.1))
    last = load_model_checkpoint(tmp_path / "last.pt", "classifier", "--resume")
    best = checkpoints.load_best("classifier")
    assert list(last.extra) == ["epoch", "step", "best_metric", "optimizer", "scheduler"]  # no state of a disabled scaler
    assert (last.extra["epoch"], last.extra["step"], last.extra["best_metric"]) == (2, 8, 0.25)
    assert (best.extra["epoch"], best.extra["step"], best.metadata["epochs"]) == (1, 4, 1)

    model2, optimizer2, scheduler2, scaler2 = _parts()
    resumed = resume(last, optimizer=optimizer2, scheduler=scheduler2, scaler=scaler2, source="last.pt")
    assert resumed == RunProgress(epoch=2, step=8, best=0.25, best_epoch=1, previous_wall=7.0)
    assert resume(None, optimizer=optimizer2, scheduler=scheduler2, scaler=scaler2, source="x") == RunProgress()


def test_resume_from_a_file_without_training_state_is_a_usage_error(tmp_path: Path) -> None:
    from recognizer.models import save_checkpoint

    model, optimizer, scheduler, scaler = _parts()
    save_checkpoint(tmp_path / "shipped.pt", model, metadata={})
    shipped = load_model_checkpoint(tmp_path / "shipped.pt", "classifier", "--resume")
    with pytest.raises(UsageError, match="use --init"):
        resume(shipped, optimizer=optimizer, scheduler=scheduler, scaler=scaler, source="shipped.pt")
