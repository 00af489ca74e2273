"""Options shared by the commands: the models (every command that runs them), the loop
(``run``, ``bench``, ``demo``), and the checks on output paths.

The models' settings are resolved once, in :func:`recognizer.models.engine.config_from_metadata`: a
threshold given here replaces the one the checkpoint file recommends.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from recognizer.errors import CLIError, finite_float


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the models."""
    g = parser.add_argument_group("models")
    g.add_argument("--detector", metavar="CKPT", help="detector checkpoint (default: shipped weights/detector_light.pt)")
    g.add_argument("--classifier", metavar="CKPT", help="classifier checkpoint (default: shipped weights/classifier.pt)")
    g.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N (default: auto)")
    g.add_argument(
        "--score-thresh",
        type=finite_float,
        default=None,
        metavar="P",
        help="detector score threshold in [0, 1] (default: the one stored in the detector file, else 0.5)",
    )
    g.add_argument(
        "--not-digit-thresh",
        type=finite_float,
        default=None,
        metavar="P",
        help="drop a detection the classifier calls 'not a digit' with at least this probability, in [0, 1] "
        "(classifiers with that class; default: the one stored in the classifier file, else 0.5)",
    )
    g.add_argument(
        "--reader",
        choices=("digits", "fast", "accurate"),
        default=None,
        help="who reads: digits = the digit models alone; fast = the text reader (PP-OCR, in the rapidocr wheel) "
        "also reads each number the digit models found (still images) or each track a few times a second (video); "
        "accurate = the text reader's own text detector finds regions too, in video on a frame a second "
        "(default: accurate for still images and for files read without a window, fast for cameras, streams, "
        "--show and bench)",
    )
    tta = g.add_mutually_exclusive_group()
    tta.add_argument(
        "--tta",
        dest="tta",
        action="store_true",
        default=None,
        help="read each digit as the average of 5 shifted/zoomed views of its crop (default for still images: "
        "about 3 points more accurate per digit)",
    )
    tta.add_argument(
        "--no-tta",
        dest="tta",
        action="store_false",
        help="read each digit from one view (default for video, where the tracker's vote across frames does "
        "the smoothing and speed matters)",
    )


def load_recognizer(args: argparse.Namespace, *, video: bool = False) -> Any:
    """Build a Recognizer from CLI options, turning every failure into a one-line CLIError.

    ``video``: the command reads video (``run``, ``bench``, ``demo``), so test-time views are
    off unless ``--tta`` asks for them; still images get them unless ``--no-tta``.
    """
    from recognizer._compat import DependencyError, require_torchvision
    from recognizer.models import CheckpointError
    from recognizer.models.engine import Recognizer
    from recognizer.models.weights import WeightsNotFoundError, resolve_weights

    overrides: dict[str, Any] = {}
    for option, field in (("score_thresh", "det_score_thresh"), ("not_digit_thresh", "not_digit_thresh")):
        value = getattr(args, option, None)
        if value is None:
            continue
        if not 0.0 <= value <= 1.0:
            raise CLIError(f"--{option.replace('_', '-')} {value}: expected a number in [0, 1]")
        overrides[field] = value
    try:
        require_torchvision()
        det = resolve_weights(args.detector, "detector")
        clf = resolve_weights(args.classifier, "classifier")
        tta = getattr(args, "tta", None)
        overrides["tta"] = (not video) if tta is None else bool(tta)
        # Options given on the command line replace what the files recommend.
        return Recognizer.from_checkpoints(det, clf, device=args.device, **overrides)
    except DependencyError as exc:
        raise CLIError(str(exc), code=3) from exc
    except (WeightsNotFoundError, CheckpointError, ValueError) as exc:
        raise CLIError(str(exc)) from exc


def reader_mode(args: argparse.Namespace, *, video: bool = False, live: bool = True) -> str:
    """The ``--reader`` mode this command runs: the option, else the default for still images
    (:data:`recognizer.models.fusion.DEFAULT_IMAGE_MODE`) or for live or offline video
    (:func:`recognizer.live.textworker.video_mode`)."""
    mode = getattr(args, "reader", None)
    if mode:
        return mode
    if video:
        from recognizer.live.textworker import video_mode

        return video_mode(None, live=live)
    from recognizer.models.fusion import DEFAULT_IMAGE_MODE

    return DEFAULT_IMAGE_MODE


def load_text_reader(mode: str, threads: int = 1) -> Any:
    """The text reader for ``mode`` (None for ``digits``, or with one warning line on stderr
    when it cannot be loaded: the digit models then read alone)."""
    if mode == "digits":
        return None
    from recognizer.models.textreader import load_text_reader as load

    return load(threads=threads)


def add_loop_arguments(group: argparse._ArgumentGroup, *, batch_help: str, threads_help: str, batch_default: int | None = 4) -> None:
    """``--batch``, ``--workers`` and ``--threads`` (the inference loop's parallelism);
    ``batch_default`` None lets the command choose when ``--batch`` is not given."""
    group.add_argument("--batch", type=int, default=batch_default, metavar="N", help=batch_help)
    group.add_argument("--workers", type=int, metavar="N", help="inference threads (default: 2 on a CPU with 2+ cores, 1 on CUDA)")
    group.add_argument("--threads", type=int, metavar="N", help=threads_help)


MAX_BATCH = 64
"""Most frames per inference call (``--batch``). Memory grows with the batch (frames held in
the queues and the detector's activations: ``--batch 300`` took 2.1 GiB), while a GPU is
already busy at 16 (``recognizer batch``'s default there) and a CPU at 4."""

MAX_WORKERS = 64
"""Most inference threads of one process (``--workers`` of ``run``, ``bench``, ``demo``)."""

MAX_THREADS = 256
"""Most torch threads (``--threads``)."""


def positive(option: str, value: int | float | None) -> None:
    """A CLIError for an option that must be a positive number and is not (None is fine)."""
    if value is not None and value <= 0:
        raise CLIError(f"{option} {value}: expected a positive number")


def in_range(option: str, value: int | float | None, low: int | float, high: int | float, what: str = "") -> None:
    """A CLIError (exit 2, one line) for a value outside ``[low, high]`` (None is fine); ``what``
    says why there is a bound, after the range."""
    if value is not None and not low <= value <= high:
        raise CLIError(f"{option} {value}: expected a number from {low} to {high}{f' ({what})' if what else ''}")


def check_loop_options(args: argparse.Namespace) -> None:
    """``--batch``, ``--workers`` and ``--threads`` within their ranges: a huge value is a usage
    error here, not an allocation or thread start that fails (or hangs) later."""
    in_range("--batch", getattr(args, "batch", None), 1, MAX_BATCH, "frames per inference call; memory grows with it")
    in_range("--workers", getattr(args, "workers", None), 1, MAX_WORKERS, "inference threads")
    in_range("--threads", getattr(args, "threads", None), 1, MAX_THREADS, "torch threads")


def same_file(a: Path, b: Path) -> bool:
    """Same file: same device and inode when both exist (symlinks, hard links), else same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
