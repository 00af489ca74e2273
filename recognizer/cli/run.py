"""``recognizer run SOURCE`` (the real-time loop) and ``recognizer bench`` (its benchmark).

argparse and printing live here; the work is in :mod:`recognizer.pipeline` (threads),
:mod:`recognizer.tracking`, :mod:`recognizer.render` and :mod:`recognizer.sinks`.
:func:`run_session` is the main-thread loop shared by the command and the benchmark.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from recognizer.cli import finite_float
from recognizer.cli_image import add_model_arguments, same_file

log = logging.getLogger(__name__)

LATENCY_WINDOW = 50_000
"""Latencies kept for the summary/benchmark percentiles (the most recent frames)."""

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so outputs are finalized like on Ctrl-C."""


@dataclass
class Outputs:
    """The sinks of a run (each optional). Closed by :meth:`close` in a safe order."""

    window: Any = None  # WindowSink
    video: Any = None  # VideoSink
    dump: Any = None  # DumpSink
    log: Any = None  # JsonlLog

    @property
    def needs_drawing(self) -> bool:
        return self.window is not None or self.video is not None or self.dump is not None

    def close(self) -> None:
        """Finalize every sink; an error in one does not stop the others from closing (the
        first is raised after)."""
        errors = self.finalize()
        if errors:
            raise errors[0]

    def finalize(self, summary: RunSummary | None = None) -> list[BaseException]:
        """Close the video, write ``summary`` as the log's last line, close the rest.

        Every sink is closed whatever the others do; the errors met (one-line
        :class:`~recognizer.sinks.SinkError` for anything a sink raises) are returned in order.
        A video that fails only while being finalized turns a completed ``summary`` into a
        failed one before it is logged.
        """
        from recognizer.sinks import SinkError

        errors: list[BaseException] = []

        def close(sink: Any, what: str) -> None:
            try:
                sink.close()
            except SinkError as exc:
                errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - any other failure is still one line
                errors.append(SinkError(f"cannot finish the {what}: {exc}"))

        if self.video is not None:
            close(self.video, "video")
        if summary is not None and errors and summary.status == "completed":
            summary.status, summary.error = "failed", str(errors[0])
        if self.log is not None and summary is not None and not getattr(self.log, "failed", False):
            try:
                self.log.write(summary.to_dict())
            except SinkError as exc:
                errors.append(exc)
        for sink, what in ((self.log, "log"), (self.dump, "dump"), (self.window, "window")):
            if sink is not None:
                close(sink, what)
        return errors


@dataclass
class RunSummary:
    """What a run did (printed at the end, written as the log's last line).

    Attributes:
        frames: frames processed and shown/written.
        captured: frames read from the source.
        dropped: frames dropped (live mode).
        seconds: wall time from start to end of the loop.
        confirmed: confirmed house numbers, in order.
        status: "completed", "quit", "interrupted", "terminated" or "failed".
        error: why a failed run failed (one line), else None.
        latencies_ms: capture-to-display latency (ms) of the last :data:`LATENCY_WINDOW`
            frames (bounded, so an overnight run does not grow in memory).
        stage_seconds: total seconds per stage (main-thread stages measured here).
    """

    frames: int = 0
    captured: int = 0
    dropped: int = 0
    seconds: float = 0.0
    confirmed: list[str] = field(default_factory=list)
    status: str = "completed"
    error: str | None = None
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "summary",
            "status": self.status,
            "frames": self.frames,
            "captured": self.captured,
            "dropped": self.dropped,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "confirmed": list(self.confirmed),
        }
        if self.error is not None:
            d["error"] = self.error
        return d

    def line(self) -> str:
        numbers = ", ".join(self.confirmed) if self.confirmed else "none"
        return (
            f"{self.status}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), "
            f"dropped {self.dropped}, house numbers confirmed: {len(self.confirmed)} ({numbers})"
        )


def _progress(total: int | None, live: bool, enabled: bool) -> Any:
    """A tqdm bar (ETA when the total is known) or a no-op stand-in."""
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=None if live else total, unit="frame", dynamic_ncols=True, leave=True, file=sys.stderr)


