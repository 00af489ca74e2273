"""The out-of-the-box demo: a generated street clip with known house numbers, read and scored.

Three parts, usable on their own:

* :func:`recognizer.synth.street.make_street_clip` renders a camera moving along a facade
  with known house numbers and writes ``clip.mp4`` plus ``truth.json`` (see
  :mod:`recognizer.synth.street`).
* :func:`run_demo` runs a recognizer over the clip through the real-time pipeline
  (:mod:`recognizer.live.pipeline`, headless, never dropping a frame) with the tracker, writing an
  annotated video and a JSON Lines readings log.
* :func:`score_log` compares the log with the truth: for each house number, what the tracker
  confirmed for it, in how many visible frames it was read right, and OK/MISS.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recognizer.output.records import CONFIRMED, FRAME, of_type, read_log
from recognizer.synth.street import Clip, ClipConfig, make_street_clip

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- scoring


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _matches(reading_box: Sequence[float], truth_box: Sequence[float]) -> float:
    """How well a reading lands on a true number: IoU, or 0.01 when its centre is inside."""
    iou = _iou(reading_box, truth_box)
    if iou >= 0.25:
        return iou
    cx, cy = (reading_box[0] + reading_box[2]) / 2, (reading_box[1] + reading_box[3]) / 2
    return 0.01 if truth_box[0] <= cx <= truth_box[2] and truth_box[1] <= cy <= truth_box[3] else 0.0


@dataclass
class NumberResult:
    """How one true house number was read.

    Attributes:
        text: the truth.
        read: what the tracker confirmed for it ("" when nothing was confirmed).
        visible_frames: frames where it is fully visible.
        frames_seen: of those, frames with a reading on it.
        frames_right: of those, frames where that reading's text is exactly right.
        majority: the most common per-frame reading on it ("" if none).
        ok: the confirmed text is the truth.
    """

    id: int
    text: str
    read: str
    visible_frames: int
    frames_seen: int
    frames_right: int
    majority: str
    ok: bool


@dataclass
class DemoReport:
    """The score of a demo run."""

    numbers: list[NumberResult]
    extra: list[str]  # confirmed texts that were not a true number in view
    frames_logged: int
    frames_expected: int

    @property
    def correct(self) -> int:
        return sum(n.ok for n in self.numbers)

    @property
    def frame_accuracy(self) -> float:
        vis = sum(n.visible_frames for n in self.numbers)
        return sum(n.frames_right for n in self.numbers) / vis if vis else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "numbers": [asdict(n) for n in self.numbers],
            "correct": self.correct,
            "total": len(self.numbers),
            "frame_accuracy": round(self.frame_accuracy, 4),
            "extra_confirmed": self.extra,
            "frames_logged": self.frames_logged,
            "frames_expected": self.frames_expected,
        }

    def table(self) -> str:
        rows = [("truth", "read", "frames read right", "result")]
        for n in self.numbers:
            read = n.read or (f"({n.majority}?)" if n.majority else "-")
            rows.append((n.text, read, f"{n.frames_right}/{n.visible_frames}", "OK" if n.ok else "MISS"))
        for e in self.extra:
            rows.append(("-", e, "", "EXTRA"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def score_log(truth: dict[str, Any], records: Sequence[dict[str, Any]]) -> DemoReport:
    """Compare a readings log (:mod:`recognizer.output.records`) with the truth.

    A reading belongs to a true number when its box overlaps the number's box (IoU >= 0.25)
    or its centre lies inside it. A number is read right (OK) when a track that read it
    confirmed exactly its text. Every confirmed text that is not a true number in view at
    some frame between its track's first frame and the confirmation is EXTRA (a misread
    true number confirmed as another number counts too: a user's log would list it).
    """
    frames = {r["frame"]: r for r in of_type(records, FRAME)}
    confirmed_events = of_type(records, CONFIRMED)
    confirmed_by_track: dict[int, list[str]] = {}
    for r in confirmed_events:
        confirmed_by_track.setdefault(int(r["track_id"]), []).append(str(r["text"]))
    per_frame = truth["per_frame"]
    results: list[NumberResult] = []
    for num in truth["numbers"]:
        tracks: Counter[int] = Counter()
        texts: Counter[str] = Counter()
        seen = right = 0
        for f, items in enumerate(per_frame):
            item = next((it for it in items if it["id"] == num["id"]), None)
            if item is None:
                continue
            rec = frames.get(f)
            best, best_score = None, 0.0
            for rd in (rec or {}).get("readings", []):
                sc = _matches(rd["box"], item["box"])
                if sc > best_score:
                    best, best_score = rd, sc
            if best is None:
                continue
            if "track_id" in best:
                tracks[int(best["track_id"])] += 1
            if item["fully_visible"]:
                seen += 1
                right += best["text"] == num["text"]
                texts[best["text"]] += 1
        confirmed = [t for tid, _ in tracks.most_common() for t in confirmed_by_track.get(tid, [])]
        read = num["text"] if num["text"] in confirmed else (confirmed[0] if confirmed else "")
        results.append(NumberResult(
            id=int(num["id"]), text=num["text"], read=read, visible_frames=int(num["visible_frames"]),
            frames_seen=seen, frames_right=right, majority=texts.most_common(1)[0][0] if texts else "",
            ok=read == num["text"],
        ))
    extra = [str(r["text"]) for r in confirmed_events if not _true_when_confirmed(r, per_frame)]
    return DemoReport(results, extra, len(frames), int(truth["frames"]))


def _true_when_confirmed(event: dict[str, Any], per_frame: Sequence[Sequence[dict[str, Any]]]) -> bool:
    """Whether a ``confirmed`` record's text is a true number in view while its track saw it."""
    last = int(event.get("frame", event.get("last_frame", 0)))
    first = int(event.get("first_frame", last))
    text = str(event["text"])
    return any(it["text"] == text for f in range(max(first, 0), min(last, len(per_frame) - 1) + 1) for it in per_frame[f])


