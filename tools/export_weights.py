"""Turn a training checkpoint into a shipped file in weights/, recording where it came from.

    python tools/export_weights.py runs/cls/best.pt weights/classifier.pt \
        --data "synthetic 200k crops + real crops (not images 129-256)" \
        --command "python -m train.classifier ..." --wall-time "14 min" --machine "2-core CPU" \
        --accuracy "per-digit 81.2% on 277 held-out real crops"

The shipped file keeps the model's config and weights, drops resumable training state
(optimizer, scheduler) to stay small, and merges the training checkpoint's own metadata with
the provenance given here plus the source file's md5.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from recognizer.errors import UsageError, run_main
from recognizer.models import CheckpointError, load_checkpoint, save_checkpoint


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="training checkpoint (best.pt)")
    p.add_argument("dest", type=Path, help="shipped file, e.g. weights/classifier.pt")
    p.add_argument("--data", required=True, help="what it was trained on")
    p.add_argument("--command", required=True, help="the exact training command")
    p.add_argument("--wall-time", required=True, help="how long training took")
    p.add_argument("--machine", required=True, help="where it was trained")
    p.add_argument("--accuracy", required=True, help="accuracy on held-out real images, with the measuring command")
    p.add_argument(
        "--score-thresh",
        type=float,
        help="detectors: the detection threshold tuned on validation images; the recognizer uses it by default",
    )
    p.add_argument(
        "--not-digit-thresh",
        type=float,
        help="classifiers with a 'not a digit' class: the threshold tuned on validation images (used by default)",
    )
    return p


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("export_weights", lambda: _export(get_args_parser().parse_args(argv)))


def _export(args: argparse.Namespace) -> int:
    try:
        ck = load_checkpoint(args.source)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from exc
    metadata = dict(ck.metadata)
    metadata["provenance"] = {
        "data": args.data,
        "command": args.command,
        "wall_time": args.wall_time,
        "machine": args.machine,
        "accuracy": args.accuracy,
        "source_checkpoint": str(args.source),
        "source_md5": md5(args.source),
        "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.score_thresh is not None:
        if ck.kind != "detector" or not 0.0 <= args.score_thresh <= 1.0:
            raise UsageError(f"--score-thresh {args.score_thresh}: expected a number in [0, 1] for a detector")
        metadata["score_thresh"] = float(args.score_thresh)
    if args.not_digit_thresh is not None:
        classes = int(ck.config.get("num_classes", 10))
        if ck.kind != "classifier" or classes <= 10 or not 0.0 <= args.not_digit_thresh <= 1.0:
            raise UsageError(f"--not-digit-thresh {args.not_digit_thresh}: expected a number in [0, 1] "
                             "for a classifier with the 'not a digit' class")
        metadata["not_digit_thresh"] = float(args.not_digit_thresh)
    out = save_checkpoint(args.dest, ck.model, metadata=metadata)
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({ck.kind}, {size_mb:.1f} MB, md5 {md5(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
