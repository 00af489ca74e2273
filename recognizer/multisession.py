"""The main-thread stage of a run of several sources, as library code.

A :class:`~recognizer.multiplex.MultiPipeline` reads every source and batches their frames
through one model; :func:`run_multi_session` consumes its results on the calling thread and
routes each to its own source's outputs: a video and a frame dump per source, one shared log
whose every line names its source, one window with the sources tiled. Each source has its
summary (frames, dropped, FPS, latency p95, numbers confirmed), written to the log when the
source ends; the whole run's comes last. A source that ends or fails is finished at once (its
tracks closed, its video finalized, its summary logged) while the others go on.

    from recognizer.multiplex import MultiPipeline, name_sources
    from recognizer.multisession import open_multi_outputs, run_multi_session

    named = name_sources(["0", "1"])                  # [("cam0", "0"), ("cam1", "1")]
    sources = [open_source(spec) for _, spec in named]
    for s in sources:
        s.open()
    names = [name for name, _ in named]
    outputs = open_multi_outputs(names, [s.fps for s in sources], save="out.mp4", log="numbers.jsonl")
    pipe = MultiPipeline(sources, recognizer, names=names, trackers=[Tracker() for _ in sources])
    summary = run_multi_session(pipe, outputs)      # out_cam0.mp4, out_cam1.mp4, one log
    for s in summary.sources:
        print(s.line())
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recognizer.records import event_record, run_record
from recognizer.session import Delivery, Outputs, RunSummary, delivered, progress_bar, run_guarded

__all__ = ["MultiOutputs", "open_multi_outputs", "per_source_path", "run_multi_session"]


def per_source_path(template: str | os.PathLike[str], name: str) -> Path:
    """The output path of source ``name``: ``{name}`` in ``template`` replaced by it, else the
    name appended to the file's stem (``out.mp4`` -> ``out_left.mp4``) or to a folder's name
    (``frames`` -> ``frames_left``)."""
    text = str(template)
    if "{name}" in text:
        return Path(text.replace("{name}", name))
    path = Path(text)
    if not path.suffix:
        return path.with_name(f"{path.name}_{name}")
    return path.with_name(f"{path.stem}_{name}{path.suffix}")


@dataclass
class MultiOutputs:
    """The sinks of a run of several sources: per source a video and a dump
    (:class:`~recognizer.session.Outputs` holding only those), one shared log, one tiled window."""

    names: list[str]
    per_source: list[Outputs]
    log: Any = None  # JsonlLog
    window: Any = None  # TiledWindow
    _finished: set[int] = field(default_factory=set)

    def sinks_for(self, index: int) -> list[Any]:
        """The sinks a frame of source ``index`` reaches, in order (the window last)."""
        own = self.per_source[index]
        return [s for s in (own.video, own.dump, self.log, self.window) if s is not None]

    def needs_drawing(self, index: int) -> bool:
        return self.window is not None or self.per_source[index].needs_drawing

    def status_lines(self) -> list[str]:
        """What each file output holds, for the end of a run."""
        lines = [line for own in self.per_source for line in own.status_lines()]
        if self.log is not None:
            lines.append(self.log.status_line())
        return lines

    def write(self, record: dict[str, Any]) -> None:
        """A line in the shared log (none once it failed)."""
        if self.log is not None and not getattr(self.log, "failed", False):
            self.log.write(record)

    def finish_source(self, index: int, summary: RunSummary) -> list[BaseException]:
        """Finalize source ``index``'s video and dump (a failure there fails its summary), then
        log its summary; once per source. Returns the errors of its own outputs; an error of
        the shared log is raised (:class:`~recognizer.sinks.SinkError`)."""
        if index in self._finished:
            return []
        self._finished.add(index)
        errors = self.per_source[index].finalize(summary)
        self.write(summary.to_dict())
        return errors

    def finalize(self, summary: RunSummary | None = None) -> list[BaseException]:
        """Finish every source not finished yet, write the whole run's summary as the log's
        last line, close the log and the window; every output is closed whatever the others do."""
        from recognizer.sinks import SinkError

        errors: list[BaseException] = []
        for i, own in enumerate(self.per_source):
            if summary is None or i >= len(summary.sources):
                errors.extend(own.finalize(None))
                continue
            try:
                errors.extend(self.finish_source(i, summary.sources[i]))
            except SinkError as exc:
                errors.append(exc)
        if summary is not None and errors and summary.status == "completed":
            summary.status, summary.error = "failed", str(errors[0])
        closing = Outputs(log=self.log, window=self.window)  # closes them in the safe order
        if summary is not None and self.log is not None and not getattr(self.log, "failed", False):
            try:
                self.log.write(summary.to_dict())
            except SinkError as exc:
                errors.append(exc)
        errors.extend(closing.finalize(None))
        return errors

    def close(self) -> None:
        errors = self.finalize(None)
        if errors:
            raise errors[0]


def open_multi_outputs(
    names: Sequence[str],
    fps: Sequence[float],
    *,
    show: bool = False,
    save: str | os.PathLike[str] | None = None,
    dump: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    title: str | None = None,
    fragment_seconds: float = 1.0,
) -> MultiOutputs:
    """Create the sinks asked for: per source a video at its ``fps`` and a dump folder (paths by
    :func:`per_source_path`), one log, one tiled window. Raises
    :class:`~recognizer.sinks.SinkError` (one line) when one cannot be created, after closing
    those already made."""
    from recognizer.session import open_outputs
    from recognizer.sinks import JsonlLog, TiledWindow

    outputs = MultiOutputs(list(names), [])
    try:
        for name, rate in zip(names, fps):
            outputs.per_source.append(open_outputs(
                save=per_source_path(save, name) if save else None,
                dump=per_source_path(dump, name) if dump else None,
                fps=rate,
                fragment_seconds=fragment_seconds,
            ))
        if log:
            outputs.log = JsonlLog(log)
            outputs.log.open()
        if show:
            outputs.window = TiledWindow(names, title or f"recognizer - {', '.join(names)}")
    except BaseException:
        outputs.close()
        raise
    return outputs


def multi_run_record(pipeline: Any, **fields: Any) -> dict[str, Any]:
    """The first line of a multi-source log: every source's description (with the live mode it
    runs in) by name, plus ``fields`` (``batch``, ``workers``)."""
    sources = {
        name: {**src.describe(), "live": lane.live}
        for name, src, lane in zip(pipeline.names, pipeline.sources, pipeline.lanes)
    }
    return run_record(None, sources=sources, **fields)


def run_multi_session(
    pipeline: Any,
    outputs: MultiOutputs,
    *,
    progress: bool = False,
    total: int | None = None,
    hud: bool = True,
    on_source_end: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Consume a :class:`~recognizer.multiplex.MultiPipeline` on this thread, then finalize
    ``outputs``; returns the whole run's summary (``summary.sources``: one per source) however
    the run ended.

    A source that ends is finished at once and ``on_source_end`` is called with its summary
    (status "completed", or "failed" with ``error``). The run's status is "failed" when every
    source ended and one of them failed; "quit", "interrupted", "terminated" or "failed" (a
    model, tracker or output failure) as with one source otherwise.
    """
    summary = RunSummary()
    summary.sources = [RunSummary(name=name) for name in pipeline.names]

    def body() -> None:
        _multi_loop(pipeline, outputs, summary, progress=progress, total=total, hud=hud, on_source_end=on_source_end)
        if summary.status == "completed":
            failed = [s for s in summary.sources if s.status == "failed"]
            if failed:
                more = f" (and {len(failed) - 1} more source(s))" if len(failed) > 1 else ""
                summary.status, summary.error = "failed", f"source '{failed[0].name}': {failed[0].error}{more}"

    def finalize(overall: RunSummary) -> list[BaseException]:
        for s in overall.sources:
            if s.status == "running":  # still going when the run ended
                s.status = overall.status
                s.error = overall.error if overall.status == "failed" else None
        return outputs.finalize(overall)

    return run_guarded(summary, body, finalize)


