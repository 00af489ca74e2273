"""The main-thread stage of the real-time loop, as library code.

A :class:`~recognizer.pipeline.Pipeline` reads, batches, recognizes and tracks frames on its
own threads; :func:`run_session` consumes its results on the calling thread: draws each one
(when a visual sink is open), hands it to its source's sinks, keeps the summary, and finalizes the
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
        summary = run_session(Pipeline(source, recognizer, trackers=Tracker()), outputs)
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from recognizer.records import summary_record

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "LATENCY_WINDOW",
    "Outputs",
    "PipelineLike",
    "RunSignals",
    "RunSummary",
    "SourceOutputs",
    "SourceSinks",
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
class SourceOutputs:
    """The files of one source: an annotated video and a frame dump (each optional)."""

    video: Any = None  # VideoSink
    dump: Any = None  # DumpSink

    @property
    def sinks(self) -> list[Any]:
        return [s for s in (self.video, self.dump) if s is not None]

    def finalize(self) -> list[BaseException]:
        """Close the video, then the dump; the errors met, each one line."""
        return _close_all([(self.video, "video"), (self.dump, "dump")])


@dataclass
class Outputs:
    """The sinks of a run, each optional: per source a video and a frame dump; shared by the
    sources, a JSON Lines log (whose lines name their source when there are several), the
    numbers sink (evidence, positions, known numbers) and a window (tiled with several sources).

    Each sink takes every frame of its sources through ``emit(result, image)`` (see
    :class:`recognizer.sinks.Sink`); they are closed in a safe order (:meth:`finalize`).
    """

    window: Any = None  # WindowSink or TiledWindow
    log: Any = None  # JsonlLog
    numbers: Any = None  # NumbersSink (before the log: it adds to its records)
    per_source: list[SourceOutputs] = field(default_factory=list)
    _finished: set[int] = field(default_factory=set, repr=False)

    def own(self, index: int) -> SourceOutputs:
        """Source ``index``'s video and dump (none when not asked for)."""
        return self.per_source[index] if index < len(self.per_source) else SourceOutputs()

    @property
    def video(self) -> Any:
        """The first (with one source: the) source's video sink, or None."""
        return self.own(0).video

    @property
    def dump(self) -> Any:
        """The first (with one source: the) source's dump sink, or None."""
        return self.own(0).dump

    def add_numbers(self, numbers: Any) -> None:
        """Use ``numbers`` (a :class:`~recognizer.sinks.numbers.NumbersSink`); the log's event
        records gain its fields."""
        self.numbers = numbers
        if self.log is not None:
            self.log.annotate = numbers.fields

    def sinks_for(self, index: int) -> list[Any]:
        """The sinks a frame of source ``index`` reaches, in order (the window last: it may end the run)."""
        shared = [s for s in (self.numbers, self.log, self.window) if s is not None]
        return self.own(index).sinks + shared

    def needs_drawing(self, index: int = 0) -> bool:
        """A frame of source ``index`` is drawn: it goes to a window, a video or a dump."""
        return self.window is not None or bool(self.own(index).sinks)

    def status_lines(self) -> list[str]:
        """What each file output holds, for the end of a run."""
        own = [s for o in self.per_source for s in o.sinks]
        return [s.status_line() for s in own + [self.numbers, self.log] if s is not None]

    def log_open(self) -> bool:
        """A log was asked for and has not failed."""
        return self.log is not None and not getattr(self.log, "failed", False)

    def finish_source(self, index: int, summary: RunSummary) -> list[BaseException]:
        """Finalize source ``index``'s video and dump (a failure there fails its summary), then
        log its summary; once per source, in a run of several. Returns the errors of its own
        outputs; an error of the shared log is raised (:class:`~recognizer.sinks.SinkError`)."""
        if index in self._finished:
            return []
        self._finished.add(index)
        errors = self.own(index).finalize()
        if errors and summary.status == "completed":
            summary.status, summary.error = "failed", str(errors[0])
        if self.log_open():
            self.log.write(summary.to_dict())
        return errors

    def close(self) -> None:
        """Finalize every sink; an error in one does not stop the others from closing (the
        first is raised after)."""
        errors = self.finalize()
        if errors:
            raise errors[0]

    def finalize(self, summary: RunSummary | None = None) -> list[BaseException]:
        """Close each source's video and dump (logging each source's summary in a run of
        several), the numbers sink, write ``summary`` as the log's last line, close the log and
        the window.

        Every sink is closed whatever the others do; the errors met (one-line
        :class:`~recognizer.sinks.SinkError` for anything a sink raises) are returned in order.
        An output that fails only while being finalized turns a completed ``summary`` into a
        failed one before it is logged.
        """
        from recognizer.sinks import SinkError

        errors: list[BaseException] = []
        for i, own in enumerate(self.per_source):
            if summary is not None and i < len(summary.sources):
                try:
                    errors.extend(self.finish_source(i, summary.sources[i]))
                except SinkError as exc:
                    errors.append(exc)
            elif i not in self._finished:
                self._finished.add(i)
                errors.extend(own.finalize())
        errors.extend(_close_all([(self.numbers, "evidence pictures and GeoJSON file")]))
        if summary is not None and errors and summary.status == "completed":
            summary.status, summary.error = "failed", str(errors[0])
        if summary is not None and self.log_open():
            try:
                self.log.write(summary.to_dict())
            except SinkError as exc:
                errors.append(exc)
        errors.extend(_close_all([(self.log, "log"), (self.window, "window")]))
        return errors


