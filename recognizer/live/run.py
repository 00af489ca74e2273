"""One way to start a run: open the sources and outputs, run the frame loop, close everything.

:func:`run` is what ``recognizer run``, the demo, a batch job and the benchmark call, and what a
program using the library calls::

    from recognizer.models.engine import Recognizer
    from recognizer.live.run import run
    from recognizer.io.sources import open_source

    recognizer = Recognizer.from_checkpoints()
    summary = run(open_source("dashcam.mp4"), recognizer, save="annotated.mp4", log="numbers.jsonl")
    print(summary.line())            # completed: 900 frames in 14.2 s ..., house numbers confirmed: ...

    summary = run([open_source("0"), open_source("rtsp://gate-2/stream")], recognizer,
                  names=["gate1", "gate2"], show=True, log="gates.jsonl")
    for s in summary.sources:        # one summary per source
        print(s.line())

It returns the :class:`~recognizer.live.summary.RunSummary` however the run ended, and raises only
on a bug: a source or output that cannot be opened is a failed summary with ``started``
False (``exception`` holds the :class:`~recognizer.io.sources.SourceError` or
:class:`~recognizer.output.sinks.SinkError`); Ctrl-C or SIGTERM during the setup is an "interrupted"
or "terminated" one. The log's first line is one run record with the pipeline's fields
(sources, ``live``, ``batch``, ``workers``, ``reader``) plus the caller's.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from recognizer.io.sources import Source
from recognizer.live.outputs import Outputs, open_outputs
from recognizer.live.pipeline import Pipeline, PipelineConfig, RecognizerLike
from recognizer.live.session import run_session
from recognizer.live.signals import RunSignals, Terminated, active_signals
from recognizer.live.summary import RunSummary
from recognizer.output.records import run_record
from recognizer.tracking import Tracker
from recognizer.types import FrameResult

__all__ = ["run"]


def run(
    sources: Source | Sequence[Source],
    recognizer: RecognizerLike,
    *,
    names: Sequence[str] | None = None,
    config: PipelineConfig | None = None,
    track: bool = True,
    reader: str = "digits",
    text_reader: Any = None,
    show: bool = False,
    window: Any = None,
    save: str | os.PathLike[str] | None = None,
    dump: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    title: str | None = None,
    fragment_seconds: float = 1.0,
    numbers: Callable[[], Any] | None = None,
    record: dict[str, Any] | None = None,
    progress: bool = False,
    hud: bool = True,
    on_start: Callable[[Pipeline], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_source_end: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Run ``sources`` (created, not yet opened) through ``recognizer`` to their end.

    Args:
        sources: one source or several; several share each batch and each keeps its own
            tracker, video, dump and summary (``names``: theirs, default ``src0``, ...).
        config: the pipeline's settings (batch, workers, live, max_frames, ...).
        track: a :class:`~recognizer.tracking.Tracker` per source (False: readings only).
        reader: ``digits`` (our models alone), ``fast`` or ``accurate``: with ``text_reader``
            (a :class:`recognizer.models.textreader.TextReader`), each source's tracks are also read
            by it (:func:`recognizer.live.textworker.make_checker`); a file read without a window
            is read synchronously, on its own clock, so the same file gives the same log.
        show, window: a window (tiled with several sources); or ``window``, a window-like
            sink to use instead (a benchmark's null display).
        save, dump, log, title, fragment_seconds: the outputs
            (:func:`~recognizer.live.outputs.open_outputs`).
        numbers: makes the numbers sink (evidence, positions, known numbers), opened with the
            outputs.
        record: fields the caller adds to the run record.
        progress: a progress bar on stderr (with an ETA when the frame count is known).
        on_start: called with the pipeline once everything is open, before the first frame.
        on_frame: called with each frame's result after it reached every sink.
        on_source_end: called with a source's summary when it ends (several sources).

    Ctrl-C and SIGTERM follow the :class:`~recognizer.live.signals.RunSignals` installed by the
    caller (the command line installs its own); without one, one is installed for the run and
    the previous handlers are restored after.
    """
    srcs = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    config = config or PipelineConfig()
    active = active_signals()
    signals = active if active is not None else RunSignals(ignore_after=False)
    with signals.installed() if active is None else contextlib.nullcontext():
        outputs: Outputs | None = None
        pipeline: Pipeline | None = None
        opened: list[Source] = []
        checkers: list[Any] = []
        try:
            try:
                srcs = _open_sources(srcs, opened)
                offline = not any(config.live_for(s) for s in srcs) and not (show or window is not None)
                from recognizer.live.textworker import make_checker

                checkers = [make_checker(reader, text_reader, synchronous=offline) for _ in srcs]
                mode = reader if any(c is not None for c in checkers) else "digits"
                pipeline = Pipeline(srcs, recognizer, names=names, trackers=[Tracker() if track else None for _ in srcs],
                                    text_checkers=checkers, config=config)
                several = len(srcs) > 1
                outputs = open_outputs(show=show and window is None, save=save, dump=dump, log=log,
                                       fps=[s.fps for s in srcs], names=pipeline.names, fragment_seconds=fragment_seconds,
                                       title=title or (f"recognizer - {', '.join(pipeline.names)}" if several else "recognizer"))
                if window is not None:
                    outputs.window = window
                if numbers is not None:
                    outputs.add_numbers(numbers())
                if outputs.log is not None:  # nothing was read yet: a failure is like a log that cannot be created
                    outputs.log.write(_run_record(pipeline, config, mode, record or {}))
                if on_start is not None:
                    on_start(pipeline)
            except BaseException as exc:  # the loop never ran: close what was opened, report it
                return _setup_failed(exc, signals, outputs, pipeline, checkers)
            summary = run_session(pipeline, outputs, progress=progress, total=_total(srcs, config), hud=hud,
                                  on_frame=on_frame, on_source_end=on_source_end)
            summary.reader = mode
            summary.text_stats = [c.stats for c in checkers if c is not None]
            summary.outputs = outputs.status_lines()
            return summary
        finally:
            with signals.closing():
                for source in opened:
                    source.close()