def run_session(
    pipeline: Any,
    outputs: Outputs,
    *,
    progress: bool = False,
    total: int | None = None,
    hud: bool = True,
) -> RunSummary:
    """Consume a started-or-not :class:`~recognizer.pipeline.Pipeline` on the main thread.

    Draws each result (when a visual sink is open), shows/writes it, logs it, and returns the
    summary. Closes the pipeline (threads stopped) before returning or raising; the caller
    closes ``outputs`` and the source.

    Raises:
        PipelineError: a capture/inference/tracking stage failed.
        KeyboardInterrupt: Ctrl-C (the summary so far is in ``exc.summary``).
    """
    from recognizer.render import HudInfo, annotate
    from recognizer.sinks import SinkError, event_record
    from recognizer.sources import frame_scale

    summary = RunSummary()
    stage = summary.stage_seconds
    for key in ("draw", "show", "write", "log"):
        stage[key] = 0.0
    # FPS over the last frames shown: batches arrive in bursts, so a rate between two
    # consecutive frames would jump; a window of 30 frames smooths that out.
    shown_at: deque[float] = deque(maxlen=30)
    t_start = time.monotonic()
    bar_cm = _progress(total, pipeline.live, progress)
    finished = False
    try:
        with pipeline, bar_cm as bar:
            for result in pipeline:
                now = time.monotonic()
                shown_at.append(now)
                span = shown_at[-1] - shown_at[0]
                fps_now = (len(shown_at) - 1) / span if span > 0 else None
                frame = result.frame
                update = result.update
                scale = frame_scale(frame)  # a frame downscaled on read: boxes go out in the file's pixels
                image = None
                if outputs.needs_drawing:
                    t0 = time.perf_counter()
                    info = None
                    if hud:
                        info = HudInfo(
                            fps=fps_now,
                            latency_ms=(now - result.captured_at) * 1000.0,
                            frame_index=frame.index,
                            dropped=pipeline.stats.dropped if pipeline.live else None,
                        )
                    image = annotate(frame.image, result.readings, update, info)
                    stage["draw"] += time.perf_counter() - t0
                # A frame goes to every output or to none: Ctrl-C/SIGTERM during these writes
                # takes effect after them (the video never holds a frame the log lacks).
                with _deferred_interrupts():
                    if outputs.video is not None:
                        t0 = time.perf_counter()
                        outputs.video.write(image)
                        stage["write"] += time.perf_counter() - t0
                    if outputs.dump is not None:
                        t0 = time.perf_counter()
                        outputs.dump.write(image, frame.index, frame.timestamp, result.readings, update, result.origin, scale=scale)
                        stage["write"] += time.perf_counter() - t0
                    if outputs.log is not None:
                        t0 = time.perf_counter()
                        outputs.log.write_frame(frame.index, frame.timestamp, result.readings, update, result.origin, scale=scale)
                        stage["log"] += time.perf_counter() - t0
                    if update is not None:
                        summary.confirmed.extend(ev.text for ev in update.confirmed)
                    summary.frames += 1
                keep_going = True
                if outputs.window is not None:
                    t0 = time.perf_counter()
                    keep_going = outputs.window.show(image)
                    stage["show"] += time.perf_counter() - t0
                summary.latencies_ms.append((time.monotonic() - result.captured_at) * 1000.0)
                if bar is not None:
                    bar.update(1)
                    if pipeline.live:
                        bar.set_postfix(dropped=pipeline.stats.dropped, refresh=False)
                if not keep_going:
                    summary.status = "quit"
                    pipeline.stop()
                    break
        finished = True
    except KeyboardInterrupt as exc:
        summary.status = "terminated" if isinstance(exc, Terminated) else "interrupted"
        exc.summary = summary  # type: ignore[attr-defined]
        raise
    except BaseException as exc:
        summary.status = "failed"
        exc.summary = summary  # type: ignore[attr-defined]
        raise
    finally:
        summary.seconds = time.monotonic() - t_start
        summary.captured = pipeline.stats.captured
        summary.dropped = pipeline.stats.dropped
        stage["infer"] = pipeline.stats.infer_seconds
        stage["track"] = pipeline.stats.track_seconds
        # The tracks still open at the end get their final frame range in the log too.
        tracker = getattr(pipeline, "tracker", None)
        if tracker is not None and outputs.log is not None and not getattr(outputs.log, "failed", False):
            try:
                for ended in tracker.finish():
                    outputs.log.write(event_record(ended))
            except SinkError as exc:
                if finished:  # else the error already on its way wins
                    summary.status = "failed"
                    exc.summary = summary  # type: ignore[attr-defined]
                    raise
    return summary