def _close_all(sinks: list[tuple[Any, str]]) -> list[BaseException]:
    """Close each ``(sink, what)`` (None skipped) whatever the others do; the errors, one line each."""
    from recognizer.sinks import SinkError

    errors: list[BaseException] = []
    for sink, what in sinks:
        if sink is None:
            continue
        try:
            sink.close()
        except SinkError as exc:
            errors.append(exc)
        except Exception as exc:  # noqa: BLE001 - any other failure is still one line
            errors.append(SinkError(f"cannot finish the {what}: {exc}"))
    return errors


def open_outputs(
    *,
    show: bool = False,
    save: str | os.PathLike[str] | None = None,
    dump: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    fps: float | Sequence[float] = 30.0,
    title: str = "recognizer",
    fragment_seconds: float = 1.0,
    names: Sequence[str] | None = None,
) -> Outputs:
    """Create the sinks asked for: a window (tiled with several sources), per source an
    annotated video at its ``fps`` (a fragment every ``fragment_seconds`` of an .mp4/.mov) and a
    frame dump folder, one JSON Lines log. With several ``names`` each source's paths come from
    :func:`~recognizer.source_names.per_source_path` (``out.mp4`` -> ``out_left.mp4``).

    Raises :class:`~recognizer.sinks.SinkError` (one line) when one cannot be created, after
    closing those already made (nothing is left half open)."""
    from recognizer.sinks import DumpSink, JsonlLog, TiledWindow, VideoSink, WindowSink
    from recognizer.source_names import per_source_path

    names = list(names) if names else [""]
    several = len(names) > 1
    rates = [float(fps)] * len(names) if isinstance(fps, (int, float)) else list(fps)
    outputs = Outputs()
    try:
        if show:
            outputs.window = TiledWindow(names, title) if several else WindowSink(title)
        for name, rate in zip(names, rates):
            own = SourceOutputs()
            outputs.per_source.append(own)
            if save:
                own.video = VideoSink(per_source_path(save, name) if several else save, rate, fragment_seconds=fragment_seconds)
            if dump:
                own.dump = DumpSink(per_source_path(dump, name) if several else dump)
                own.dump.open()
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
        started: False when the run never got to its frame loop (a source or output that could
            not be opened: ``status`` failed and ``exception`` the error, or a signal during the
            setup); see :func:`recognizer.runner.run`.
        reader: the reader mode that ran (``digits``, ``fast``, ``accurate``).
        text_stats: what each source's text reader did (its checker's stats), if one ran.
        outputs: what each file output holds, one line each, for the end of a run.
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
    started: bool = True
    reader: str = "digits"
    text_stats: list[Any] = field(default_factory=list, repr=False)
    outputs: list[str] = field(default_factory=list, repr=False)

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


