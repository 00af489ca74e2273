"""The main-thread stage of the real-time loop, as library code.

A :class:`~recognizer.pipeline.Pipeline` reads, batches, recognizes and tracks frames on its
own threads; :func:`run_session` consumes its results on the calling thread: draws each one
(when a visual sink is open), hands it to every sink, keeps the summary, and finalizes the
outputs (the video's last fragment, the summary as the log's last line) however the run ends.
It returns the :class:`RunSummary` in every case: completed, quit from the window, stopped by
Ctrl-C or SIGTERM, failed (``summary.error`` says why in one line).

    from recognizer.engine import Recognizer
    from recognizer.pipeline import Pipeline
    from recognizer.session import open_outputs, run_session
    from recognizer.sources import open_source
    from recognizer.tracking import Tracker

    recognizer = Recognizer.from_checkpoints()
    with open_source("dashcam.mp4") as source:
        outputs = open_outputs(save="annotated.mp4", log="numbers.jsonl", fps=source.fps)
        summary = run_session(Pipeline(source, recognizer, tracker=Tracker()), outputs)
    print(summary.line())

Also here: the Ctrl-C/SIGTERM policy (a frame goes to every output or to none; a second
signal cannot cut the finalizing short) and the CPU thread settings of a run.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from recognizer.records import summary_record

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "LATENCY_WINDOW",
    "Delivery",
    "Outputs",
    "RunSignals",
    "RunSummary",
    "Terminated",
    "choose_parallelism",
    "configure_threads",
    "cpu_cores",
    "deferred_interrupts",
    "open_outputs",
    "run_guarded",
    "run_session",
]

log = logging.getLogger(__name__)

LATENCY_WINDOW = 50_000
"""Latencies kept for the summary/benchmark percentiles (the most recent frames)."""

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so outputs are finalized like on Ctrl-C."""


# --------------------------------------------------------------------------- outputs


@dataclass
class Outputs:
    """The sinks of a run (each optional). Each one takes every frame through
    ``emit(result, image)`` (see :class:`recognizer.sinks.Sink`); closed in a safe order."""

    window: Any = None  # WindowSink
    video: Any = None  # VideoSink
    dump: Any = None  # DumpSink
    log: Any = None  # JsonlLog
    numbers: Any = None  # NumbersSink: evidence, positions, known numbers (before the log: it adds to its records)

    def add_numbers(self, numbers: Any) -> None:
        """Use ``numbers`` (a :class:`~recognizer.sinks.numbers.NumbersSink`); the log's event
        records gain its fields."""
        self.numbers = numbers
        if self.log is not None:
            self.log.annotate = numbers.fields

    @property
    def sinks(self) -> list[Any]:
        """The open sinks, in the order a frame reaches them (the window last: it may end the run)."""
        return [s for s in (self.video, self.dump, self.numbers, self.log, self.window) if s is not None]

    @property
    def needs_drawing(self) -> bool:
        return self.window is not None or self.video is not None or self.dump is not None

    def status_lines(self) -> list[str]:
        """What each file output holds, for the end of a run."""
        return [s.status_line() for s in (self.video, self.dump, self.numbers, self.log) if s is not None]

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
        if self.numbers is not None:
            close(self.numbers, "evidence pictures and GeoJSON file")
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


def open_outputs(
    *,
    show: bool = False,
    save: str | os.PathLike[str] | None = None,
    dump: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    fps: float = 30.0,
    title: str = "recognizer",
    fragment_seconds: float = 1.0,
) -> Outputs:
    """Create the sinks asked for: a window, an annotated video at ``fps`` (a fragment every
    ``fragment_seconds`` of an .mp4/.mov), a frame dump folder, a JSON Lines log. Raises :class:`~recognizer.sinks.SinkError` (one line) when one cannot be
    created, after closing those already made (nothing is left half open)."""
    from recognizer.sinks import DumpSink, JsonlLog, VideoSink, WindowSink

    outputs = Outputs()
    try:
        if show:
            outputs.window = WindowSink(title)
        if save:
            outputs.video = VideoSink(save, fps, fragment_seconds=fragment_seconds)
        if dump:
            outputs.dump = DumpSink(dump)
            outputs.dump.open()
        if log:
            outputs.log = JsonlLog(log)
            outputs.log.open()
    except BaseException:
        outputs.close()
        raise
    return outputs


