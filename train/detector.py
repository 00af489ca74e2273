"""Train the Faster R-CNN digit detector: ``python -m train.detector``.

Reads top to bottom: arguments, distributed setup, data, model, optimizer and schedule, loop,
save. Examples::

    # one machine
    python -m train.detector --train data/svhn/train --val data/svhn/test --arch light --out runs/det

    # the real sample: images 1-128 to train, 129-256 held out
    python -m train.detector --train ../shared/data/svhn_real/full --train-images 1-128 \\
        --val ../shared/data/svhn_real/full --val-images 129-256 --init weights/detector_light.pt

    # several GPUs or machines (DistributedDataParallel; one process per GPU)
    torchrun --nproc_per_node=4 -m train.detector --train data/svhn/train --val data/svhn/test

Data folders are SVHN format 1 (``digitStruct.mat`` + PNGs) or ``labels.json`` + images.
Each epoch ends with AP@0.5 on the validation set; ``OUT/last.pt`` is written every epoch and
``OUT/best.pt`` whenever AP@0.5 improves. Under torchrun only rank 0 validates, logs and writes.
Images are never flipped: a mirrored digit is not a digit.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from train.augment import DETECTION_PRESETS, DetectionAugment, WithItemRng, detection_augment
from train.common import (
    DistInfo,
    TrainingError,
    UsageError,
    amp_enabled,
    autocast,
    barrier,
    choose_device,
    cleanup_distributed,
    command_line,
    env_dist_info,
    init_distributed,
    load_model_checkpoint,
    make_grad_scaler,
    progress,
    run_main,
    seed_everything,
    setup_logging,
    worker_init_fn,
)
from train.detection_dataset import DetectionDataset, detection_collate
from train.inputs import select_images
from train.loop import Checkpoints, Stopwatch, epochs, resume
from train.metrics import average_precision, coco_average_precision

log = logging.getLogger("train.detector")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train.detector",
        description="Train the Faster R-CNN digit detector on SVHN-format data (torchrun for several GPUs).",
        add_help=add_help,
    )
    g = p.add_argument_group("data")
    g.add_argument("--train", required=True, metavar="DIR", help="SVHN-format folder (digitStruct.mat or labels.json + images)")
    g.add_argument("--val", metavar="DIR", help="validation folder (default: --val-split of --train)")
    g.add_argument("--val-split", type=float, default=0.05, metavar="FRACTION",
                   help="fraction of --train images held out when no --val is given (default 0.05)")
    g.add_argument("--train-images", metavar="RANGES",
                   help="use only --train images whose file number is in RANGES, e.g. 1-128")
    g.add_argument("--val-images", metavar="RANGES",
                   help="use only --val images whose file number is in RANGES, e.g. 129-256")
    g.add_argument("--augment", choices=sorted(DETECTION_PRESETS), default="full",
                   help="augmentation profile (default full; never flips)")
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="light", help="build_detector architecture: light, resnet50_fpn, mobilenet_v3_fpn")
    g.add_argument("--pretrained-backbone", action="store_true",
                   help="start from torchvision's ImageNet backbone (downloads it; not for --arch light)")
    g.add_argument("--min-size", type=int, help="override the arch's input short side (pixels)")
    g.add_argument("--max-size", type=int, help="override the arch's input long side limit (pixels)")
    g.add_argument("--init", metavar="CKPT", help="start from the weights of this detector checkpoint (fine-tune)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=20, help="epochs in total (a resumed run continues up to this)")
    g.add_argument("--batch-size", type=int, default=8, help="images per process per step")
    g.add_argument("--opt", choices=("sgd", "adamw"), default="sgd")
    g.add_argument("--lr", type=float, help="peak learning rate (default 0.01 for sgd, 0.0005 for adamw)")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--lr-schedule", choices=("cosine", "step"), default="cosine")
    g.add_argument("--lr-steps", type=int, nargs="+", default=[16, 19], metavar="EPOCH",
                   help="epochs at which --lr-schedule step multiplies the rate by --lr-gamma")
    g.add_argument("--lr-gamma", type=float, default=0.1)
    g.add_argument("--warmup-steps", type=int, default=500, help="linear warmup length in optimizer steps")
    g.add_argument("--warmup-factor", type=float, default=0.001, help="learning-rate fraction at step 0")
    g.add_argument("--clip-grad-norm", type=float, default=10.0, help="gradient norm clip (0 turns it off)")
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total (smoke tests)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default="runs/detector", metavar="DIR", help="writes last.pt and best.pt here")
    g.add_argument("--resume", metavar="CKPT", help="continue a run from its last.pt")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto; torchrun: cuda:LOCAL_RANK)")
    g.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="mixed precision (auto: on CUDA)")
    g.add_argument("--dist-backend", default="auto", help="torchrun process-group backend: auto (nccl on CUDA, else gloo), nccl, gloo")
    g.add_argument("--workers", type=int, default=2, help="DataLoader worker processes per process")
    g.add_argument("--val-batch-size", type=int, default=8)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    g.add_argument("-v", "--verbose", action="store_true")
    return p


# --------------------------------------------------------------------------- data


def open_detection(root: str, indices: Sequence[int], augment: DetectionAugment | None, option: str) -> Any:
    """``train.detection_dataset.DetectionDataset`` of the chosen images, augmented on the fly.

    Raises:
        UsageError: no image of the selection can be read.
    """
    try:
        return DetectionDataset(
            root, indices=indices, transforms=WithItemRng(augment) if augment is not None else None
        )
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option} {root!r}: {exc}") from exc


# --------------------------------------------------------------------------- schedule


def lr_lambda_factory(
    *, total_steps: int, warmup_steps: int, warmup_factor: float, schedule: str, milestones: Sequence[int], gamma: float
) -> Callable[[int], float]:
    """Learning-rate multiplier per optimizer step: linear warmup, then cosine or step decay.

    Args:
        total_steps: steps of the whole run (cosine reaches ~0 there).
        warmup_steps: steps of linear warmup from ``warmup_factor`` to 1.
        warmup_factor: multiplier at step 0.
        schedule: ``"cosine"`` or ``"step"``.
        milestones: step numbers at which the step schedule multiplies by ``gamma``.
        gamma: step decay factor.
    """
    # A run shorter than twice the warmup (a smoke test, a short fine-tune) warms up for
    # half of it, so the decay still happens.
    warmup_steps = max(0, min(warmup_steps, total_steps // 2))
    ms = sorted(int(m) for m in milestones)

    def factor(step: int) -> float:
        warm = 1.0
        if step < warmup_steps:
            warm = warmup_factor + (1.0 - warmup_factor) * step / warmup_steps
        if schedule == "cosine":
            t = min(max(step - warmup_steps, 0) / max(total_steps - warmup_steps, 1), 1.0)
            base = 0.5 * (1.0 + math.cos(math.pi * t))
            base = max(base, 1e-3)  # never exactly zero: the last steps still learn a little
        else:
            base = gamma ** sum(step >= m for m in ms)
        return warm * base

    return factor


# --------------------------------------------------------------------------- loops


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    use_amp: bool,
    *,
    epoch: int,
    step: int,
    max_steps: int | None,
    clip: float,
    show_progress: bool,
) -> tuple[dict[str, float], int]:
    """One pass; returns (mean of each loss term, steps taken so far)."""
    model.train()
    sums: dict[str, float] = {}
    batches = 0
    bar = progress(loader, desc=f"epoch {epoch + 1} train", enabled=show_progress)
    for images, targets in bar:
        if max_steps is not None and step >= max_steps:
            break
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in t.items()
                    if k in ("boxes", "labels")} for t in targets]
        with autocast(device, use_amp):
            loss_dict = model(images, targets)
            loss = sum(loss_dict.values())
        if not torch.isfinite(loss):
            terms = {k: round(float(v), 4) for k, v in loss_dict.items()}
            raise TrainingError(f"loss became {float(loss)} at step {step} ({terms}); lower --lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        batches += 1
        for k, v in loss_dict.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{sums['loss'] / batches:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    return {k: v / max(batches, 1) for k, v in sums.items()}, step


@torch.inference_mode()
def validate(
    model: nn.Module, loader: DataLoader, device: torch.device, use_amp: bool, show_progress: bool
) -> dict[str, float | None]:
    """AP@0.5 and AP@[.5:.95] of ``model`` (unwrapped, eval mode) on ``loader``."""
    model.eval()
    predictions: list[tuple[np.ndarray, np.ndarray]] = []
    truths: list[np.ndarray] = []
    for images, targets in progress(loader, desc="validate", enabled=show_progress):
        with autocast(device, use_amp):
            outputs = model([im.to(device, non_blocking=True) for im in images])
        for out, t in zip(outputs, targets):
            predictions.append((out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy()))
            truths.append(t["boxes"].cpu().numpy())
    ap50 = average_precision(predictions, truths, 0.5)
    ap = coco_average_precision(predictions, truths)
    return {"ap50": None if math.isnan(ap50) else ap50, "ap": None if math.isnan(ap) else ap}


# --------------------------------------------------------------------------- main


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    dist_env = env_dist_info()
    setup_logging(args.verbose, dist_env.rank)
    clock = Stopwatch()
    for name in ("epochs", "batch_size", "val_batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(args, name)} must be at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError(f"--max-steps {args.max_steps} must be at least 1")
    if args.init and args.resume:
        raise UsageError("--init and --resume both given; --resume already restores the weights")
    if args.dist_backend not in ("auto", "nccl", "gloo"):
        raise UsageError(f"--dist-backend {args.dist_backend!r} is not valid; expected auto, nccl or gloo")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device, dist_env.local_rank if dist_env.distributed else None)
    dist = init_distributed(args.dist_backend, device.type)
    try:
        return _train(args, argv, dist, device, clock)
    finally:
        cleanup_distributed(dist)


def _train(args: argparse.Namespace, argv: Sequence[str] | None, dist: DistInfo, device: torch.device, clock: Stopwatch) -> int:
    seed_everything(args.seed)
    use_amp = amp_enabled(args.amp, device)
    show = dist.is_main and not args.no_progress
    out = Path(args.out)
    lr = args.lr if args.lr is not None else (0.01 if args.opt == "sgd" else 5e-4)

    # ---- data
    train_idx = select_images(args.train, args.train_images, "--train")
    if args.val:
        val_root, val_idx = args.val, select_images(args.val, args.val_images, "--val")
        val_desc: Any = {"dir": args.val, "images": args.val_images}
    else:
        if not 0.0 < args.val_split < 1.0:
            raise UsageError(f"--val-split {args.val_split!r} must be between 0 and 1 (exclusive) when no --val is given")
        n_val = max(1, int(round(len(train_idx) * args.val_split)))
        if n_val >= len(train_idx):
            raise UsageError(f"--val-split {args.val_split} of {len(train_idx)} images leaves nothing to train on; give --val")
        perm = np.random.default_rng(args.seed).permutation(len(train_idx))
        val_root, val_idx = args.train, sorted(train_idx[i] for i in perm[:n_val])
        train_idx = sorted(train_idx[i] for i in perm[n_val:])
        val_desc = f"random {args.val_split} of --train (seed {args.seed})"
    train_ds = open_detection(args.train, train_idx, detection_augment(args.augment), "--train")
    val_ds = open_detection(val_root, val_idx, None, "--val")
    log.info("train: %d images, val: %d images, world size %d", len(train_ds), len(val_ds), dist.world_size)

    if dist.distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler: Any = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank,
                                          shuffle=True, seed=args.seed, drop_last=False)
    else:
        sampler = torch.utils.data.RandomSampler(train_ds, generator=torch.Generator().manual_seed(args.seed))
    loader_kw: dict[str, Any] = {
        "num_workers": args.workers,
        "pin_memory": device.type == "cuda",
        "collate_fn": detection_collate,
        "worker_init_fn": worker_init_fn,
        "persistent_workers": args.workers > 0,
    }
    train_loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler,
                              generator=torch.Generator().manual_seed(args.seed + 1000 * dist.rank), **loader_kw)
    val_loader = DataLoader(val_ds, batch_size=args.val_batch_size, shuffle=False, **loader_kw) if dist.is_main else None

    # ---- model
    resume_ckpt = load_model_checkpoint(args.resume, "detector", "--resume") if args.resume else None
    init_ckpt = load_model_checkpoint(args.init, "detector", "--init") if args.init else None
    if resume_ckpt is not None or init_ckpt is not None:
        ckpt = resume_ckpt or init_ckpt
        model = ckpt.model
        if ckpt.config.get("arch") != args.arch and "--arch" in (argv or sys.argv):
            log.warning("--arch %s ignored: the checkpoint's architecture is %s", args.arch, ckpt.config.get("arch"))
    else:
        from recognizer.models import build_detector

        overrides = {k: v for k, v in (("min_size", args.min_size), ("max_size", args.max_size)) if v is not None}
        try:
            model = build_detector(arch=args.arch, pretrained_backbone=args.pretrained_backbone, **overrides)
        except ValueError as exc:
            raise UsageError(f"--arch {args.arch}: {exc}") from exc
    model.to(device)
    # Same initial weights everywhere (DDP also broadcasts rank 0's), but from here on each
    # rank draws its own augmentations.
    seed_everything(args.seed + dist.rank)
    model_without_ddp = model
    if dist.distributed:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model_without_ddp = model
            model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
        else:
            model = nn.parallel.DistributedDataParallel(model)

    # ---- optimizer, schedule
    params = [p for p in model_without_ddp.parameters() if p.requires_grad]
    if args.opt == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=args.weight_decay)
    steps_per_epoch = len(train_loader)
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda_factory(
        total_steps=total_steps, warmup_steps=args.warmup_steps, warmup_factor=args.warmup_factor,
        schedule=args.lr_schedule, milestones=[e * steps_per_epoch for e in args.lr_steps], gamma=args.lr_gamma,
    ))
    scaler = make_grad_scaler(use_amp)
    run = resume(resume_ckpt, optimizer=optimizer, scheduler=scheduler, scaler=scaler, source=args.resume)
    if resume_ckpt is not None:
        log.info("resumed from %s: %d epochs done, %d steps, best AP@0.5 %s", args.resume, run.epoch, run.step, run.best)
    checkpoints = Checkpoints(out, optimizer=optimizer, scheduler=scheduler, scaler=scaler)

    def metadata(epoch_done: int, val: dict[str, float | None]) -> dict[str, Any]:
        return {
            "task": "detector",
            "train": {"dir": args.train, "images": args.train_images},
            "val": val_desc,
            "train_size": len(train_ds),
            "val_size": len(val_ds),
            "epochs": epoch_done,
            "steps": run.step,
            "val_ap50": val["ap50"],
            "val_ap": val["ap"],
            "best_val_ap50": run.best,
            "best_epoch": run.best_epoch,
            "augment": args.augment,
            "opt": args.opt,
            "lr": lr,
            "lr_schedule": args.lr_schedule,
            "batch_size": args.batch_size,
            "world_size": dist.world_size,
            "seed": args.seed,
            "init": args.init or (resume_ckpt.metadata.get("init") if resume_ckpt else None),
            "command": command_line(argv),
            "wall_time_s": run.wall_time(clock),
            "device": str(device),
        }

    # ---- loop
    for epoch in epochs(run, args.epochs, args.max_steps):
        if dist.distributed:
            sampler.set_epoch(epoch)
        t_epoch, step_before = time.perf_counter(), run.step
        losses, run.step = train_one_epoch(
            model, train_loader, optimizer, scheduler, scaler, device, use_amp,
            epoch=epoch, step=run.step, max_steps=args.max_steps, clip=args.clip_grad_norm, show_progress=show,
        )
        t_train = time.perf_counter() - t_epoch
        if dist.is_main:
            val = validate(model_without_ddp, val_loader, device, use_amp, show)
            t_val = time.perf_counter() - t_epoch - t_train
            improved = run.end_epoch(epoch + 1, val["ap50"] if val["ap50"] is not None else 0.0)
            log.info(
                "epoch %d/%d: %s | val AP@0.5 %s AP@[.5:.95] %s%s | lr %.2e | "
                "%d steps in %.1f s (%.3f s/step), validation %.1f s",
                epoch + 1, args.epochs, " ".join(f"{k} {v:.4f}" for k, v in losses.items()),
                _fmt(val["ap50"]), _fmt(val["ap"]), " (best)" if improved else "", optimizer.param_groups[0]["lr"],
                run.step - step_before, t_train, t_train / max(run.step - step_before, 1), t_val,
            )
            checkpoints.save(model_without_ddp, run, metadata(epoch + 1, val), improved=improved)
        # The other ranks wait here while rank 0 validates and writes.
        barrier(dist)

    # ---- final: reload the best weights and measure them
    if not dist.is_main:
        return 0
    final = checkpoints.load_best("detector").model.to(device)
    val = validate(final, val_loader, device, use_amp, show)
    print(f"held-out AP@0.5: {_fmt(val['ap50'])}  AP@[.5:.95]: {_fmt(val['ap'])} on {len(val_ds)} images "
          f"(best epoch {run.best_epoch}, {checkpoints.best_path})")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; returns the exit code (2 for bad input, 1 when training fails)."""
    return run_main(_main, argv, "train.detector")


if __name__ == "__main__":
    sys.exit(main())
