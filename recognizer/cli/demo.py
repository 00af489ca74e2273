"""``recognizer demo``: make a street clip with known house numbers, read it, score it.

Needs nothing but the installed package and its shipped weights: the clip is generated
(:mod:`recognizer.apps.demo`), run headless through the real-time pipeline, and each house number
read is printed against the truth.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from recognizer.cli import options
from recognizer.cli.options import add_loop_arguments, add_model_arguments
from recognizer.errors import CLIError, finite_float

log = logging.getLogger(__name__)

DEFAULT_OUT = "recognizer-demo"
DEFAULT_OUT_NAMEPLATES = "recognizer-demo-nameplates"


def demo_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer demo``; exit 0 when it ran (accuracy is reported, not asserted)."""
    from recognizer.apps.demo import run_demo
    from recognizer.io.sources import SourceError
    from recognizer.live.pipeline import PipelineError
    from recognizer.live.threads import choose_parallelism, configure_threads
    from recognizer.output.sinks import SinkError
    from recognizer.synth.street import ClipConfig

    if args.frames < 2:
        raise CLIError(f"--frames {args.frames}: expected at least 2")
    if args.seed < 0:
        raise CLIError(f"--seed {args.seed}: expected an integer >= 0")
    if args.batch < 1:
        raise CLIError(f"--batch {args.batch}: expected at least 1")
    if args.workers is not None and args.workers < 1:
        raise CLIError(f"--workers {args.workers}: expected at least 1")
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads {args.threads}: expected at least 1")
    options.check_loop_options(args)
    try:
        cfg = ClipConfig(seed=args.seed, frames=args.frames, fps=args.fps, nameplates=args.nameplates)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc

    t0 = time.perf_counter()
    # The demo is a file read without a window: the offline default, as `recognizer run clip.mp4`.
    mode = options.reader_mode(args, video=True, live=False)
    recognizer = options.load_recognizer(args, video=True)
    load_s = time.perf_counter() - t0
    workers, threads = choose_parallelism(getattr(getattr(recognizer, "device", None), "type", "cpu"), args.workers, args.threads)
    configure_threads(threads)
    if args.out is None:
        args.out = DEFAULT_OUT_NAMEPLATES if cfg.nameplates else DEFAULT_OUT
    what = "name-plate street" if cfg.nameplates else "street"
    print(f"demo: {what}, {cfg.frames} frames at {cfg.fps:g} fps (seed {cfg.seed}) in {args.out}; device {recognizer.device}, "
          f"{workers} inference worker(s), batch {args.batch}; reader {mode}", file=sys.stderr)
    try:
        run = run_demo(args.out, recognizer, cfg, batch=args.batch, workers=workers,
                       progress=not args.no_progress and sys.stderr.isatty(),
                       text_reader=options.load_text_reader(mode), reader_mode=mode)
    except (ValueError, OSError, SourceError, SinkError) as exc:
        raise CLIError(str(exc)) from exc
    except PipelineError as exc:
        raise CLIError(str(exc), code=1) from exc
    except KeyboardInterrupt:
        print("recognizer: demo interrupted", file=sys.stderr)
        return 130

    rep = run.report
    print(rep.table())
    s = run.summary
    print(
        f"demo: read {rep.correct}/{len(rep.numbers)} house numbers right"
        f" ({100.0 * rep.correct / max(len(rep.numbers), 1):.0f}%), {100.0 * rep.frame_accuracy:.0f}% of visible frames"
        f" read right, {len(rep.extra)} extra confirmed number(s); {s.frames} frames in {s.seconds:.1f} s ({s.fps:.1f} FPS);"
        f" clip {run.seconds['clip']:.1f} s, models {load_s:.1f} s"
    )
    if rep.frames_logged != rep.frames_expected:
        print(f"demo: warning: {rep.frames_logged} frames read back of {rep.frames_expected} written", file=sys.stderr)
    print(f"annotated video: {run.annotated}\nreadings log: {run.log_path}\ntruth: {run.clip.truth_path}")
    return 0


HELP = "generate a street clip with known house numbers, read it and score the result"
DESCRIPTION = """\
Generate a clip of a camera passing house fronts with numbered plates, run the recognizer on it
headless (threaded pipeline + tracker), write an annotated video and a readings log, and print each
house number read against the truth. Writes clip.mp4, truth.json, annotated.mp4, readings.jsonl and
report.json in --out (the clip is reused when its settings are unchanged).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help=HELP, description=DESCRIPTION)
    p.add_argument("--out", metavar="DIR",
                   help=f"output folder (default: ./{DEFAULT_OUT}, or ./{DEFAULT_OUT_NAMEPLATES} with --nameplates)")
    p.add_argument("--seed", type=int, default=0, help="clip seed: another street (default: 0)")
    p.add_argument("--frames", type=int, default=180, metavar="N", help="clip length in frames (default: 180, 12 s)")
    p.add_argument("--fps", type=finite_float, default=15.0, help="clip frame rate (default: 15)")
    p.add_argument("--nameplates", action="store_true",
                   help="the name-plate check: a street whose plates, doors and walls carry names, street names, "
                        "'No.', 'Apt', letters beside the numbers (only the numbers are truth; every other "
                        "confirmed text is an extra)")
    add_model_arguments(p)
    g = p.add_argument_group("loop")
    add_loop_arguments(g, batch_help="frames per inference call (default: 4)", threads_help="torch CPU threads (default: cores / workers)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=demo_command)