# --------------------------------------------------------------------------- summary


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
        error: why a failed run failed (one line), else None; also set when an output could
            not be finalized after an interrupted run.
        latencies_ms: capture-to-display latency (ms) of the last :data:`LATENCY_WINDOW`
            frames (bounded, so an overnight run does not grow in memory).
        stage_seconds: total seconds per stage (main-thread stages measured here).
        exception: what ended a failed or interrupted run (a
            :class:`~recognizer.pipeline.PipelineError`, :class:`~recognizer.sinks.SinkError`,
            :class:`KeyboardInterrupt`), for callers that map it to their own errors; not logged.
        name: the source's name, for the summary of one source of a run of several
            (:mod:`recognizer.multisession`); None for a whole run.
        sources: in a run of several sources, the summary of each (the whole run's figures
            are their sums); empty otherwise.
        warnings: what the source reported about itself (a video that ends far before the
            frame count it declares); logged as ``warnings`` in the summary record.
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
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    name: str | None = None
    sources: list[RunSummary] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100, linear interpolation) of the capture-to-display
        latency, None without frames. The benchmarks report theirs through here too."""
        if not self.latencies_ms:
            return None
        import numpy as np

        return float(np.percentile(np.asarray(self.latencies_ms, dtype=np.float64), q))

    @property
    def stopped_by_signal(self) -> bool:
        return self.status in ("interrupted", "terminated")

    @property
    def exit_code(self) -> int:
        """The process exit status of a command that ran this session: 0 completed or quit,
        130 Ctrl-C, 143 SIGTERM, 1 failed."""
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status == "terminated":
            return EXIT_TERMINATED
        return 1 if self.status == "failed" else 0

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.name is not None:  # one source of several: its latency too
            p95 = self.latency_ms(95)
            extra["latency_p95_ms"] = None if p95 is None else round(p95, 1)
        if self.warnings:
            extra["warnings"] = list(self.warnings)
        return summary_record(
            status=self.status, frames=self.frames, captured=self.captured, dropped=self.dropped,
            seconds=self.seconds, fps=self.fps, confirmed=self.confirmed, error=self.error,
            source=self.name, **extra,
        )

    def line(self) -> str:
        numbers = ", ".join(self.confirmed) if self.confirmed else "none"
        if self.name is None:
            return (
                f"{self.status}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), "
                f"dropped {self.dropped}, house numbers confirmed: {len(self.confirmed)} ({numbers})"
            )
        p95 = self.latency_ms(95)
        latency = "n/a" if p95 is None else f"{p95:.0f} ms"
        line = (
            f"{self.name}: {self.status}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), "
            f"dropped {self.dropped}, latency p95 {latency}, house numbers confirmed: {len(self.confirmed)} ({numbers})"
        )
        return line if self.error is None else f"{line}; {self.error}"


# --------------------------------------------------------------------------- the loop


def delivered(bar: Any, dropped: int | None, outputs: Outputs, summary: RunSummary, pipeline: Any) -> bool:
    """After a frame reached the sinks: advance the progress bar (with the drops of a live run)
    and see whether the window asked to quit (the run then ends as "quit"); True to stop."""
    if bar is not None:
        bar.update(1)
        if dropped is not None:
            bar.set_postfix(dropped=dropped, refresh=False)
    if outputs.window is not None and outputs.window.quit:
        summary.status = "quit"
        pipeline.stop()
        return True
    return False


def progress_bar(total: int | None, live: bool, enabled: bool) -> Any:
    """A tqdm bar (ETA when the total is known) or a no-op stand-in."""
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=None if live else total, unit="frame", dynamic_ncols=True, leave=True, file=sys.stderr)


def run_session(
    pipeline: Any,
    outputs: Outputs | None = None,
    *,
    progress: bool = False,
    total: int | None = None,
    hud: bool = True,
) -> RunSummary:
    """Consume a started-or-not :class:`~recognizer.pipeline.Pipeline` on this thread, then
    finalize ``outputs``; returns the summary however the run ended.

    Each result is drawn (when a visual sink is open) and given to every sink; Ctrl-C and
    SIGTERM stop the run between two frames (status "interrupted"/"terminated"), a failed
    stage or output ends it with status "failed" and ``error``, a source that gave no frame is
    a failed run. The pipeline is closed (threads stopped) before the outputs are finalized;
    the caller closes the source. Only an unexpected exception (a bug) is raised, after the
    outputs were finalized.
    """
    outputs = outputs if outputs is not None else Outputs()
    summary = RunSummary()

    def body() -> None:
        try:
            _loop(pipeline, outputs, summary, progress=progress, total=total, hud=hud)
        finally:
            found = getattr(getattr(pipeline, "source", None), "warnings", None)
            summary.warnings.extend(found if isinstance(found, list) else [])
        if summary.status == "completed" and summary.captured == 0:
            summary.status = "failed"
            name = getattr(getattr(pipeline, "source", None), "name", "?")
            summary.error = f"source '{name}' had no frames: nothing was read (an empty video, or no readable image)"

    return run_guarded(summary, body, outputs.finalize)


def run_guarded(summary: RunSummary, body: Callable[[], None], finalize: Callable[[RunSummary], list[BaseException]]) -> RunSummary:
    """Run a session's ``body`` (its frame loop) under the Ctrl-C/SIGTERM policy, map how it
    ended to ``summary.status``/``error``, then ``finalize(summary)`` (the outputs; signals are
    ignored meanwhile; its errors fail a completed run). Only an unexpected exception (a bug)
    is raised, after finalizing."""
    from recognizer.pipeline import PipelineError
    from recognizer.sinks import SinkError

    signals = _ACTIVE_SIGNALS
    own = contextlib.nullcontext() if signals is not None else RunSignals(ignore_after=False).installed()
    with own:
        signals = _ACTIVE_SIGNALS
        unexpected: BaseException | None = None
        errors: list[BaseException] = []
        try:
            try:
                body()
            except KeyboardInterrupt as exc:
                summary.status = "terminated" if isinstance(exc, Terminated) else "interrupted"
                summary.exception = exc
            except (PipelineError, SinkError) as exc:
                summary.status, summary.error, summary.exception = "failed", str(exc), exc
            except BaseException as exc:
                summary.status, summary.error, summary.exception = "failed", f"{type(exc).__name__}: {exc}", exc
                unexpected = exc
        finally:
            with signals.closing() if signals is not None else contextlib.nullcontext():
                errors = finalize(summary)
        if errors:
            if summary.status == "completed":
                summary.status = "failed"
            if summary.error is None:
                summary.error = str(errors[0])
    if unexpected is not None:
        raise unexpected
    return summary


class Delivery:
    """The main-thread stage of one source: draw a result (when a visual sink is open), hand it
    to the source's sinks and its window, count it in ``summary``.

    Shared by :func:`run_session` (one source) and :mod:`recognizer.multisession` (one per
    source). ``stage`` gathers seconds per stage ("draw", "show", "write", "log"); a frame goes
    to every file sink or to none (Ctrl-C/SIGTERM wait for the end of its writes).
    """

    def __init__(self, summary: RunSummary, sinks: list[Any], *, window: Any = None, log: Any = None,
                 draw: bool, hud: bool, stage: dict[str, float]) -> None:
        self.summary = summary
        self.sinks = [s for s in sinks if s is not window]
        self.window = window
        self.draw = draw
        self.hud = hud
        self.stage = stage
        # Seconds per stage, by sink: the log's time is "log", files' "write".
        self._stage_of = {id(log): "log"}
        # FPS over the last frames shown: batches arrive in bursts, so a rate between two
        # consecutive frames would jump; a window of 30 frames smooths that out.
        self._shown_at: deque[float] = deque(maxlen=30)

    def deliver(self, result: Any, dropped: int | None) -> None:
        from recognizer.render import HudInfo, annotate

        stage = self.stage
        now = time.monotonic()
        self._shown_at.append(now)
        span = self._shown_at[-1] - self._shown_at[0]
        fps_now = (len(self._shown_at) - 1) / span if span > 0 else None
        image = None
        if self.draw:
            t0 = time.perf_counter()
            info = None
            if self.hud:
                info = HudInfo(fps=fps_now, latency_ms=(now - result.captured_at) * 1000.0,
                               frame_index=result.frame.index, dropped=dropped)
            image = annotate(result.frame.image, result.readings, result.update, info)
            stage["draw"] += time.perf_counter() - t0
        # A frame goes to every file output or to none: Ctrl-C/SIGTERM during these
        # writes takes effect after them (the video never holds a frame the log lacks).
        with deferred_interrupts():
            for sink in self.sinks:
                t0 = time.perf_counter()
                sink.emit(result, image)
                stage[self._stage_of.get(id(sink), "write")] += time.perf_counter() - t0
            if result.update is not None:
                self.summary.confirmed.extend(ev.text for ev in result.update.confirmed)
            self.summary.frames += 1
        if self.window is not None:
            t0 = time.perf_counter()
            self.window.emit(result, image)
            stage["show"] += time.perf_counter() - t0
        self.summary.latencies_ms.append((time.monotonic() - result.captured_at) * 1000.0)


def _loop(pipeline: Any, outputs: Outputs, summary: RunSummary, *, progress: bool, total: int | None, hud: bool) -> None:
    """The frame loop of :func:`run_session`; fills ``summary`` as it goes, raises what stops it."""
    from recognizer.sinks import SinkError

    stage = summary.stage_seconds
    for key in ("draw", "show", "write", "log"):
        stage[key] = 0.0
    delivery = Delivery(summary, outputs.sinks, window=outputs.window, log=outputs.log,
                        draw=outputs.needs_drawing, hud=hud, stage=stage)
    t_start = time.monotonic()
    bar_cm = progress_bar(total, pipeline.live, progress)
    finished = False
    try:
        with pipeline, bar_cm as bar:
            for result in pipeline:
                delivery.deliver(result, pipeline.stats.dropped if pipeline.live else None)
                if delivered(bar, pipeline.stats.dropped if pipeline.live else None, outputs, summary, pipeline):
                    break
        finished = True
    finally:
        summary.seconds = time.monotonic() - t_start
        summary.captured = pipeline.stats.captured
        summary.dropped = pipeline.stats.dropped
        stage["infer"] = pipeline.stats.infer_seconds
        stage["track"] = pipeline.stats.track_seconds
        # The tracks still open at the end get their final frame range in the log too.
        tracker = getattr(pipeline, "tracker", None)
        log_open = outputs.log is not None and not getattr(outputs.log, "failed", False)
        if tracker is not None and (log_open or outputs.numbers is not None):
            try:
                ended_now = tracker.finish()
                if outputs.numbers is not None:
                    outputs.numbers.finish(ended_now)
                for ended in ended_now if log_open else ():
                    outputs.log.write_event(ended)
            except SinkError:
                if finished:  # else the error already on its way wins
                    raise


# --------------------------------------------------------------------------- signals


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


class RunSignals:
    """Ctrl-C (SIGINT) and SIGTERM while a run runs (main thread only).

    The first one stops the run: :class:`KeyboardInterrupt` (SIGINT) or :class:`Terminated`
    (SIGTERM) is raised on the main thread, or at the end of a :meth:`deferred` block when it
    came inside one (one frame's writes to the outputs are never split). Every later signal,
    and any signal once the outputs are being finalized (:meth:`closing`), is ignored: a second
    Ctrl-C cannot cut the finalizing short.

    ``ignore_after`` (the command line): once a signal was seen, SIGINT and SIGTERM stay ignored
    (``SIG_IGN``) after the run until the process ends, so a signal in the interpreter's
    teardown cannot kill the process after the outputs were finalized and the exit status stays
    130/143. Otherwise (library use) the previous handlers are restored.
    """

    def __init__(self, *, ignore_after: bool = True) -> None:
        self.ignore_after = ignore_after
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
                signal.signal(signum, signal.SIG_IGN if self.seen and self.ignore_after else old)

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


_ACTIVE_SIGNALS: RunSignals | None = None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM during the block and raise them (KeyboardInterrupt / Terminated) at
    its end, so one frame's writes to the outputs are never split (main thread only).

    Inside a run with :class:`RunSignals` installed this is :meth:`RunSignals.deferred`;
    elsewhere handlers are installed for the block alone.
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


# --------------------------------------------------------------------------- threads


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