# --------------------------------------------------------------------------- running


@dataclass
class DemoRun:
    """Everything a demo run produced."""

    clip: Clip
    annotated: Path
    log_path: Path
    report: DemoReport
    summary: Any  # recognizer.live.summary.RunSummary
    seconds: dict[str, float]


def run_demo(
    out_dir: str | os.PathLike[str],
    recognizer: Any,
    cfg: ClipConfig | None = None,
    *,
    batch: int = 4,
    workers: int = 1,
    progress: bool = False,
    fonts: Sequence[str] | None = None,
    text_reader: Any = None,
    reader_mode: str = "fast",
) -> DemoRun:
    """Make (or reuse) the clip in ``out_dir``, run ``recognizer`` over it, score the result.

    Writes ``clip.mp4``, ``truth.json``, ``annotated.mp4`` (boxes, digits, stable numbers),
    ``readings.jsonl`` (per-frame readings, tracker events, summary) and ``report.json``.

    Args:
        recognizer: anything with ``recognize(images) -> list[list[Reading]]``.
        batch: frames per ``recognize`` call.
        workers: inference threads.
        text_reader: a :class:`recognizer.models.textreader.TextReader` that reads each track a few
            times a second beside the digit models (:mod:`recognizer.live.textworker`), or None.
        reader_mode: ``fast`` (tracks only) or ``accurate`` (also the text detector on a frame
            a second), as :func:`recognizer.live.textworker.make_checker` takes it.

    Raises:
        recognizer.live.pipeline.PipelineError, recognizer.output.sinks.SinkError: the run failed.
    """
    from recognizer.io.sources import open_source
    from recognizer.live.pipeline import PipelineConfig
    from recognizer.live.run import run

    out = Path(out_dir)
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    clip = make_street_clip(out, cfg, fonts=fonts)
    secs["clip"] = time.perf_counter() - t0
    annotated, log_path = out / "annotated.mp4", out / "readings.jsonl"
    t0 = time.perf_counter()
    # A file and no window: the text reader reads synchronously, so the same clip gives the same result.
    summary = run(open_source(str(clip.video)), recognizer, config=PipelineConfig(batch_size=batch, workers=workers, live=False),
                  reader=reader_mode, text_reader=text_reader,
                  save=annotated, log=log_path, record={"demo": clip.truth["config"]}, progress=progress)
    if summary.exception is not None:  # failed or interrupted: the outputs are finalized
        raise summary.exception
    secs["run"] = time.perf_counter() - t0
    report = score_log(clip.truth, read_log(log_path))
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return DemoRun(clip, annotated, log_path, report, summary, secs)
