"""The sinks of a run: per source a video and a frame dump, shared by the sources a log, the
numbers sink and a window (tiled with several sources); created together, closed in a safe order."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recognizer.live.summary import RunSummary

if TYPE_CHECKING:
    from recognizer.output.sinks import DumpSink, JsonlLog, Sink, TiledWindow, VideoSink, WindowSink
    from recognizer.output.sinks.numbers import NumbersSink

__all__ = ["Outputs", "SourceOutputs", "open_outputs"]


@dataclass
class SourceOutputs:
    """The files of one source: an annotated video and a frame dump (each optional)."""

    video: VideoSink | None = None
    dump: DumpSink | None = None

    @property
    def sinks(self) -> list[Sink]:
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
    :class:`recognizer.output.sinks.Sink`); they are closed in a safe order (:meth:`finalize`).
    """

    window: WindowSink | TiledWindow | Any = None  # or any window-like sink (a benchmark's null display)
    log: JsonlLog | None = None
    numbers: NumbersSink | None = None  # before the log: it adds to its records
    per_source: list[SourceOutputs] = field(default_factory=list)
    _finished: set[int] = field(default_factory=set, repr=False)

    def own(self, index: int) -> SourceOutputs:
        """Source ``index``'s video and dump (none when not asked for)."""
        return self.per_source[index] if index < len(self.per_source) else SourceOutputs()

    def add_numbers(self, numbers: NumbersSink) -> None:
        """Use ``numbers`` (a :class:`~recognizer.output.sinks.numbers.NumbersSink`); the log's event
        records gain its fields."""
        self.numbers = numbers
        if self.log is not None:
            self.log.annotate = numbers.fields

    def sinks_for(self, index: int) -> list[Sink]:
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
        outputs; an error of the shared log is raised (:class:`~recognizer.output.sinks.SinkError`)."""
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
        :class:`~recognizer.output.sinks.SinkError` for anything a sink raises) are returned in order.
        An output that fails only while being finalized turns a completed ``summary`` into a
        failed one before it is logged.
        """
        from recognizer.output.sinks import SinkError

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
    from recognizer.output.sinks import SinkError

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
    :func:`~recognizer.io.names.per_source_path` (``out.mp4`` -> ``out_left.mp4``).

    Raises :class:`~recognizer.output.sinks.SinkError` (one line) when one cannot be created, after
    closing those already made (nothing is left half open)."""
    from recognizer.io.names import per_source_path
    from recognizer.output.sinks import DumpSink, JsonlLog, TiledWindow, VideoSink, WindowSink

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
