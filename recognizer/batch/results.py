"""What a ``recognizer batch`` run did: ``DIR/numbers.csv`` and ``DIR/summary.json``.

Both are rebuilt from the complete per-file logs on disk at the end of every run (resumed,
interrupted or not), so the table never holds a row twice; both are replaced atomically.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recognizer.batch.jobs import Job, JobResult, is_complete, log_path
from recognizer.output.records import iter_log
from recognizer.output.results import numbers_from_records, replace_atomically

__all__ = ["NUMBERS_COLUMNS", "BatchReport", "number_rows", "write_json", "write_numbers_csv"]

NUMBERS_COLUMNS = (
    "file", "number", "first_time", "last_time", "first_frame", "last_frame", "confidence", "track_id",
    "best_time", "best_frame", "evidence", "time", "lat", "lon", "fix_distance_m", "known", "expected",
)
"""Columns of ``numbers.csv``: one row per confirmed house number (the evidence picture's path
is relative to DIR; empty cells where a run had no evidence, positions or ``--expect``)."""


def number_rows(out: Path, jobs: Iterable[Job]) -> list[dict[str, Any]]:
    """One row per confirmed house number in the complete logs of ``jobs`` (in job order, then
    log order); the last frame and time are the track's final ones when its end was logged
    (:func:`recognizer.output.results.numbers_from_records`)."""
    rows: list[dict[str, Any]] = []
    for job in jobs:
        if is_complete(out, job):
            rows += [n | {"file": n.get("file") or job.path} for n in numbers_from_records(iter_log(log_path(out, job)))]
    return rows


def write_numbers_geojson(out: Path, jobs: Iterable[Job]) -> int:
    """Rebuild ``DIR/numbers.geojson`` (one point per placed number) from the complete logs."""
    from recognizer.output.geo import write_geojson

    return write_geojson(out / "numbers.geojson", number_rows(out, jobs))


def write_numbers_csv(out: Path, jobs: Iterable[Job]) -> int:
    """Rebuild ``DIR/numbers.csv`` from the complete per-file logs; returns its rows."""
    rows = number_rows(out, jobs)

    def write(fh: Any) -> None:
        w = csv.DictWriter(fh, fieldnames=NUMBERS_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    replace_atomically(out / "numbers.csv", write)
    return len(rows)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically (``summary.json``)."""
    replace_atomically(path, lambda fh: fh.write(json.dumps(data, indent=2) + "\n"))


@dataclass
class BatchReport:
    """What a batch run did (also written to ``DIR/summary.json``)."""

    status: str = "completed"
    results: list[JobResult] = field(default_factory=list)
    files: int = 0
    workers: int = 0
    seconds: float = 0.0
    ray_start_seconds: float = 0.0
    workers_ready_seconds: float = 0.0
    retried: int = 0
    numbers: int = 0
    address: str = "local"
    out: str = ""
    changed: list[dict[str, str]] = field(default_factory=list)  # inputs read again: file, name, reason
    error: str | None = None  # why a run failed as a whole (Ray, the models), one line

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results if r.status != "skipped")

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        return {"interrupted": 130, "terminated": 143, "failed": 1}.get(self.status, 0)

    def to_dict(self) -> dict[str, Any]:
        done = self.count("completed") + self.count("skipped")
        return {
            "status": self.status, "out": self.out, "files": self.files, "done": self.count("completed"),
            "skipped": self.count("skipped"), "not_done": self.files - done - len(self.failed),
            "failed": [{"file": r.path, "name": r.name, "reason": r.error} for r in self.failed],
            "frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
            "files_per_hour": round(self.count("completed") * 3600 / self.seconds, 1) if self.seconds > 0 else 0.0,
            "workers": self.workers, "address": self.address, "ray_start_seconds": round(self.ray_start_seconds, 3),
            "workers_ready_seconds": round(self.workers_ready_seconds, 3), "retried": self.retried,
            "numbers": self.numbers, "changed": list(self.changed), **({"error": self.error} if self.error else {}),
            "results": [r.to_dict() for r in self.results],
        }

    def line(self) -> str:
        return (
            f"batch {self.status}: {self.count('completed')} done, {self.count('skipped')} skipped, {len(self.failed)} failed "
            f"of {self.files} files; {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS) on {self.workers} worker(s); "
            f"{self.numbers} house numbers in {Path(self.out) / 'numbers.csv'}"
        )
