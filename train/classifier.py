"""Train the SmallCNN digit reader: ``python -m train.classifier``.

Reads top to bottom: arguments, data, model, optimizer, loop, save. Examples::

    # SVHN's 32x32 train file, 5% held out for validation
    python -m train.classifier --train data/svhn/train_32x32.mat --val-split 0.05 --out runs/cls

    # the real sample: train on crops from images 1-128 and 257+, validate on 129-256
    python -m train.classifier --train ../shared/data/svhn_real/crops/train_crops_1083.npz \\
        --npz-source-images 1-128,257- --val ../shared/data/svhn_real/crops/train_crops_1083.npz \\
        --val-npz-source-images 129-256 --init weights/classifier.pt --out runs/cls-ft

A data SPEC is anything ``train.datasets.open_crops`` reads: a folder of crops, a 32x32 .mat
file, an .npz of crops, or an SVHN-format folder (digitStruct.mat or labels.json + images,
cropped with ``recognizer.models.preprocess.crop_digits``).

Writes ``OUT/last.pt`` after every epoch and ``OUT/best.pt`` whenever validation accuracy
improves; at the end ``best.pt`` is reloaded and its held-out accuracy printed.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from recognizer.models.labels import NOT_DIGIT_LABEL, NUM_DIGITS
from train.augment import CROP_PRESETS, WithItemRng, crop_augment
from train.common import (
    TrainingError,
    UsageError,
    amp_enabled,
    autocast,
    choose_device,
    command_line,
    load_model_checkpoint,
    make_grad_scaler,
    progress,
    run_main,
    seed_everything,
    setup_logging,
    worker_init_fn,
)
from train.inputs import load_crops
from train.loop import Checkpoints, Stopwatch, epochs, resume
from train.metrics import confusion_matrix, format_confusion

log = logging.getLogger("train.classifier")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train.classifier",
        description="Train the SmallCNN digit classifier on 32x32 crops.",
        add_help=add_help,
    )
    g = p.add_argument_group("data")
    g.add_argument("--train", nargs="+", required=True, metavar="SPEC",
                   help="training crops: folder, *_32x32.mat, .npz, or SVHN-format folder (several are concatenated)")
    g.add_argument("--val", nargs="+", metavar="SPEC", help="validation crops (default: --val-split of --train)")
    g.add_argument("--val-split", type=float, default=0.1, metavar="FRACTION",
                   help="fraction of --train held out for validation when no --val is given (default 0.1)")
    g.add_argument("--npz-source-images", metavar="RANGES",
                   help="keep only .npz crops of --train whose source_image is in RANGES, e.g. 1-128,257-")
    g.add_argument("--val-npz-source-images", metavar="RANGES",
                   help="keep only .npz crops of --val whose source_image is in RANGES, e.g. 129-256")
    g.add_argument("--augment", choices=sorted(CROP_PRESETS), default="full",
                   help="augmentation profile for training crops (default full)")
    g = p.add_argument_group("model")
    g.add_argument("--channels", type=int, nargs=3, default=(32, 64, 128), metavar=("C1", "C2", "C3"),
                   help="SmallCNN widths (ignored with --init/--resume)")
    g.add_argument("--dropout", type=float, default=0.2, help="dropout before the linear layer")
    g.add_argument("--init", metavar="CKPT", help="start from the weights of this classifier checkpoint (fine-tune)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30, help="epochs in total (a resumed run continues up to this)")
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--label-smoothing", type=float, default=0.0, help="CrossEntropyLoss label smoothing (0..1)")
    g.add_argument("--lr-factor", type=float, default=0.5, help="ReduceLROnPlateau factor")
    g.add_argument("--lr-patience", type=int, default=2, help="epochs without val improvement before reducing")
    g.add_argument("--min-lr", type=float, default=1e-6)
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total (smoke tests)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default="runs/classifier", metavar="DIR", help="writes last.pt and best.pt here")
    g.add_argument("--resume", metavar="CKPT", help="continue a run from its last.pt")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default auto)")
    g.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="mixed precision (auto: on CUDA)")
    g.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    g.add_argument("-v", "--verbose", action="store_true")
    return p


# --------------------------------------------------------------------------- data


def widen_classifier(model: nn.Module, num_classes: int) -> None:
    """Give a trained ``SmallCNN`` more output classes in place, keeping the trained rows.

    The new rows start at zero weight and a bias below every trained logit's typical value,
    so the widened model first predicts what it did before.
    """
    old = model.fc
    new = nn.Linear(old.in_features, num_classes)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.fill_(float(old.bias.min()) - 1.0)
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias
    model.fc = new
    model.config["num_classes"] = int(num_classes)


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ``(train_idx, val_idx)`` with ``round(n * fraction)`` (at least 1) held out."""
    if not 0.0 < fraction < 1.0:
        raise UsageError(f"--val-split {fraction!r} must be between 0 and 1 (exclusive) when no --val is given")
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise UsageError(f"--val-split {fraction} of {n} crops leaves nothing to train on; give --val")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# --------------------------------------------------------------------------- loops


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    use_amp: bool,
    *,
    epoch: int,
    step: int,
    max_steps: int | None,
    show_progress: bool,
) -> tuple[float, float, int]:
    """One pass over ``loader``; returns ``(mean loss, accuracy, steps taken so far)``."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = progress(loader, desc=f"epoch {epoch + 1} train", enabled=show_progress)
    for x, y in bar:
        if max_steps is not None and step >= max_steps:
            break
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with autocast(device, use_amp):
            logits = model(x)
            loss = criterion(logits.float(), y)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at step {step}; lower --lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        step += 1
        n = len(y)
        total_loss += float(loss.item()) * n
        correct += int((logits.argmax(1) == y).sum().item())
        seen += n
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return total_loss / max(seen, 1), correct / max(seen, 1), step


@torch.inference_mode()
def evaluate(
    model: nn.Module, loader: DataLoader, criterion: nn.Module, device: torch.device, use_amp: bool, show_progress: bool
) -> tuple[float, float, np.ndarray]:
    """Returns ``(mean loss, accuracy, predictions (N,) int64)`` over ``loader``."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    preds: list[np.ndarray] = []
    for x, y in progress(loader, desc="validate", enabled=show_progress):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with autocast(device, use_amp):
            logits = model(x)
        total_loss += float(criterion(logits.float(), y).item()) * len(y)
        p = logits.argmax(1)
        correct += int((p == y).sum().item())
        seen += len(y)
        preds.append(p.cpu().numpy())
    acc = correct / seen if seen else float("nan")
    return total_loss / max(seen, 1), acc, np.concatenate(preds) if preds else np.zeros(0, np.int64)