def _multi_loop(pipeline: Any, outputs: MultiOutputs, summary: RunSummary, *, progress: bool, total: int | None,
                hud: bool, on_source_end: Callable[[RunSummary], None] | None) -> None:
    """The frame loop of :func:`run_multi_session`; fills the summaries, raises what stops it."""
    from recognizer.multiplex import SourceEnded
    from recognizer.sinks import SinkError

    stage = summary.stage_seconds
    for key in ("draw", "show", "write", "log"):
        stage[key] = 0.0
    for s in summary.sources:
        s.status = "running"
    deliveries = [
        Delivery(s, outputs.sinks_for(i), window=outputs.window, log=outputs.log,
                 draw=outputs.needs_drawing(i), hud=hud, stage=stage)
        for i, s in enumerate(summary.sources)
    ]
    lanes = pipeline.lanes
    t_start = time.monotonic()

    def figures(i: int) -> None:
        s, stats = summary.sources[i], lanes[i].stats
        s.seconds, s.captured, s.dropped = time.monotonic() - t_start, stats.captured, stats.dropped

    def finish_tracks(i: int) -> None:
        tracker = pipeline.trackers[i]
        if tracker is not None:
            for ended in tracker.finish():
                outputs.write(event_record(ended, pipeline.names[i]))

    bar_cm = progress_bar(total, pipeline.live, progress)
    finished = False
    try:
        with pipeline, bar_cm as bar:
            for item in pipeline:
                if isinstance(item, SourceEnded):
                    i, s = item.index, summary.sources[item.index]
                    figures(i)
                    s.status = "completed"
                    if item.error is not None:
                        s.status, s.error, s.exception = "failed", f"capture failed: {item.error}", item.exception
                    elif s.captured == 0:
                        s.status = "failed"
                        s.error = f"source '{pipeline.sources[i].name}' had no frames: nothing was read"
                    finish_tracks(i)
                    outputs.finish_source(i, s)  # its own outputs' errors fail its summary only
                    if outputs.window is not None:
                        outputs.window.mark(i, "failed" if s.status == "failed" else "ended")
                    if on_source_end is not None:
                        on_source_end(s)
                    continue
                i = item.source_index
                lane = lanes[i]
                deliveries[i].deliver(item, lane.stats.dropped if lane.live else None)
                dropped = sum(la.stats.dropped for la in lanes) if pipeline.live and bar is not None else None
                if delivered(bar, dropped, outputs, summary, pipeline):
                    break
        finished = True
    finally:
        totals = pipeline.totals()
        summary.seconds = time.monotonic() - t_start
        summary.captured, summary.dropped = totals.captured, totals.dropped
        stage["infer"] = totals.infer_seconds
        stage["track"] = totals.track_seconds
        for i, s in enumerate(summary.sources):
            if s.status == "running":
                figures(i)
                try:  # the tracks still open at the end get their final frame range in the log too
                    finish_tracks(i)
                except SinkError:
                    if finished:  # else the error already on its way wins
                        raise
        summary.frames = sum(s.frames for s in summary.sources)
        summary.confirmed = [text for s in summary.sources for text in s.confirmed]
        for s in summary.sources:
            summary.latencies_ms.extend(s.latencies_ms)