@contextlib.contextmanager
def _signal_handlers(handlers: dict[int, Any]) -> Iterator[bool]:
    """Install ``{signal: handler}`` for the block and restore the previous ones after it.

    Yields False (and changes nothing) outside the main thread, where Python cannot set them.
    """
    previous: dict[int, Any] = {}
    try:
        for signum, handler in handlers.items():
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        yield False
        return
    try:
        yield True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _RunSignals:
    """Ctrl-C (SIGINT) and SIGTERM while ``recognizer run`` runs (main thread only).

    The first one stops the run: :class:`KeyboardInterrupt` (SIGINT) or :class:`Terminated`
    (SIGTERM) is raised on the main thread, or at the end of a :meth:`deferred` block when it
    came inside one (one frame's writes to the outputs are never split). Every later signal,
    and any signal once the outputs are being finalized (:meth:`closing`), is ignored: a second
    Ctrl-C cannot cut the finalizing short, nor kill the process by the signal (or abort it in
    the interpreter's teardown) after the outputs were finalized, so the exit status stays
    130/143. Once a signal was seen, SIGINT and SIGTERM stay ignored (``SIG_IGN``) after the
    run, until the process ends; without one the previous handlers are restored.
    """

    def __init__(self) -> None:
        self.first: int | None = None  # the signal that stopped the run
        self.seen = False  # any signal came
        self._depth = 0
        self._pending = False
        self._closing = False

    def exception(self) -> KeyboardInterrupt:
        return Terminated() if self.first == signal.SIGTERM else KeyboardInterrupt()

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True
        if self.first is not None or self._closing:
            return
        self.first = signum
        if self._depth:
            self._pending = True
            return
        raise self.exception()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        global _ACTIVE_SIGNALS
        previous: dict[int, Any] = {}
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self.handler)
        except ValueError:  # not the main thread: Python lets only that one set handlers
            previous = {}
        if not previous:
            yield
            return
        _ACTIVE_SIGNALS = self
        try:
            yield
        finally:
            _ACTIVE_SIGNALS = None
            self._closing = True
            for signum, old in previous.items():
                # After an interrupt: ignored for good. Python puts its own handlers back to
                # the default while the interpreter shuts down (which takes a moment with
                # torch loaded), and a signal then would kill the process; SIG_IGN is kept.
                signal.signal(signum, signal.SIG_IGN if self.seen else old)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            self._pending = False
            raise self.exception()

    @contextlib.contextmanager
    def closing(self) -> Iterator[None]:
        """From here on signals are ignored: the outputs are being finalized."""
        self._closing = True
        yield


_ACTIVE_SIGNALS: _RunSignals | None = None


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM during the block and raise them (KeyboardInterrupt / Terminated) at
    its end, so one frame's writes to the outputs are never split (main thread only).

    Inside ``recognizer run`` this is :meth:`_RunSignals.deferred`; elsewhere (the benchmark,
    the demo) handlers are installed for the block alone.
    """
    if _ACTIVE_SIGNALS is not None:
        with _ACTIVE_SIGNALS.deferred():
            yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    with _signal_handlers({signal.SIGINT: hold, signal.SIGTERM: hold}):
        yield
    if pending:
        raise Terminated() if signal.SIGTERM in pending else KeyboardInterrupt()


def configure_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (None leaves torch's default) and keep OpenCV single-threaded.

    The capture and main threads already keep cores busy with decoding, drawing and encoding;
    OpenCV's own worker pool on top of that only adds contention (see BENCHMARKS.md).
    """
    import cv2
    import torch

    cv2.setNumThreads(1)
    if threads is not None:
        torch.set_num_threads(threads)


