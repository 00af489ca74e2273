"""``recognizer run SOURCE [SOURCE ...]``: the real-time loop on cameras, streams, video files
or folders.

argparse, checks and printing live here; the run itself is :func:`recognizer.live.run.run` (the
same for one source and several).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recognizer.cli import options
from recognizer.cli.mapping import add_run_arguments, prepare_run
from recognizer.cli.options import add_loop_arguments, add_model_arguments, check_loop_options, in_range, positive, same_file
from recognizer.errors import CLIError, finite_float

log = logging.getLogger(__name__)


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it (symlinks resolved)."""
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _specs(args: argparse.Namespace) -> list[str]:
    return list(args.source) if isinstance(args.source, (list, tuple)) else [args.source]


def check_output_paths(args: argparse.Namespace, names: Sequence[str] | None = None, specs: Sequence[str] | None = None) -> None:
    """Refuse, before anything is opened, outputs that would overwrite an input or each other.

    No ``--save``/``--log`` may be the source (or one of its files), a checkpoint in use,
    the other output, or a path inside the ``--dump`` folder, and no ``--dump`` folder may be
    an input (one that holds files is refused as not empty when it opens); paths are compared after resolving symlinks, and by device and inode
    when the file exists (hard links). With several sources (``names``) each one's ``--save``
    and ``--dump`` path is checked. ``specs``: the sources as opened, without their
    ``NAME=`` (default: ``args.source``).
    """
    from recognizer.io.names import per_source_path
    from recognizer.io.sources import input_files
    from recognizer.models.weights import WeightsNotFoundError, resolve_weights

    def each(value: str) -> list[Path]:
        return [Path(value)] if names is None else [per_source_path(value, n) for n in names]

    outputs = [(f"--{name}", out) for name in ("save", "log") if (value := getattr(args, name, None))
               for out in (each(value) if name == "save" else [Path(value)])]
    dumps = [(args.dump, Path(args.dump))] if args.dump and names is None else [(str(d), d) for d in each(args.dump)] if args.dump else []
    # The files each source reads: NAME=SOURCE is compared as SOURCE (the spec with its name is no file).
    inputs: list[tuple[str, Path]] = [("the input", p) for spec in (specs if specs is not None else _specs(args))
                                      for p in input_files(spec)]
    for text, folder in dumps:
        for _, path in inputs:
            if same_file(folder, path):
                raise CLIError(f"--dump '{text}' is the input '{path}'; choose a new folder")
    for kind in ("detector", "classifier") if outputs else ():
        try:
            inputs.append((f"the {kind} checkpoint", resolve_weights(getattr(args, kind, None), kind)))
        except (WeightsNotFoundError, ValueError):
            pass  # reported when the models load
    for option, out in outputs:
        for what, path in inputs:
            if same_file(out, path):
                raise CLIError(f"{option} '{out}' is {what} '{path}'; refusing to overwrite it, choose another output path")
        for text, folder in dumps:
            if _inside(out, folder):
                raise CLIError(f"{option} '{out}' is inside the --dump folder '{text}'; choose a path outside it")
    for k, (option_a, a) in enumerate(outputs):
        for option_b, b in outputs[k + 1 :]:
            if same_file(a, b):
                raise CLIError(f"{option_a} '{a}' and {option_b} '{b}' are the same file; choose two paths")


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer run``: one source or several, through :func:`recognizer.live.run.run`."""
    from recognizer.io.sources import SourceError, open_source
    from recognizer.live.pipeline import PipelineConfig
    from recognizer.live.run import run
    from recognizer.live.signals import RunSignals

    for option in ("batch", "max_frames", "fps", "threads", "workers"):
        positive(f"--{option.replace('_', '-')}", getattr(args, option))
    check_loop_options(args)
    in_range("--fragment-seconds", args.fragment_seconds, 0.1, 60, "seconds of video per fragment of an .mp4/.mov")
    if args.log and "{name}" in args.log:
        raise CLIError(f"--log '{args.log}': there is one log for all sources (each line names its source), so {{name}} "
                       "is not replaced in it; give one file name ({name} works in --save and --dump)")
    if args.reconnect_timeout is not None and args.reconnect_timeout < 0:
        raise CLIError(f"--reconnect-timeout {args.reconnect_timeout}: expected seconds >= 0 (0 retries forever)")
    if not (args.show or args.save or args.dump or args.log):
        log.info("no --show/--save/--dump/--log given: only the summary will be printed")
    named = _named(_specs(args))
    names, specs = [name for name, _ in named], [spec for _, spec in named]
    several = len(specs) > 1
    if not several:
        args.source = specs[0]
        for option in ("save", "dump"):  # {name} with one source: its name, as with several
            if getattr(args, option) and "{name}" in getattr(args, option):
                setattr(args, option, getattr(args, option).replace("{name}", names[0]))
    batch = args.batch or max(4, len(specs))  # one batch can hold a frame of every camera
    try:
        sources = [open_source(spec, fps=args.fps, reconnect=_reconnect(args)) for spec in specs]
    except SourceError as exc:
        raise CLIError(str(exc), code=2) from exc
    check_output_paths(args, names if several else None, specs)
    # evidence, positions, --expect: checked before anything is written (they need one source)
    mapping = prepare_run(args, None if several else sources[0], n_sources=len(specs))
    # Models before the sources are opened: a camera should not sit open while weights load.
    recognizer, workers = _models(args)
    config = PipelineConfig(batch_size=batch, workers=workers, live=args.live, max_frames=args.max_frames)
    mode, text_reader = _text_reader(args, sources, config)

    def started(pipeline: Any) -> None:
        for i, source in enumerate(pipeline.sources):
            mode_word = "live" if pipeline.source_live(i) else "file"
            if several:
                print(f"reading {_what(source)} as '{pipeline.names[i]}' ({mode_word} mode, {source.fps:.2f} fps)", file=sys.stderr)
            else:
                print(f"reading {_what(source)} ({mode_word} mode, {source.fps:.2f} fps; device {recognizer.device}, "
                      f"{workers} inference worker(s), batch {batch}; reader {mode})", file=sys.stderr)
        if several:
            print(f"{len(specs)} sources, one model: device {recognizer.device}, {workers} inference worker(s), batch {batch}",
                  file=sys.stderr)

    def ended(s: Any) -> None:
        if s.status == "failed":
            print(f"recognizer: source '{s.name}' failed: {s.error}; the other sources go on", file=sys.stderr)
        else:
            print(f"recognizer: source '{s.name}' ended after {s.frames} frames", file=sys.stderr)

    signals = RunSignals()
    with signals.installed():
        summary = run(
            sources, recognizer, names=names,
            config=config, reader=mode, text_reader=text_reader,
            show=args.show, save=args.save, dump=args.dump, log=args.log, fragment_seconds=args.fragment_seconds,
            title=None if several else f"recognizer - {args.source}",
            numbers=(lambda: mapping.sink(args.log)) if mapping is not None else None,
            record=mapping.run_fields(args) if mapping is not None else None,
            progress=not args.no_progress and sys.stderr.isatty(), hud=not args.no_hud,
            on_start=started, on_source_end=ended if several else None,
        )
    if not summary.started:
        return _setup_failed(summary)
    for s in summary.sources:
        print(s.line())
    print(f"all {len(specs)} sources: {summary.line()}" if several else summary.line())
    for st in summary.text_stats:
        print(f"reader {summary.reader}: the text reader read {st.reads} track regions ({st.numbers} as numbers, "
              f"{st.letters} as letters) of {len(st.tracks)} tracks, {st.detections} text-detector passes found {st.found} "
              f"numbers; {st.seconds:.1f} s on its own thread, {st.dropped} requests dropped while busy", file=sys.stderr)
    return _report(summary, summary.outputs)


def _what(source: Any) -> str:
    """``file clip.mp4``, ``camera 7`` (a camera's name already says what it is)."""
    name = str(source.name)
    return name if name.startswith(f"{source.kind} ") else f"{source.kind} {name}"


def _named(specs: list[str]) -> list[tuple[str, str]]:
    """``(name, spec)`` of each source (:func:`recognizer.io.names.name_sources`); an invalid
    name is a usage error."""
    from recognizer.io.names import name_sources
    from recognizer.io.sources import SourceError

    try:
        return name_sources(specs)
    except SourceError as exc:
        raise CLIError(str(exc), code=2) from exc


def _text_reader(args: argparse.Namespace, sources: Sequence[Any], config: Any) -> tuple[str, Any]:
    """The reader mode of this run and the text reader it needs (None for the digit models alone).

    ``--reader`` wins; else live sources and runs with a window read tracks (``fast``) and
    files without a window also let the text detector look (``accurate``), since they have no
    real-time limit. A run of several sources reads with the digit models alone."""
    from recognizer.live.textworker import video_mode

    if len(sources) > 1:
        return "digits", None
    offline = not config.live_for(sources[0]) and not args.show
    mode = video_mode(getattr(args, "reader", None), live=not offline)
    reader = options.load_text_reader(mode)
    return (mode if reader is not None else "digits"), reader


def _reconnect(args: argparse.Namespace) -> Any:
    from recognizer.io.sources import ReconnectPolicy

    return ReconnectPolicy(timeout=None if args.reconnect_timeout == 0 else args.reconnect_timeout)


def _models(args: argparse.Namespace) -> tuple[Any, int]:
    """The recognizer and the inference workers, with torch's threads set for them."""
    from recognizer.live.threads import choose_parallelism, configure_threads

    recognizer = options.load_recognizer(args, video=True)
    workers, threads = choose_parallelism(getattr(getattr(recognizer, "device", None), "type", "cpu"), args.workers, args.threads)
    configure_threads(threads)
    return recognizer, workers


def _setup_failed(summary: Any) -> int:
    """The loop never ran (everything opened was closed): report why, or raise a bug."""
    from recognizer.live.signals import EXIT_INTERRUPTED, EXIT_TERMINATED

    if summary.stopped_by_signal:
        print(f"recognizer: {summary.status}; outputs finalized", file=sys.stderr)
        return EXIT_TERMINATED if summary.status == "terminated" else EXIT_INTERRUPTED
    raise CLIError(summary.error or "the run could not start", code=2) from summary.exception


def _report(summary: Any, status_lines: list[str]) -> int:
    """Print what the outputs hold and how the run ended; the exit status (a failed run raises)."""
    for line in status_lines:
        print(line)
    if summary.stopped_by_signal:
        word = summary.status
        if summary.error is not None:
            print(f"recognizer: error: {summary.error}", file=sys.stderr)
            print(f"recognizer: {word}; the other outputs finalized", file=sys.stderr)
        else:
            print(f"recognizer: {word}; outputs finalized", file=sys.stderr)
        return summary.exit_code
    if summary.status == "failed":
        raise CLIError(summary.error or "the run failed", code=1)
    return 0


HELP = "read house numbers live from webcams, video files, image folders or streams"
DESCRIPTION = """\
Run the recognizer on every frame of SOURCE with a capture thread and an inference worker; track and
smooth numbers across frames; show, save, dump or log the results. Several SOURCEs run at once
through one model: their frames share each batch, each source keeps its own tracker, --save/--dump
output and summary, and the --log lines name their source.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help=HELP, description=DESCRIPTION)
    p.add_argument("source", metavar="SOURCE", nargs="+",
                   help="camera index (0), video file, folder or glob of images, or URL (http://, rtsp://); several run "
                   "at once, each named after its camera, file or stream (cam0, left, ...) or as NAME=SOURCE")
    add_model_arguments(p)
    g = p.add_argument_group("loop")
    add_loop_arguments(g, batch_help="frames per inference call, all sources together; files fill batches, live sources take "
                       "what is ready (default: 4, or the number of sources when more)",
                       threads_help="torch CPU threads (default: cores / workers on the CPU)", batch_default=None)
    live = g.add_mutually_exclusive_group()
    live.add_argument("--live", dest="live", action="store_true", default=None, help="keep only the newest frame and drop the rest (default for cameras and streams; a file is then played in real time)")
    live.add_argument("--no-live", dest="live", action="store_false", help="never drop a frame (default for files and images)")
    g.add_argument("--fps", type=finite_float, metavar="F", help="frame rate to assume when the source's metadata has none or is wrong")
    g.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    g.add_argument("--reconnect-timeout", type=finite_float, default=30.0, metavar="S", help="give up on a lost camera/stream after S seconds (0: retry forever; default: 30)")
    o = p.add_argument_group("outputs")
    o.add_argument("--show", action="store_true", help="show a window (q or Esc quits, space pauses); several sources are tiled in it")
    o.add_argument("--save", metavar="FILE", help="write the annotated video (.mp4, .avi, .mkv, .mov) at the input's frame rate; with "
                   "several sources one per source: out.mp4 gives out_NAME.mp4, or put {name} in FILE")
    o.add_argument("--dump", metavar="DIR", help="write annotated frames and readings.jsonl to a new folder (headless); with several "
                   "sources one per source: DIR_NAME, or put {name} in DIR")
    o.add_argument("--log", metavar="FILE", help="JSON Lines log of per-frame readings and confirmed numbers, flushed per line; with "
                   "several sources one log, each line naming its source")
    o.add_argument("--fragment-seconds", type=finite_float, default=1.0, metavar="S",
                   help="a .mp4/.mov --save gets a keyframe and a fragment every S seconds of video, from 0.1 to 60 "
                   "(default: 1): a killed run's video plays up to its last whole fragment, so shorter loses less "
                   "and costs file size (BENCHMARKS.md)")
    o.add_argument("--no-hud", action="store_true", help="do not draw the FPS/latency corner")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_run_arguments(p)
    p.set_defaults(func=run_command)