def _open_sources(sources: list[Source], opened: list[Source]) -> list[Source]:
    """Open each source (appending it to ``opened`` for closing). With several, one that cannot
    be opened is reported like a source lost for good and the others run; the first error is
    raised when none opens (or the only one does not)."""
    from recognizer.io.names import UnopenedSource
    from recognizer.io.sources import SourceError

    out: list[Source] = []
    errors: list[SourceError] = []
    for source in sources:
        opened.append(source)
        try:
            source.open()
            out.append(source)
        except SourceError as exc:
            if len(sources) == 1:
                raise
            errors.append(exc)
            out.append(UnopenedSource(source, exc))
    if errors and len(errors) == len(sources):
        raise errors[0]
    return out


def _run_record(pipeline: Pipeline, config: PipelineConfig, reader: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The log's first line: the source (or every source by name, with the live mode each runs
    in), then ``live``, ``batch``, ``workers``, ``reader`` and the caller's ``fields``."""
    common = {"batch": config.batch_size, "workers": config.workers, "reader": reader, **fields}
    if len(pipeline.sources) == 1:
        return run_record(pipeline.sources[0].describe(), live=pipeline.live, **common)
    described = {name: {**src.describe(), "live": pipeline.source_live(i)}
                 for i, (name, src) in enumerate(zip(pipeline.names, pipeline.sources))}
    return run_record(None, sources=described, **common)


def _total(sources: list[Source], config: PipelineConfig) -> int | None:
    """Frames the run will process when every source says how many it has (for an ETA)."""
    cap = config.max_frames
    counts = [getattr(s, "frame_count", None) for s in sources]
    counts = [min(c, cap) if c is not None and cap else c if c is not None else cap for c in counts]
    return None if None in counts else sum(counts)


def _setup_failed(exc: BaseException, signals: RunSignals, outputs: Outputs | None, pipeline: Pipeline | None,
                  checkers: list[Any]) -> RunSummary:
    """The summary of a run whose loop never ran; whatever was opened is closed first."""
    from recognizer.io.sources import SourceError
    from recognizer.output.sinks import SinkError

    with signals.closing():
        try:
            if outputs is not None:
                outputs.finalize(None)
        finally:
            if pipeline is not None:
                pipeline.close()
            else:
                for checker in checkers:
                    if checker is not None:
                        checker.close()
    summary = RunSummary(started=False, exception=exc)
    if isinstance(exc, KeyboardInterrupt):
        summary.status = "terminated" if isinstance(exc, Terminated) else "interrupted"
        return summary
    if not isinstance(exc, (SourceError, SinkError)):
        raise exc
    summary.status, summary.error = "failed", str(exc)
    return summary