def cpu_cores() -> int:
    """CPU cores this process may use."""
    import os

    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def choose_parallelism(device_type: str, workers: int | None, threads: int | None) -> tuple[int, int | None]:
    """Default inference workers and torch threads for a device.

    On the CPU: two workers with ``cores // 2`` torch threads each (measured faster than one
    worker using every core, see BENCHMARKS.md); one worker on a single core. On CUDA: one
    worker, torch's default threads. Values given by the user are kept.

    Returns:
        ``(workers, torch threads or None for torch's default)``.
    """
    if device_type != "cpu":
        return (workers or 1, threads)
    cores = cpu_cores()
    w = workers or (2 if cores >= 2 else 1)
    t = threads or max(cores // w, 1)
    return w, t


def _build_outputs(args: argparse.Namespace, fps: float) -> Outputs:
    from recognizer.sinks import DumpSink, JsonlLog, VideoSink, WindowSink

    outputs = Outputs()
    try:
        if args.show:
            outputs.window = WindowSink(f"recognizer - {args.source}")
        if args.save:
            outputs.video = VideoSink(args.save, fps)
        if args.dump:
            outputs.dump = DumpSink(args.dump)
            outputs.dump.open()
        if args.log:
            outputs.log = JsonlLog(args.log)
            outputs.log.open()
    except BaseException:
        outputs.close()
        raise
    return outputs


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it (symlinks resolved)."""
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def check_output_paths(args: argparse.Namespace) -> None:
    """Refuse, before anything is opened, outputs that would overwrite an input or each other.

    No ``--save``/``--log`` may be the source (or one of its files), a checkpoint in use,
    the other output, or a path inside the ``--dump`` folder; paths are compared after
    resolving symlinks, and by device and inode when the file exists (hard links).
    """
    from recognizer.cli import CLIError
    from recognizer.sources import input_files
    from recognizer.weights import WeightsNotFoundError, resolve_weights

    outputs = [(f"--{name}", Path(value)) for name in ("save", "log") if (value := getattr(args, name, None))]
    if not outputs:
        return  # a --dump folder must be new or empty: it cannot hold an input
    inputs: list[tuple[str, Path]] = [("the input", p) for p in input_files(args.source)]
    for kind in ("detector", "classifier"):
        try:
            inputs.append((f"the {kind} checkpoint", resolve_weights(getattr(args, kind, None), kind)))
        except (WeightsNotFoundError, ValueError):
            pass  # reported when the models load
    for option, out in outputs:
        for what, path in inputs:
            if same_file(out, path):
                raise CLIError(f"{option} '{out}' is {what} '{path}'; refusing to overwrite it, choose another output path")
        if args.dump and _inside(out, Path(args.dump)):
            raise CLIError(f"{option} '{out}' is inside the --dump folder '{args.dump}'; choose a path outside it")
    if len(outputs) == 2 and same_file(outputs[0][1], outputs[1][1]):
        raise CLIError(f"--save '{outputs[0][1]}' and --log '{outputs[1][1]}' are the same file; choose two paths")


def _positive(name: str, value: int | float | None) -> None:
    from recognizer.cli import CLIError

    if value is not None and value <= 0:
        raise CLIError(f"{name} {value}: expected a positive number")


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer run``."""
    from recognizer.cli import CLIError
    from recognizer.cli_image import load_recognizer
    from recognizer.pipeline import Pipeline, PipelineConfig, PipelineError
    from recognizer.sinks import SinkError
    from recognizer.sources import ReconnectPolicy, SourceError, open_source
    from recognizer.tracking import Tracker

    _positive("--batch", args.batch)
    _positive("--max-frames", args.max_frames)
    _positive("--fps", args.fps)
    _positive("--threads", args.threads)
    _positive("--workers", args.workers)
    if args.reconnect_timeout is not None and args.reconnect_timeout < 0:
        raise CLIError(f"--reconnect-timeout {args.reconnect_timeout}: expected seconds >= 0 (0 retries forever)")
    if not (args.show or args.save or args.dump or args.log):
        log.info("no --show/--save/--dump/--log given: only the summary will be printed")

    reconnect = ReconnectPolicy(timeout=None if args.reconnect_timeout == 0 else args.reconnect_timeout)
    try:
        source = open_source(args.source, fps=args.fps, reconnect=reconnect)
    except SourceError as exc:
        raise CLIError(str(exc), code=2) from exc
    check_output_paths(args)
    # Models before the source is opened: a camera should not sit open while weights load.
    recognizer = load_recognizer(args, video=True)
    workers, threads = choose_parallelism(getattr(getattr(recognizer, "device", None), "type", "cpu"), args.workers, args.threads)
    configure_threads(threads)

    outputs: Outputs | None = None
    summary: RunSummary | None = None
    failure: CLIError | None = None
    errors: list[BaseException] = []
    code = 0
    signals = _RunSignals()
    with signals.installed():
        try:
            try:
                source.open()
            except SourceError as exc:
                raise CLIError(str(exc), code=2) from exc
            try:
                outputs = _build_outputs(args, source.fps)
            except SinkError as exc:
                raise CLIError(str(exc), code=2) from exc
            config = PipelineConfig(batch_size=args.batch, workers=workers, live=args.live, max_frames=args.max_frames)
            pipeline = Pipeline(source, recognizer, tracker=Tracker(), config=config)
            if outputs.log is not None:
                try:
                    outputs.log.write(
                        {"type": "run", "source": source.describe(), "live": pipeline.live, "batch": args.batch, "workers": workers}
                    )
                except SinkError as exc:  # nothing was read yet: like a log that cannot be created
                    raise CLIError(str(exc), code=2) from exc
            total = source.frame_count
            if args.max_frames and (total is None or args.max_frames < total):
                total = args.max_frames
            progress = not args.no_progress and sys.stderr.isatty()
            mode = "live" if pipeline.live else "file"
            print(
                f"reading {source.kind} {source.name} ({mode} mode, {source.fps:.2f} fps; device {recognizer.device}, "
                f"{workers} inference worker(s), batch {args.batch})",
                file=sys.stderr,
            )
            try:
                summary = run_session(pipeline, outputs, progress=progress, total=total, hud=not args.no_hud)
                if summary.status == "completed" and summary.captured == 0:
                    summary.status = "failed"
                    failure = CLIError(f"source '{source.name}' had no frames: nothing was read (an empty video, or no readable image)", code=1)
            except KeyboardInterrupt as exc:
                summary = getattr(exc, "summary", None)
                code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
            except (PipelineError, SinkError) as exc:
                # Reported after the outputs are finalized and the summary is printed.
                summary = getattr(exc, "summary", None)
                failure = CLIError(str(exc), code=1)
                failure.__cause__ = exc
        except KeyboardInterrupt as exc:  # before the loop started (opening the source or outputs)
            code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        except CLIError as exc:
            failure = exc
        finally:
            with signals.closing():
                try:
                    if outputs is not None:
                        if summary is not None and failure is not None and summary.error is None:
                            summary.error = str(failure)
                        errors = outputs.finalize(summary)
                finally:
                    source.close()
    if errors and failure is None:
        failure = CLIError(str(errors[0]), code=1)
        failure.__cause__ = errors[0]
        if summary is not None and summary.status == "completed":
            summary.status = "failed"
    if summary is not None:
        print(summary.line())
        if outputs is not None:
            for sink in (outputs.video, outputs.dump, outputs.log):
                if sink is not None:
                    print(sink.status_line())
    if code:
        word = "terminated" if code == EXIT_TERMINATED else "interrupted"
        if failure is not None:
            print(f"recognizer: error: {failure}", file=sys.stderr)
            print(f"recognizer: {word}; the other outputs finalized", file=sys.stderr)
        else:
            print(f"recognizer: {word}; outputs finalized", file=sys.stderr)
        return code
    if failure is not None:
        raise failure
    return 0


def bench_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer bench``."""
    from recognizer.bench import main_bench

    return main_bench(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="read house numbers live from a webcam, video file, image folder or stream",
        description=(
            "Run the recognizer on every frame of SOURCE with a capture thread and an inference "
            "worker; track and smooth numbers across frames; show, save, dump or log the results."
        ),
    )
    p.add_argument("source", metavar="SOURCE", help="camera index (0), video file, folder or glob of images, or URL (http://, rtsp://)")
    add_model_arguments(p)
    g = p.add_argument_group("loop")
    g.add_argument("--batch", type=int, default=4, metavar="N", help="frames per inference call; files fill batches, live sources take what is ready (default: 4)")
    live = g.add_mutually_exclusive_group()
    live.add_argument("--live", dest="live", action="store_true", default=None, help="keep only the newest frame and drop the rest (default for cameras and streams; a file is then played in real time)")
    live.add_argument("--no-live", dest="live", action="store_false", help="never drop a frame (default for files and images)")
    g.add_argument("--fps", type=finite_float, metavar="F", help="frame rate to assume when the source's metadata has none or is wrong")
    g.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    g.add_argument("--workers", type=int, metavar="N", help="inference threads (default: 2 on a CPU with 2+ cores, 1 on CUDA)")
    g.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: cores / workers on the CPU)")
    g.add_argument("--reconnect-timeout", type=finite_float, default=30.0, metavar="S", help="give up on a lost camera/stream after S seconds (0: retry forever; default: 30)")
    o = p.add_argument_group("outputs")
    o.add_argument("--show", action="store_true", help="show a window (q or Esc quits, space pauses)")
    o.add_argument("--save", metavar="FILE", help="write the annotated video (.mp4, .avi, .mkv, .mov) at the input's frame rate")
    o.add_argument("--dump", metavar="DIR", help="write annotated frames and readings.jsonl to a new folder (headless)")
    o.add_argument("--log", metavar="FILE", help="JSON Lines log of per-frame readings and confirmed numbers, flushed per line")
    o.add_argument("--no-hud", action="store_true", help="do not draw the FPS/latency corner")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_command)

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
