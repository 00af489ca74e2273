"""``recognizer run SOURCE [SOURCE ...]``: the real-time loop on cameras, streams, video files
or folders.

argparse, checks and printing live here; the work is in :mod:`recognizer.pipeline` (threads)
and :mod:`recognizer.session` (the main-thread stage: drawing, sinks, summary, signals); with
several sources in :mod:`recognizer.multiplex` (one batch for all) and
:mod:`recognizer.multisession` (outputs per source, one log, a tiled window).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recognizer.cli import CLIError, finite_float, options
from recognizer.cli.mapping import add_run_arguments, prepare_run
from recognizer.cli.options import add_loop_arguments, add_model_arguments, check_loop_options, in_range, positive, same_file

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
    from recognizer.multisession import per_source_path
    from recognizer.sources import input_files
    from recognizer.weights import WeightsNotFoundError, resolve_weights

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
    """Handler of ``recognizer run``."""
    from recognizer.pipeline import Pipeline, PipelineConfig
    from recognizer.records import run_record
    from recognizer.session import Outputs, RunSignals, open_outputs, run_session
    from recognizer.sources import SourceError, open_source
    from recognizer.tracking import Tracker

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
    specs = _specs(args)
    if len(specs) > 1:
        return _run_several(args, specs)
    name, args.source = _named(specs)[0]
    for option in ("save", "dump"):  # {name} with one source: its name, as with several
        if getattr(args, option) and "{name}" in getattr(args, option):
            setattr(args, option, getattr(args, option).replace("{name}", name))
    if args.batch is None:
        args.batch = 4

    try:
        source = open_source(args.source, fps=args.fps, reconnect=_reconnect(args))
    except SourceError as exc:
        raise CLIError(str(exc), code=2) from exc
    check_output_paths(args)
    mapping = prepare_run(args, source)  # evidence, positions, --expect: checked before anything is written
    # Models before the source is opened: a camera should not sit open while weights load.
    recognizer, workers = _models(args)

    outputs: Outputs | None = None
    signals = RunSignals()
    with signals.installed():
        try:
            source.open()
            outputs = open_outputs(show=args.show, save=args.save, dump=args.dump, log=args.log, fps=source.fps,
                                   title=f"recognizer - {args.source}", fragment_seconds=args.fragment_seconds)
            if mapping is not None:
                outputs.add_numbers(mapping.sink(args.log))
            config = PipelineConfig(batch_size=args.batch, workers=workers, live=args.live, max_frames=args.max_frames)
            mode, checker = _text_checker(args, source)
            pipeline = Pipeline(source, recognizer, tracker=Tracker(), config=config, text_checker=checker)
            if outputs.log is not None:  # nothing was read yet: a failure is like a log that cannot be created
                outputs.log.write(run_record(source.describe(), live=pipeline.live, batch=args.batch, workers=workers, reader=mode,
                                             **(mapping.run_fields(args) if mapping is not None else {})))
        except BaseException as exc:  # the loop never ran: close what was opened, then report
            return _setup_failed(exc, signals, outputs, [source])
        try:
            total = source.frame_count
            if args.max_frames and (total is None or args.max_frames < total):
                total = args.max_frames
            print(
                f"reading {_what(source)} ({'live' if pipeline.live else 'file'} mode, {source.fps:.2f} fps; "
                f"device {recognizer.device}, {workers} inference worker(s), batch {args.batch}; reader {mode})",
                file=sys.stderr,
            )
            summary = run_session(pipeline, outputs, progress=not args.no_progress and sys.stderr.isatty(), total=total,
                                  hud=not args.no_hud)
        finally:
            with signals.closing():
                source.close()
    print(summary.line())
    if checker is not None:
        st = checker.stats
        print(f"reader {mode}: the text reader read {st.reads} track regions ({st.numbers} as numbers, {st.letters} as letters) "
              f"of {len(st.tracks)} tracks, {st.detections} text-detector passes found {st.found} numbers; "
              f"{st.seconds:.1f} s on its own thread, {st.dropped} requests dropped while busy", file=sys.stderr)
    return _report(summary, outputs.status_lines())


def _what(source: Any) -> str:
    """``file clip.mp4``, ``camera 7`` (a camera's name already says what it is)."""
    name = str(source.name)
    return name if name.startswith(f"{source.kind} ") else f"{source.kind} {name}"


def _named(specs: list[str]) -> list[tuple[str, str]]:
    """``(name, spec)`` of each source (:func:`recognizer.multiplex.name_sources`); an invalid
    name is a usage error."""
    from recognizer.multiplex import name_sources
    from recognizer.sources import SourceError

    try:
        return name_sources(specs)
    except SourceError as exc:
        raise CLIError(str(exc), code=2) from exc


def _text_checker(args: argparse.Namespace, source: Any) -> tuple[str, Any]:
    """The reader mode of this run and its text checker (None for the digit models alone).

    ``--reader`` wins; else live sources and runs with a window read tracks (``fast``) and
    files without a window also let the text detector look (``accurate``), since they have no
    real-time limit."""
    from recognizer.textworker import make_checker, video_mode

    live = bool(source.live) if args.live is None else bool(args.live)
    offline = not live and not args.show
    mode = video_mode(getattr(args, "reader", None), live=not offline)
    # Offline the reads are made when asked, on the video's own clock: the same file, the same result.
    checker = make_checker(mode, options.load_text_reader(mode), synchronous=offline)
    return (mode if checker is not None else "digits"), checker


def _reconnect(args: argparse.Namespace) -> Any:
    from recognizer.sources import ReconnectPolicy

    return ReconnectPolicy(timeout=None if args.reconnect_timeout == 0 else args.reconnect_timeout)


def _models(args: argparse.Namespace) -> tuple[Any, int]:
    """The recognizer and the inference workers, with torch's threads set for them."""
    from recognizer.session import choose_parallelism, configure_threads

    recognizer = options.load_recognizer(args, video=True)
    workers, threads = choose_parallelism(getattr(getattr(recognizer, "device", None), "type", "cpu"), args.workers, args.threads)
    configure_threads(threads)
    return recognizer, workers


def _setup_failed(exc: BaseException, signals: Any, outputs: Any, sources: Sequence[Any]) -> int:
    """The loop never ran: close what was opened, then report (or raise) ``exc``."""
    from recognizer.session import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
    from recognizer.sinks import SinkError
    from recognizer.sources import SourceError

    with signals.closing():
        try:
            if outputs is not None:
                outputs.finalize(None)
        finally:
            for source in sources:
                source.close()
    if isinstance(exc, KeyboardInterrupt):
        print(f"recognizer: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}; outputs finalized", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    if isinstance(exc, (SourceError, SinkError)):
        raise CLIError(str(exc), code=2) from exc
    raise exc


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


def _run_several(args: argparse.Namespace, specs: list[str]) -> int:
    """``recognizer run SOURCE SOURCE ...``: every source through one batched model."""
    from recognizer.multiplex import MultiPipeline, UnopenedSource
    from recognizer.multisession import multi_run_record, open_multi_outputs, run_multi_session
    from recognizer.pipeline import PipelineConfig
    from recognizer.session import RunSignals
    from recognizer.sources import SourceError, open_source
    from recognizer.tracking import Tracker

    named = _named(specs)
    names = [name for name, _ in named]
    try:
        sources = [open_source(spec, fps=args.fps, reconnect=_reconnect(args)) for _, spec in named]
    except SourceError as exc:
        raise CLIError(str(exc), code=2) from exc
    check_output_paths(args, names, [spec for _, spec in named])
    prepare_run(args, None, n_sources=len(specs))  # refuses the options that need one source
    recognizer, workers = _models(args)
    batch = args.batch or max(4, len(sources))  # one batch can hold a frame of every camera

    def ended(s: Any) -> None:
        if s.status == "failed":
            print(f"recognizer: source '{s.name}' failed: {s.error}; the other sources go on", file=sys.stderr)
        else:
            print(f"recognizer: source '{s.name}' ended after {s.frames} frames", file=sys.stderr)

    outputs = None
    signals = RunSignals()
    with signals.installed():
        try:
            errors: list[SourceError] = []
            for k, source in enumerate(sources):
                try:
                    source.open()
                except SourceError as exc:  # reported like a source lost for good; the others run
                    errors.append(exc)
                    sources[k] = UnopenedSource(source, exc)
            if len(errors) == len(sources):
                raise errors[0]
            outputs = open_multi_outputs(names, [s.fps for s in sources], show=args.show, save=args.save, dump=args.dump,
                                         log=args.log, fragment_seconds=args.fragment_seconds)
            config = PipelineConfig(batch_size=batch, workers=workers, live=args.live, max_frames=args.max_frames)
            pipeline = MultiPipeline(sources, recognizer, names=names, trackers=[Tracker() for _ in sources], config=config)
            if outputs.log is not None:
                outputs.log.write(multi_run_record(pipeline, batch=batch, workers=workers))
        except BaseException as exc:
            return _setup_failed(exc, signals, outputs, sources)
        try:
            counts = [s.frame_count for s in sources]
            total = None if None in counts else sum(min(c, args.max_frames or c) for c in counts)
            for name, source, lane in zip(names, sources, pipeline.lanes):
                print(f"reading {_what(source)} as '{name}' ({'live' if lane.live else 'file'} mode, {source.fps:.2f} fps)",
                      file=sys.stderr)
            print(f"{len(sources)} sources, one model: device {recognizer.device}, {workers} inference worker(s), batch {batch}",
                  file=sys.stderr)
            summary = run_multi_session(pipeline, outputs, progress=not args.no_progress and sys.stderr.isatty(), total=total,
                                        hud=not args.no_hud, on_source_end=ended)
        finally:
            with signals.closing():
                for source in sources:
                    source.close()
    for s in summary.sources:
        print(s.line())
    print(f"all {len(sources)} sources: {summary.line()}")
    return _report(summary, outputs.status_lines())


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