class PipelineLike(Protocol):
    """The session's view of a :class:`~recognizer.pipeline.Pipeline`: its sources, how they
    run, their counters, and the iteration of results and source ends."""

    names: list[str]
    sources: list[Any]
    live: bool

    @property
    def stats(self) -> Any: ...

    def source_stats(self, index: int) -> Any: ...

    def source_live(self, index: int) -> bool: ...

    def end_remaining(self) -> list[Any]: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...

    def __iter__(self) -> Iterator[Any]: ...


def _after_frame(bar: Any, dropped: int | None, outputs: Outputs, summary: RunSummary, pipeline: PipelineLike) -> bool:
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
    pipeline: PipelineLike,
    outputs: Outputs | None = None,
    *,
    progress: bool = False,
    total: int | None = None,
    hud: bool = True,
    on_frame: Callable[[Any], None] | None = None,
    on_source_end: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Consume a started-or-not :class:`~recognizer.pipeline.Pipeline` on this thread, then
    finalize ``outputs``; returns the summary however the run ended.

    Each result is drawn (when a visual sink of its source is open) and given to its source's
    sinks; Ctrl-C and SIGTERM stop the run between two frames (status
    "interrupted"/"terminated"), a failed stage or output ends it with status "failed" and
    ``error``, a source that gave no frame is a failed run. The pipeline is closed (threads
    stopped) before the outputs are finalized; the caller closes the sources. Only an
    unexpected exception (a bug) is raised, after the outputs were finalized.

    With several sources, ``summary.sources`` holds one summary per source (the whole run's
    figures are their sums). A source that ends is finished at once (its tracks logged, its
    video and dump finalized, its summary logged) and ``on_source_end`` is called with its
    summary (status "completed", or "failed" with ``error``); the others go on. The run's status
    is then "failed" when a source failed. ``on_frame`` is called with each result after it
    reached every sink.
    """
    outputs = outputs if outputs is not None else Outputs()
    summary = RunSummary()
    several = len(pipeline.names) > 1
    if several:
        summary.sources = [RunSummary(name=name) for name in pipeline.names]

    def body() -> None:
        _loop(pipeline, outputs, summary, progress=progress, total=total, hud=hud, on_frame=on_frame,
              on_source_end=on_source_end)
        if summary.status != "completed":
            return
        failed = [s for s in summary.sources if s.status == "failed"]
        if failed:
            more = f" (and {len(failed) - 1} more source(s))" if len(failed) > 1 else ""
            summary.status, summary.error = "failed", f"source '{failed[0].name}': {failed[0].error}{more}"
        elif not several and summary.captured == 0:
            summary.status, summary.error = "failed", _no_frames(pipeline.sources[0])

    def finalize(overall: RunSummary) -> list[BaseException]:
        for s in overall.sources:
            if s.status == "running":  # still going when the run ended
                s.status = overall.status
                s.error = overall.error if overall.status == "failed" else None
        return outputs.finalize(overall)

    return run_guarded(summary, body, finalize)


def _no_frames(source: Any) -> str:
    return f"source '{getattr(source, 'name', '?')}' had no frames: nothing was read (an empty video, or no readable image)"


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


class SourceSinks:
    """The main-thread stage of one source: draw a result (when a visual sink is open), send it
    to the source's sinks and the window, count it in the source's ``summary``.

    ``stage`` gathers seconds per stage ("draw", "show", "write", "log"); a frame goes to every
    file sink or to none (Ctrl-C/SIGTERM wait for the end of its writes).
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

    def send(self, result: Any, dropped: int | None) -> None:
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


