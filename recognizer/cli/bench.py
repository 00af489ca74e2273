"""``recognizer bench``: measure the real-time loop on a generated clip (:mod:`recognizer.apps.bench`)."""
from __future__ import annotations

import argparse

from recognizer.cli import options
from recognizer.cli.options import add_model_arguments
from recognizer.errors import CLIError, finite_float


def bench_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer bench``."""
    import json

    from recognizer.apps.bench import benchmark, format_report, parse_setting, untrained_recognizer
    from recognizer.live.threads import configure_threads

    if args.frames < 1 or args.batch < 1 or args.repeats < 1:
        raise CLIError(f"--frames {args.frames} / --batch {args.batch} / --repeats {args.repeats}: expected positive numbers")
    options.in_range("--batch", args.batch, 1, options.MAX_BATCH, "frames per inference call; memory grows with it")
    try:
        settings = [parse_setting(s) for s in (args.settings or ["1:2", "2:1"])]
        live_setting = parse_setting(args.live_setting) if args.live_setting else None
    except ValueError as exc:
        raise CLIError(f"--settings: {exc}") from exc
    configure_threads(None)
    if args.untrained:
        try:
            recognizer = untrained_recognizer(args.device, args.arch, args.digits, tta=bool(args.tta))
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
        models = f"untrained {args.arch} detector passing {args.digits} boxes per frame + SmallCNN (speed only)"
    else:
        recognizer = options.load_recognizer(args, video=True)
        models = f"detector {args.detector or 'shipped'}, classifier {args.classifier or 'shipped'}"
    mode = options.reader_mode(args, video=True)
    reader = options.load_text_reader(mode)
    if reader is not None:
        models += f"; text reader {mode}"
    report = benchmark(
        recognizer,
        reader=mode,
        text_reader=reader,
        frames=args.frames,
        batch=args.batch,
        settings=settings,
        live_setting=live_setting,
        live_seconds=args.live_seconds,
        repeats=args.repeats,
    )
    report["models"] = models
    report["device"] = str(getattr(recognizer, "device", "?"))
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "bench",
        help="measure the real-time loop (threaded vs sequential, live latency) on a generated clip",
        description="Benchmark on a generated 640x480 clip: per-stage times, end-to-end FPS of the threaded pipeline and of a sequential loop, and live-mode latency with a synthetic 30 fps camera.",
    )
    add_model_arguments(b)
    b.add_argument("--frames", type=int, default=150, metavar="N", help="frames in the generated clip (default: 150)")
    b.add_argument("--batch", type=int, default=4, metavar="N", help="batch size of the threaded file run (default: 4)")
    b.add_argument("--settings", nargs="+", metavar="W:T", help="threaded settings to compare, WORKERS:TORCH_THREADS (default: 1:2 2:1)")
    b.add_argument("--live-setting", metavar="W:T", help="setting of the live run (default: the first of --settings)")
    b.add_argument("--live-seconds", type=finite_float, default=10.0, metavar="S", help="length of the live-latency run (default: 10; 0 skips it)")
    b.add_argument("--repeats", type=int, default=1, metavar="N", help="repeat each run N times and keep the best, to filter out other load (default: 1)")
    b.add_argument("--untrained", action="store_true", help="use untrained models instead of the weights (speed only)")
    b.add_argument("--digits", type=int, default=9, metavar="N", help="with --untrained: digit boxes per frame passed on to the classifier (default: 9)")
    b.add_argument("--arch", default="light", choices=("light", "resnet50_fpn", "mobilenet_v3_fpn"), help="detector architecture with --untrained (default: light)")
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    b.set_defaults(func=bench_command)
