"""How a run ended: :class:`RunSummary`, printed at the end and written as the log's last line."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from recognizer.live.signals import EXIT_INTERRUPTED, EXIT_TERMINATED
from recognizer.output.records import summary_record

__all__ = ["LATENCY_WINDOW", "RunSummary"]

LATENCY_WINDOW = 50_000
"""Latencies kept for the summary/benchmark percentiles (the most recent frames)."""


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
            :class:`~recognizer.live.pipeline.PipelineError`, :class:`~recognizer.output.sinks.SinkError`,
            :class:`KeyboardInterrupt`), for callers that map it to their own errors; not logged.
        name: the source's name, for the summary of one source of a run of several
            (:func:`recognizer.live.session.run_session`); None for a whole run.
        sources: in a run of several sources, the summary of each (the whole run's figures
            are their sums); empty otherwise.
        warnings: what the source reported about itself (a video that ends far before the
            frame count it declares); logged as ``warnings`` in the summary record.
        started: False when the run never got to its frame loop (a source or output that could
            not be opened: ``status`` failed and ``exception`` the error, or a signal during the
            setup); see :func:`recognizer.live.run.run`.
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