def _loop(pipeline: PipelineLike, outputs: Outputs, summary: RunSummary, *, progress: bool, total: int | None,
          hud: bool, on_frame: Callable[[Any], None] | None, on_source_end: Callable[[RunSummary], None] | None) -> None:
    """The frame loop of :func:`run_session`; fills the summaries as it goes, raises what stops it."""
    from recognizer.pipeline import SourceEnded
    from recognizer.sinks import SinkError

    several = bool(summary.sources)
    per = summary.sources if several else [summary]
    stage = summary.stage_seconds
    for key in ("draw", "show", "write", "log"):
        stage[key] = 0.0
    for s in summary.sources:
        s.status = "running"
    feeds = [
        SourceSinks(s, outputs.sinks_for(i), window=outputs.window, log=outputs.log,
                    draw=outputs.needs_drawing(i), hud=hud, stage=stage)
        for i, s in enumerate(per)
    ]
    t_start = time.monotonic()

    def figures(i: int) -> None:
        s, stats = per[i], pipeline.source_stats(i)
        s.seconds, s.captured, s.dropped = time.monotonic() - t_start, stats.captured, stats.dropped

    def close_tracks(end: SourceEnded) -> None:
        """The source's tracks closed at its end get their final frame range in the outputs."""
        if outputs.numbers is not None:
            outputs.numbers.finish(end.tracks)
        if outputs.log_open():
            for track in end.tracks:
                outputs.log.write_event(track, end.name if several else None)

    def source_ended(end: SourceEnded) -> None:
        figures(end.index)
        close_tracks(end)
        if not several:  # the run's own end: the loop's end or its failure says how it went
            return
        s = per[end.index]
        s.status = "completed"
        if end.error is not None:
            s.status, s.error, s.exception = "failed", f"capture failed: {end.error}", end.exception
        elif s.captured == 0:
            s.status, s.error = "failed", _no_frames(pipeline.sources[end.index])
        outputs.finish_source(end.index, s)  # its own outputs' errors fail its summary only
        if outputs.window is not None:
            outputs.window.mark(end.index, "failed" if s.status == "failed" else "ended")
        if on_source_end is not None:
            on_source_end(s)

    bar_cm = progress_bar(total, pipeline.live, progress)
    finished = False
    try:
        with pipeline, bar_cm as bar:
            for item in pipeline:
                if isinstance(item, SourceEnded):
                    source_ended(item)
                    continue
                i = item.source_index
                dropped = pipeline.source_stats(i).dropped if pipeline.source_live(i) else None
                feeds[i].send(item, dropped)
                if on_frame is not None:
                    on_frame(item)
                if several and bar is not None:
                    dropped = pipeline.stats.dropped if pipeline.live else None
                if _after_frame(bar, dropped, outputs, summary, pipeline):
                    break
        finished = True
    finally:
        totals = pipeline.stats
        summary.seconds = time.monotonic() - t_start
        summary.captured, summary.dropped = totals.captured, totals.dropped
        stage["infer"] = totals.infer_seconds
        stage["track"] = totals.track_seconds
        for s, source in zip(per, pipeline.sources):
            found = getattr(source, "warnings", None)
            s.warnings.extend(found if isinstance(found, list) else [])
        try:  # the tracks still open at the end get their final frame range in the log too
            for end in pipeline.end_remaining():
                if several:
                    figures(end.index)
                close_tracks(end)
        except SinkError:
            if finished:  # else the error already on its way wins
                raise
        if several:
            summary.frames = sum(s.frames for s in per)
            summary.confirmed = [text for s in per for text in s.confirmed]
            for s in per:
                summary.latencies_ms.extend(s.latencies_ms)


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