# --------------------------------------------------------------------------- main


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    clock = Stopwatch()
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(args, name)} must be at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError(f"--max-steps {args.max_steps} must be at least 1")
    if not 0.0 <= args.label_smoothing < 1.0:
        raise UsageError(f"--label-smoothing {args.label_smoothing} must be in [0, 1)")
    if args.init and args.resume:
        raise UsageError("--init and --resume both given; --resume already restores the weights")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = choose_device(args.device)
    use_amp = amp_enabled(args.amp, device)
    out = Path(args.out)

    # ---- data
    train_ds = load_crops(args.train, args.npz_source_images, "--train")
    if args.val:
        val_ds = load_crops(args.val, args.val_npz_source_images, "--val")
        val_desc: Any = list(args.val)
    else:
        tr, va = split_holdout(len(train_ds), args.val_split, args.seed)
        train_ds, val_ds = train_ds.subset(tr), train_ds.subset(va)
        val_desc = f"random {args.val_split} of --train (seed {args.seed})"
    log.info("train: %d crops, val: %d crops", len(train_ds), len(val_ds))
    augment = crop_augment(args.augment)
    # Augmentation runs on the uint8 crop inside the dataset, before normalisation.
    train_ds.augment = WithItemRng(augment) if augment is not None else None
    val_ds.augment = None
    loader_kw: dict[str, Any] = {
        "num_workers": args.workers,
        "pin_memory": device.type == "cuda",
        "worker_init_fn": worker_init_fn,
        "persistent_workers": args.workers > 0,
    }
    g = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True,
                              drop_last=len(train_ds) > args.batch_size, generator=g, **loader_kw)
    val_loader = DataLoader(val_ds, batch_size=max(args.batch_size, 256), shuffle=False, **loader_kw)

    # ---- model
    resume_ckpt = load_model_checkpoint(args.resume, "classifier", "--resume") if args.resume else None
    init_ckpt = load_model_checkpoint(args.init, "classifier", "--init") if args.init else None
    # An 11th class ("not a digit") when the training crops include any labelled -1.
    num_classes = NUM_DIGITS + 1 if bool((train_ds.labels == NOT_DIGIT_LABEL).any()) else NUM_DIGITS
    if resume_ckpt is not None:
        model = resume_ckpt.model
    elif init_ckpt is not None:
        model = init_ckpt.model
        log.info("initialised from %s", args.init)
    else:
        from recognizer.models import SmallCNN

        model = SmallCNN(num_classes=num_classes, channels=tuple(args.channels), dropout=args.dropout)
    if model.fc.out_features < num_classes:
        widen_classifier(model, num_classes)
        log.info("added the 'not a digit' class to the classifier from %s", args.init or args.resume)
    num_classes = model.fc.out_features
    if int(val_ds.classes.max(initial=0)) >= num_classes:
        raise UsageError("--val has crops labelled 'not a digit' (-1) but --train has none; "
                         "add not-digit crops to --train or drop them from --val")
    model.to(device)

    # ---- optimizer, schedule
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    # "max": the scheduler watches validation accuracy, higher is better.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=args.lr_factor, patience=args.lr_patience, min_lr=args.min_lr
    )
    scaler = make_grad_scaler(use_amp)
    run = resume(resume_ckpt, optimizer=optimizer, scheduler=scheduler, scaler=scaler, source=args.resume)
    if resume_ckpt is not None:
        log.info("resumed from %s: %d epochs done, %d steps, best val acc %s", args.resume, run.epoch, run.step, run.best)
    checkpoints = Checkpoints(out, optimizer=optimizer, scheduler=scheduler, scaler=scaler)

    def metadata(epoch_done: int, val_acc: float) -> dict[str, Any]:
        return {
            "task": "classifier",
            "train": list(args.train),
            "train_filter": args.npz_source_images,
            "val": val_desc,
            "val_filter": args.val_npz_source_images,
            "train_size": len(train_ds),
            "val_size": len(val_ds),
            "epochs": epoch_done,
            "steps": run.step,
            "val_accuracy": val_acc,
            "best_val_accuracy": run.best,
            "best_epoch": run.best_epoch,
            "augment": args.augment,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "label_smoothing": args.label_smoothing,
            "seed": args.seed,
            "init": args.init or (resume_ckpt.metadata.get("init") if resume_ckpt else None),
            "command": command_line(argv),
            "wall_time_s": run.wall_time(clock),
            "device": str(device),
        }

    # ---- loop
    show = not args.no_progress
    for epoch in epochs(run, args.epochs, args.max_steps):
        t_epoch, step_before = time.perf_counter(), run.step
        loss, acc, run.step = train_one_epoch(
            model, train_loader, criterion, optimizer, scaler, device, use_amp,
            epoch=epoch, step=run.step, max_steps=args.max_steps, show_progress=show,
        )
        t_train = time.perf_counter() - t_epoch
        val_loss, val_acc, _ = evaluate(model, val_loader, criterion, device, use_amp, show)
        t_val = time.perf_counter() - t_epoch - t_train
        scheduler.step(val_acc)
        improved = run.end_epoch(epoch + 1, val_acc)
        log.info(
            "epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | lr %.2e | "
            "%d steps in %.1f s (%.3f s/step), validation %.1f s",
            epoch + 1, args.epochs, loss, acc, val_loss, val_acc, " (best)" if improved else "",
            optimizer.param_groups[0]["lr"], run.step - step_before, t_train,
            t_train / max(run.step - step_before, 1), t_val,
        )
        checkpoints.save(model, run, metadata(epoch + 1, val_acc), improved=improved)

    # ---- final: reload the best weights and measure them on the held-out crops
    final = checkpoints.load_best("classifier").model.to(device)
    _, final_acc, preds = evaluate(final, val_loader, criterion, device, use_amp, show)
    best_path = checkpoints.best_path
    log.info("confusion matrix of %s on the validation crops:\n%s", best_path,
             format_confusion(confusion_matrix(preds, val_ds.classes, num_classes=num_classes)))
    print(f"held-out accuracy: {final_acc:.4f} on {len(val_ds)} crops (best epoch {run.best_epoch}, {best_path})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; returns the exit code (2 for bad input, 1 when training fails)."""
    return run_main(_main, argv, "train.classifier")


if __name__ == "__main__":
    sys.exit(main())
