"""The main-thread stage of the real-time loop, as library code.

A :class:`~recognizer.live.pipeline.Pipeline` reads, batches, recognizes and tracks frames on its
own threads; :func:`run_session` consumes its results on the calling thread: draws each one
(when a visual sink is open), hands it to its source's sinks, keeps the summary, and finalizes the
outputs (the video's last fragment, the summary as the log's last line) however the run ends.
It returns the :class:`RunSummary` in every case: completed, quit from the window, stopped by
Ctrl-C or SIGTERM, failed (``summary.error`` says why in one line).

    from recognizer.models.engine import Recognizer
    from recognizer.live.pipeline import Pipeline
    from recognizer.live.outputs import open_outputs
    from recognizer.live.session import run_session
    from recognizer.io.sources import open_source
    from recognizer.tracking import Tracker

    recognizer = Recognizer.from_checkpoints()
    with open_source("dashcam.mp4") as source:
        outputs = open_outputs(save="annotated.mp4", log="numbers.jsonl", fps=source.fps)
        summary = run_session(Pipeline(source, recognizer, trackers=Tracker()), outputs)
    print(summary.line())

Most programs start a run with :func:`recognizer.live.run.run`, which opens the sources and
outputs and calls :func:`run_session`.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from recognizer.live.outputs import Outputs
from recognizer.live.signals import RunSignals, Terminated, active_signals, deferred_interrupts
from recognizer.live.summary import RunSummary

if TYPE_CHECKING:
    from recognizer.output.sinks import Sink

__all__ = ["PipelineLike", "SourceSinks", "progress_bar", "run_guarded", "run_session"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the loop


class PipelineLike(Protocol):
    """The session's view of a :class:`~recognizer.live.pipeline.Pipeline`: its sources, how they
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
    """Consume a started-or-not :class:`~recognizer.live.pipeline.Pipeline` on this thread, then
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
    from recognizer.live.pipeline import PipelineError
    from recognizer.output.sinks import SinkError

    signals = active_signals()
    own = contextlib.nullcontext() if signals is not None else RunSignals(ignore_after=False).installed()
    with own:
        signals = active_signals()
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

    def __init__(self, summary: RunSummary, sinks: list[Sink], *, window: Sink | None = None, log: Sink | None = None,
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
        from recognizer.output.render import HudInfo, annotate

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
    from recognizer.output.sinks import SinkError
    from recognizer.types import SourceEnded

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
