"""``recognizer batch`` on a real local Ray instance (2 CPUs) with the shipped models and short clips.

One Ray instance serves the whole module (``recognizer batch`` joins it: in-process because
Ray is already initialized, in a subprocess through ``--address``). The per-file logs are
compared with ``recognizer run FILE --log`` on each file.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
from shipped import needs_models, shipped_weights
from video_helpers import count_frames

from recognizer.batch.jobs import BatchInputError, Job, discover, is_complete, part_pid, unique_names
from recognizer.cli import main
from recognizer.output.records import CONFIRMED, FRAME, TRACK_ENDED, read_log
from recognizer.synth.footage import ClipSpec, make_bench_clip, synthetic_frame

REPO = Path(__file__).resolve().parents[1]
COMPARED = (FRAME, CONFIRMED, TRACK_ENDED)  # the run and summary records hold timings




def _clip(path: Path, frames: int, number: str, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_bench_clip(path, frames, ClipSpec(width=320, height=240, fps=24.0, numbers=(number,), seed=seed))


def _compared(path: Path) -> list[dict]:
    # batch writes each number's evidence picture (named in its records); a plain run does not
    return [{k: v for k, v in r.items() if k != "evidence"} for r in read_log(path) if r["type"] in COMPARED]


def _run_log(source: Path, log: Path) -> Path:
    """``recognizer run SOURCE --log LOG`` on the CPU: the reference a batch worker must match."""
    assert main(["run", str(source), "--log", str(log), "--device", "cpu", "--no-progress"]) == 0
    return log


def _table(out: Path) -> list[dict]:
    with open(out / "numbers.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _expected_rows(pairs: list[tuple[Path, Path]]) -> list[tuple]:
    """(file, number, first frame, track id) of each confirmed record of each reference log."""
    return [(str(src.resolve()), r["text"], str(r["first_frame"]), str(r["track_id"])) for src, log in pairs for r in read_log(log) if r["type"] == CONFIRMED]


def _rows(out: Path) -> list[tuple]:
    return [(r["file"], r["number"], r["first_frame"], r["track_id"]) for r in _table(out)]


def _logs(out: Path) -> list[Path]:
    """The per-file logs under their final names (pathlib's ``*`` also matches hidden files)."""
    return sorted(p for p in out.glob("*.jsonl") if not p.name.startswith("."))


def _parts(out: Path) -> list[Path]:
    return sorted(out.glob(".*.part.*"))




@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four inputs (two videos named alike, one more video, an image folder), a damaged file,
    and each input's ``recognizer run`` log."""
    root = tmp_path_factory.mktemp("footage")
    sources = [_clip(root / "a" / "clip.mp4", 40, "47", 0), _clip(root / "b" / "clip.mp4", 40, "12", 2), _clip(root / "c.mp4", 40, "58", 3)]
    frames = root / "frames"
    frames.mkdir()
    spec = ClipSpec(width=320, height=240, numbers=("47",), seed=1)
    for i in range(30):
        cv2.imwrite(str(frames / f"f{i:03d}.png"), synthetic_frame(i, spec))
    sources.append(frames)
    bad = root / "bad.mp4"
    bad.write_bytes(os.urandom(4096))
    refs = root / "refs"
    refs.mkdir()
    logs = [_run_log(src, refs / f"{k}.jsonl") for k, src in enumerate(sources)] if shipped_weights() else []
    return {"sources": sources, "bad": bad, "logs": logs, "root": root}


def test_inputs_are_found_once_each_with_unique_names(tmp_path: Path) -> None:
    for sub in ("a", "b", "a/deeper"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    for f in ("a/clip.mp4", "b/clip.mp4", "a/deeper/clip.MP4", "a/deeper/x.png", "a/deeper/y.png", "a/notes.txt"):
        (tmp_path / f).write_bytes(b"x")
    out = tmp_path / "a" / "results"
    out.mkdir()
    (out / "old.mp4").write_bytes(b"x")  # an output of an earlier run is not an input
    jobs = discover([str(tmp_path / "a"), str(tmp_path / "b" / "*.mp4"), str(tmp_path / "a" / "clip.mp4")], exclude=out)
    assert [(Path(j.path).relative_to(tmp_path).as_posix(), j.kind) for j in jobs] == [
        ("a/clip.mp4", "video"), ("a/deeper/clip.MP4", "video"), ("a/deeper", "images"), ("b/clip.mp4", "video")]
    names = [j.name for j in jobs]
    assert names[:2] == ["a-clip", "deeper-clip"] and names[2] == "deeper" and names[3] == "b-clip"
    assert len({n.lower() for n in unique_names(["/x/a/v.mp4", "/y/a/v.mp4", "/z/b/V.mp4"])}) == 3
    with pytest.raises(BatchInputError, match="source '.*missing' not found"):
        discover([str(tmp_path / "missing")])


def test_without_ray_batch_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'recognizer[batch]'" in err[0]


@needs_models
@pytest.mark.timeout(240)
def test_batch_matches_run_builds_the_table_and_skips_on_rerun(ray_address: str, footage: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    sources = [str(s) for s in footage["sources"]]
    assert main(["batch", *sources, str(footage["bad"]), "--out", str(out), "--workers", "2"]) == 1
    stdout, stderr = capsys.readouterr()
    assert "batch failed: 4 done, 0 skipped, 1 failed of 5 files" in stdout
    assert "bad.mp4: cannot open video file" in stderr
    jobs = discover(sources)
    assert [j.name for j in jobs] == ["a-clip", "b-clip", "c", "frames"]
    for job, ref in zip(jobs, footage["logs"]):
        assert _compared(out / f"{job.name}.jsonl") == _compared(ref), job.name
    expected = _expected_rows(list(zip(footage["sources"], footage["logs"])))
    assert {row[1] for row in expected} >= {"47", "12", "58"}  # the shipped models read the plates
    assert _rows(out) == expected
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["skipped"], summary["workers"], summary["numbers"]) == (4, 0, 2, len(expected))
    assert summary["failed"] == [{"file": str(footage["bad"].resolve()), "name": "bad", "reason": summary["failed"][0]["reason"]}]
    assert "damaged" in summary["failed"][0]["reason"] and "\n" not in summary["failed"][0]["reason"]
    assert summary["frames"] == 3 * 40 + 30 and not _parts(out)
    # The same command again: the complete files are skipped, the table is rebuilt unchanged.
    table, stamps = (out / "numbers.csv").read_bytes(), {p: p.stat().st_mtime_ns for p in _logs(out)}
    assert main(["batch", *sources, "--out", str(out), "--workers", "2"]) == 0
    assert "batch completed: 0 done, 4 skipped, 0 failed of 4 files; 0 frames" in capsys.readouterr().out
    assert (out / "numbers.csv").read_bytes() == table
    assert {p: p.stat().st_mtime_ns for p in _logs(out)} == stamps


@needs_models
@pytest.mark.timeout(240)
def test_killed_worker_has_its_file_redone_once(ray_address: str, footage: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    long_clip = _clip(tmp_path / "long.mp4", 160, "305", 4)
    out = tmp_path / "out"
    out.mkdir()
    killed: list[int] = []

    def kill_first_worker_of_long() -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            for part in out.glob(".long.*.part.jsonl"):
                if part.stat().st_size > 5000:  # a dozen frames in
                    pid = part_pid(part)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_worker_of_long, daemon=True)
    killer.start()
    sources = [str(long_clip), str(footage["sources"][2]), str(footage["sources"][3])]
    rc = main(["batch", *sources, "--out", str(out), "--workers", "2", "--retries", "1", "--save-video"])
    killer.join(5)
    assert rc == 0, capsys.readouterr()
    assert killed, "the long file finished before its worker could be killed"
    summary = json.loads((out / "summary.json").read_text())
    results = {r["name"]: r for r in summary["results"]}
    assert sorted(results) == ["c", "frames", "long"] and summary["retried"] == 1
    assert results["long"]["attempts"] == 2 and results["long"]["status"] == "completed"
    assert not results["long"]["worker"].endswith(f":{killed[0]}")  # redone by another worker
    frames = [r["frame"] for r in read_log(out / "long.jsonl") if r["type"] == FRAME]
    assert frames == list(range(160))  # every frame once: nothing of the killed attempt is left
    assert count_frames(out / "long.mp4") == (160, pytest.approx(24.0, abs=0.01))
    assert count_frames(out / "frames.mp4")[0] == 30 and is_complete(out, Job("", "c"), save_video=True)
    rows = _rows(out)
    assert len(rows) == len(set(rows)) and not _parts(out)
    long_confirmed = [r["text"] for r in read_log(out / "long.jsonl") if r["type"] == CONFIRMED]
    assert [r[1] for r in rows if r[0] == str(long_clip.resolve())] == long_confirmed


@needs_models
@pytest.mark.timeout(300)
def test_sigint_keeps_only_complete_outputs_and_resumes_to_the_same_table(ray_address: str, footage: dict, tmp_path: Path) -> None:
    longer = [_clip(tmp_path / f"long{k}.mp4", 120, n, 5 + k) for k, n in enumerate(("221", "63"))]
    sources = [footage["sources"][0], *longer]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recognizer", "batch", *map(str, sources), "--out", str(out), "--workers", "2", "--address", ray_address]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _logs(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert "only complete per-file outputs kept" in stderr
    assert not _parts(out)
    jobs = [Job(str(s.resolve()), n) for s, n in zip(sources, ("clip", "long0", "long1"))]
    logs = _logs(out)
    assert 1 <= len(logs) < 3 and all(is_complete(out, j) for j in jobs if (out / f"{j.name}.jsonl") in logs)
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    # Resumed: the rest is done, and the table is the one of `recognizer run` on each file.
    assert subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=240).returncode == 0
    refs = [footage["logs"][0]] + [_run_log(s, tmp_path / f"ref{k}.jsonl") for k, s in enumerate(longer)]
    for job, ref in zip(jobs, refs):
        assert _compared(out / f"{job.name}.jsonl") == _compared(ref), job.name
    assert _rows(out) == _expected_rows(list(zip(sources, refs)))
