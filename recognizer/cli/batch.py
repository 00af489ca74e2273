"""``recognizer batch SOURCES... --out DIR``: many video files (and image folders), each once, on Ray.

argparse and checks live here; the work is in :mod:`recognizer.batch.jobs` (inputs, one file, the
table) and :mod:`recognizer.batch.cluster` (the workers, retries, Ctrl-C). Ray is the optional
extra ``[batch]``; without it this command says in one line how to install it.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from recognizer.cli.mapping import add_batch_arguments, batch_plan
from recognizer.cli.options import MAX_BATCH, add_model_arguments, in_range, load_recognizer, positive, reader_mode
from recognizer.errors import CLIError, finite_float

GPU_BATCH = 16
"""Frames per inference call of a GPU worker (a CPU worker uses ``recognizer run``'s 4)."""

MAX_WORKERS = 4096
"""Most Ray workers (``--workers``): each is a process holding the models."""

MAX_RETRIES = 100
"""Most times a file whose worker died is handed out again (``--retries``)."""


def _check_gpus(value: float) -> None:
    """``--gpus-per-worker``: 0, a share of one GPU (Ray counts to 0.0001), or whole GPUs."""
    share = 0.0001 <= value <= 1 and round(value, 4) == value
    whole = 1 <= value <= 64 and value == int(value)
    if value != 0 and not (share or whole):
        raise CLIError(f"--gpus-per-worker {value:g}: expected 0, a share of one GPU from 0.0001 to 1 (at most 4 decimals), "
                       "or a whole number of GPUs up to 64")


def _model_loader(args: argparse.Namespace, gpus: float) -> functools.partial:
    """What each worker calls to load the models, checked here first so a mistake costs no Ray start."""
    from recognizer.models.weights import WeightsNotFoundError, resolve_weights

    for option in ("score_thresh", "not_digit_thresh"):
        value = getattr(args, option)
        if value is not None and not 0.0 <= value <= 1.0:
            raise CLIError(f"--{option.replace('_', '-')} {value}: expected a number in [0, 1]")
    device = args.device
    if device == "auto":
        device = "cuda" if gpus > 0 else "cpu"
    elif device.startswith("cuda") and gpus <= 0:
        raise CLIError(f"--device {device}: give the workers GPUs with --gpus-per-worker G")
    try:  # absolute paths: a worker may run in another folder or on another node
        weights = {kind: str(resolve_weights(getattr(args, kind), kind).resolve()) for kind in ("detector", "classifier")}
    except (WeightsNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    options = argparse.Namespace(**weights, device=device, score_thresh=args.score_thresh,
                                 not_digit_thresh=args.not_digit_thresh, tta=args.tta)
    # Loaded once here, on the CPU, as `recognizer run` does: a damaged file is one line now,
    # not a failure inside every worker after Ray has started.
    load_recognizer(argparse.Namespace(**{**vars(options), "device": "cpu"}), video=True)
    return functools.partial(load_recognizer, options, video=True)


def batch_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer batch``."""
    from recognizer.batch.cluster import BatchConfig, require_ray, run_batch
    from recognizer.batch.jobs import BatchInputError, discover

    require_ray()  # a BatchError is a user-facing error: one line, its own exit status
    positive("--workers", args.workers)
    positive("--batch", args.batch)
    in_range("--workers", args.workers, 1, MAX_WORKERS, "Ray workers, each a process with the models")
    in_range("--batch", args.batch, 1, MAX_BATCH, "frames per inference call; memory grows with it")
    if args.retries < 0:
        raise CLIError(f"--retries {args.retries}: expected a number >= 0")
    in_range("--retries", args.retries, 0, MAX_RETRIES, "times a file whose worker died is handed out again")
    _check_gpus(args.gpus_per_worker)
    in_range("--connect-timeout", args.connect_timeout, 1, 3600, "seconds to wait for the Ray cluster at --address")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out '{out}' is a file; expected a folder (created when missing)")
    load = _model_loader(args, args.gpus_per_worker)
    try:
        jobs = discover(args.sources, exclude=out)
    except BatchInputError as exc:
        raise CLIError(str(exc)) from exc
    for job in jobs:
        for alias in job.aliases:
            print(f"recognizer batch: '{alias}' is the same file as '{job.path}': read once", file=sys.stderr)
    numbers = batch_plan(args, jobs)  # the track, start times and --expect, checked before Ray starts
    batch = args.batch or (GPU_BATCH if args.gpus_per_worker > 0 else 4)
    config = BatchConfig(
        out=out, load=load, save_video=args.save_video, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
        retries=args.retries, address=args.address, batch=batch, progress=not args.no_progress and sys.stderr.isatty(),
        verbose=args.verbose, ignore_signals_after=True, connect_timeout=args.connect_timeout, numbers=numbers,
        reader=reader_mode(args, video=True, live=False),
    )
    print(f"recognizer batch: {len(jobs)} file(s) to {out}/; reader {config.reader}", file=sys.stderr)
    report = run_batch(jobs, config)
    print(report.line())
    for result in report.failed:
        print(f"recognizer: failed: {result.path}: {result.error}", file=sys.stderr)
    if report.status in ("interrupted", "terminated"):
        print(f"recognizer: {report.status}; only complete per-file outputs kept, run the same command again to resume", file=sys.stderr)
    return report.exit_code


HELP = "process many video files (and image folders) in parallel on Ray, each once, resumable"
DESCRIPTION = """\
Read every video file (and image folder, as one sequence) of SOURCES on Ray workers, each file once
through the same frame loop as 'recognizer run'; write DIR/<name>.jsonl per file (the --log schema)
with DIR/<name>.evidence/ (a JPEG of each number's best view), DIR/numbers.csv (one row per
confirmed house number), DIR/numbers.geojson (with --gpx/--nmea) and DIR/summary.json. Running it
again skips the files already complete. Needs the [batch] extra (Ray).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help=HELP, description=DESCRIPTION)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="video files, folders (searched recursively) or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created when missing)")
    p.add_argument("--save-video", action="store_true", help="also write the annotated video DIR/<name>.mp4 per file")
    add_model_arguments(p)
    p._option_string_actions["--device"].help = "auto (CUDA when --gpus-per-worker is given, else the CPU), cpu, cuda or cuda:N (default: auto)"
    g = p.add_argument_group("Ray")
    g.add_argument("--address", metavar="ADDR", help="join a Ray cluster: 'auto' (ray start on this node) or ray://host:10001 (default: start Ray here)")
    g.add_argument("--connect-timeout", type=finite_float, default=15.0, metavar="S",
                   help="give up joining the cluster at --address after S seconds, from 1 to 3600 (default: 15)")
    g.add_argument("--workers", type=int, metavar="N", help="workers, each loading the models once (default: every CPU, or GPUs / --gpus-per-worker)")
    g.add_argument("--gpus-per-worker", type=finite_float, default=0.0, metavar="G", help="GPUs per worker, e.g. 1 or 0.5 (default: 0, CPU workers with one torch thread each)")
    g.add_argument("--retries", type=int, default=2, metavar="K", help="hand a file whose worker died to another worker up to K times (default: 2)")
    g.add_argument("--batch", type=int, metavar="N", help=f"frames per inference call (default: 4 on the CPU, {GPU_BATCH} on a GPU)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_batch_arguments(p)
    p.set_defaults(func=batch_command)
