"""Evidence: the best view of every confirmed number, kept per live track and written as a JPEG
that the log's records (and batch's ``numbers.csv``) name."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mapping_helpers import write_clip
from shipped import needs_models

from recognizer.cli import main
from recognizer.models.weights import resolve_weights
from recognizer.output.evidence import CONTEXT, MAX_SIDE, EvidenceWriter, crop_view, evidence_name
from recognizer.output.records import CONFIRMED, FRAME, TRACK_ENDED, read_log
from recognizer.output.sinks import SinkError
from recognizer.tracking import Tracker
from recognizer.types import DigitBox, Reading


def _reading(text: str, conf: float, x: float = 200.0, y: float = 200.0) -> Reading:
    digits = tuple(DigitBox((x + 20 * i, y, x + 20 * i + 18, y + 40), int(ch), conf, 1.0) for i, ch in enumerate(text))
    return Reading(text=text, confidence=conf, box=(x, y, x + 20 * len(text), y + 40), digits=digits)


# --------------------------------------------------------------------------- the best view


def test_the_best_view_is_the_most_confident_read_of_the_stable_text() -> None:
    tracker = Tracker()
    confs = [("47", 0.6), ("47", 0.9), ("41", 0.99), ("47", 0.7), ("47", 0.8)]
    updates = [tracker.update(i, i / 10, [_reading(t, c, x=200 + 3 * i)], frame_size=(640, 480)) for i, (t, c) in enumerate(confs)]
    best = updates[-1].tracks[0].best
    assert best is not None and (best.frame, best.text, best.score) == (1, "47", pytest.approx(0.9))
    assert best.box == updates[1].tracks[0].box and best.time == pytest.approx(0.1)
    confirmed = [ev for u in updates for ev in u.confirmed]
    assert confirmed and confirmed[0].best is not None and confirmed[0].best.text == "47"
    ended = tracker.finish()
    assert ended[0].best == best


def test_a_view_cut_by_the_border_loses_to_a_full_one() -> None:
    tracker = Tracker()
    tracker.update(0, 0.0, [_reading("47", 0.95, x=1.0)], frame_size=(640, 480))  # at the left edge
    update = tracker.update(1, 0.1, [_reading("47", 0.6, x=8.0 + 40)], frame_size=(640, 480))
    assert update.tracks[0].best.frame == 1


# --------------------------------------------------------------------------- pictures


def test_crop_has_context_and_stays_small() -> None:
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    crop = crop_view(image, (300, 200, 360, 240))  # 60 x 40
    assert crop.shape == (40 + 2 * CONTEXT * 40, 60 + 2 * CONTEXT * 40, 3)
    assert np.array_equal(crop, image[160:280, 260:400]) and crop.flags["OWNDATA"]  # a copy: the frame can go
    edge = crop_view(image, (0, 0, 30, 20))
    assert edge.shape[:2] == (40, 50) and np.array_equal(edge, image[:40, :50])  # clipped at the frame
    huge = crop_view(image, (10, 10, 630, 400))
    assert max(huge.shape[:2]) == MAX_SIDE
    tiny = crop_view(image, (320, 240, 324, 246))
    assert min(tiny.shape[:2]) >= 48  # a far number still shows its plate


def test_writer_replaces_pictures_whole_and_reports_a_failure(tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    writer = EvidenceWriter(folder)
    a, b = np.full((40, 60, 3), 30, np.uint8), np.full((40, 60, 3), 200, np.uint8)
    writer.write(evidence_name(3, "47"), a)
    writer.write(evidence_name(3, "47"), b)  # a better view of the same number
    writer.write(evidence_name(4, "12", "left"), a)
    writer.close()
    assert sorted(p.name for p in folder.iterdir()) == ["000003-47.jpg", "left-000004-12.jpg"]
    assert abs(float(cv2.imread(str(folder / "000003-47.jpg")).mean()) - 200) < 3
    assert writer.status_line() == f"evidence: 2 pictures written to {folder}"
    blocked = tmp_path / "file"
    blocked.write_text("x")
    bad = EvidenceWriter(blocked / "ev")
    with pytest.raises(SinkError, match="cannot create it"):
        bad.write("x.jpg", a)


# --------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 75)


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(image)


@needs_models
@pytest.mark.timeout(180)
def test_run_writes_the_best_view_of_each_number(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture) -> None:
    log, folder = tmp_path / "out" / "run.jsonl", tmp_path / "pictures"
    log.parent.mkdir()
    assert main(["run", str(clip), "--log", str(log), "--evidence", str(folder), "--device", "cpu", "--no-progress"]) == 0
    records = read_log(log)
    confirmed = [r for r in records if r["type"] == CONFIRMED]
    assert len(confirmed) >= 2
    assert records[0]["evidence"] == "../pictures"  # relative to the log's folder
    frames = _frames(clip)
    by_frame = {r["frame"]: r for r in records if r["type"] == FRAME}
    ended = {r["track_id"]: r for r in records if r["type"] == TRACK_ENDED}
    for rec in confirmed:
        picture = log.parent / rec["evidence"]
        assert picture.is_file() and picture.name == evidence_name(rec["track_id"], rec["text"])
        # The picture on disk is the track's final best view when it still read the number at its end.
        end = ended[rec["track_id"]]
        final = end if end["text"] == rec["text"] and end["confirmed"] and "best_frame" in end else rec
        assert final["evidence"] == rec["evidence"]
        if "best_frame" not in final:
            continue  # confirmed on a text no single reading had: the picture is the track's best view
        reading = next(r for r in by_frame[final["best_frame"]]["readings"] if r["track_id"] == rec["track_id"])
        assert reading["text"] == rec["text"]
        # ... and it is the most confident reading of that number by the track up to then.
        reads = [r["confidence"] for f in range(rec["first_frame"], final["best_frame"] + 1) for r in by_frame[f]["readings"]
                 if r["track_id"] == rec["track_id"] and r["text"] == rec["text"]]
        assert reading["confidence"] >= 0.2 * max(reads)  # a full view beats a brighter one cut by the border
        expected = crop_view(frames[final["best_frame"]], reading["box"])
        got = cv2.imread(str(picture))
        assert got.shape == expected.shape
        assert float(np.abs(got.astype(int) - expected.astype(int)).mean()) < 6  # JPEG
    assert f"evidence: {len({r['evidence'] for r in confirmed})} pictures written to {folder}" in capsys.readouterr().out
    assert not list(folder.glob(".*"))  # no temporary file left


@needs_models
@pytest.mark.timeout(180)
def test_one_crop_per_live_track(clip: Path) -> None:
    """Memory stays bounded: the sink holds at most one crop per live track, none after the end."""
    from recognizer.io.sources import open_source
    from recognizer.live.outputs import Outputs
    from recognizer.live.pipeline import Pipeline
    from recognizer.live.session import run_session
    from recognizer.models.engine import Recognizer
    from recognizer.output.sinks.numbers import NumbersSink

    seen: list[tuple[int, int]] = []

    class Spy(NumbersSink):
        def emit(self, result, image=None):  # type: ignore[no-untyped-def]
            super().emit(result, image)
            seen.append((len(self._views), len(result.update.tracks)))

    rec = Recognizer.from_checkpoints(resolve_weights(None, "detector"), resolve_weights(None, "classifier"), device="cpu", tta=False)
    spy = Spy(evidence=EvidenceWriter(clip.parent / "spy"))
    outputs = Outputs()
    outputs.add_numbers(spy)
    with open_source(str(clip)) as source:
        summary = run_session(Pipeline(source, rec, trackers=Tracker()), outputs)
    assert summary.status == "completed" and len(seen) == 75
    assert max(v for v, _ in seen) >= 1 and all(v <= t for v, t in seen)
    assert spy._views == {}
    assert len(list((clip.parent / "spy").glob("*.jpg"))) == len(spy.numbers()) == len(summary.confirmed)


@pytest.mark.parametrize("state", ["file", "full"])
def test_evidence_folder_must_be_new_or_empty(tmp_path: Path, clip: Path, state: str, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ev"
    if state == "file":
        folder.write_text("x")
    else:
        folder.mkdir()
        (folder / "000001-47.jpg").write_bytes(b"an earlier run's picture")
    rc = main(["run", str(clip), "--evidence", str(folder), "--log", str(tmp_path / "run.jsonl"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and ("is a file" in err[0] if state == "file" else "is not empty" in err[0])
    assert not (tmp_path / "run.jsonl").exists()


@needs_models
@pytest.mark.timeout(180)
def test_batch_job_writes_evidence_under_temporary_names(tmp_path: Path, clip: Path) -> None:
    """``run_job`` (a batch worker's work, without Ray): ``DIR/<name>.evidence/`` appears, renamed
    with the log, and ``numbers.csv`` names each picture; a failed file leaves nothing."""
    from recognizer.batch.jobs import Job, evidence_path, run_job
    from recognizer.batch.results import write_numbers_csv
    from recognizer.models.engine import Recognizer
    from recognizer.output.sinks.numbers import NumbersPlan

    rec = Recognizer.from_checkpoints(resolve_weights(None, "detector"), resolve_weights(None, "classifier"), device="cpu", tta=False)
    out = tmp_path / "out"
    out.mkdir()
    seen_parts: list[str] = []
    job = Job(path=str(clip), name="clip")

    def on_frame(n: int) -> None:
        seen_parts.extend(p.name for p in out.iterdir())

    result = run_job(job, out, rec, numbers=NumbersPlan(), on_frame=on_frame)
    assert result.status == "completed", result.error
    assert any(".part.evidence" in name for name in seen_parts) and "clip.evidence" not in seen_parts
    assert sorted(p.name for p in out.iterdir()) == ["clip.evidence", "clip.jsonl"]
    write_numbers_csv(out, [job])
    with open(out / "numbers.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["evidence"].startswith("clip.evidence/") and (out / r["evidence"]).is_file() for r in rows)
    assert len(list(evidence_path(out, job).iterdir())) == len(rows)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    failed = run_job(Job(path=str(bad), name="bad"), out, rec, numbers=NumbersPlan())
    assert failed.status == "failed" and sorted(p.name for p in out.iterdir()) == ["clip.evidence", "clip.jsonl", "numbers.csv"]
    assert json.loads((out / "clip.jsonl").read_text().splitlines()[-1])["status"] == "completed"
