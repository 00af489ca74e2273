"""``recognizer batch``, round 2 (issue 21), on a real local Ray instance with the tiny models:
footage replaced under the same name is read again, a link in a folder is read once, and
Ray's report of a dead worker stays off stdout.

One Ray instance serves the module (``recognizer batch`` joins it: in-process because Ray is
already initialized, in a subprocess through ``--address``). The rows of issue 21 that need no
Ray (option ranges, models checked before Ray, an address that is not Ray) are in
``tests/test_bad_input_round2.py``.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from procs import stop

from recognizer.batch.jobs import part_pid
from recognizer.cli import main
from recognizer.output.records import CONFIRMED, FRAME, RUN, read_log
from recognizer.synth.footage import ClipSpec, make_bench_clip

REPO = Path(__file__).resolve().parents[1]


def _clip(path: Path, frames: int, seed: int) -> Path:
    return make_bench_clip(path, frames, ClipSpec(width=96, height=64, fps=24.0, numbers=("47",), seed=seed))




def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _frames(log: Path) -> int:
    return sum(r["type"] == FRAME for r in read_log(log))


@pytest.mark.timeout(300)
def test_replaced_footage_is_read_again_and_a_link_is_read_once(ray_address: str, tmp_path: Path, models: list[str],
                                                              capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "dashcam"
    folder.mkdir()
    video = _clip(folder / "FILE0001.mp4", 20, seed=0)
    (folder / "link.mp4").symlink_to("FILE0001.mp4")
    out = tmp_path / "out"
    argv = ["batch", str(folder), "--out", str(out), "--workers", "1", *models, "--no-progress"]
    assert main(argv) == 0
    stdout, stderr = capsys.readouterr()
    assert f"recognizer batch: '{folder / 'link.mp4'}' is the same file as '{video}': read once" in stderr
    assert "batch completed: 1 done, 0 skipped, 0 failed of 1 files; 20 frames" in stdout
    first = read_log(out / "FILE0001.jsonl")[0]
    assert first["type"] == RUN and first["input"]["size"] == video.stat().st_size

    # The camera reused the name: other footage, same path (the link follows it).
    other = _clip(tmp_path / "new.mp4", 33, seed=5)
    os.replace(other, video)
    with caplog.at_level(logging.WARNING, logger="recognizer.batch.cluster"):
        assert main(argv) == 0
    stdout, _ = capsys.readouterr()
    assert "batch completed: 1 done, 0 skipped, 0 failed of 1 files; 33 frames" in stdout
    said = [r.getMessage() for r in caplog.records if "changed since its result was made" in r.getMessage()]
    assert said == [f"{video} changed since its result was made (its size changed from {first['input']['size']} to "
                    f"{video.stat().st_size} bytes): reading it again"]
    summary = _summary(out)
    assert summary["changed"] == [{"file": str(video), "name": "FILE0001", "reason": said[0].split("(")[1].split(")")[0]}]
    assert summary["results"][0]["input_changed"] == summary["changed"][0]["reason"]
    assert _frames(out / "FILE0001.jsonl") == 33
    with open(out / "numbers.csv", newline="") as fh:  # the table is the new footage's
        rows = [(r["number"], r["first_frame"]) for r in csv.DictReader(fh)]
    assert rows == [(r["text"], str(r["first_frame"])) for r in read_log(out / "FILE0001.jsonl") if r["type"] == CONFIRMED]

    # Unchanged: skipped. Only touched (same bytes, new modification time): read again.
    caplog.clear()
    assert main(argv) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out and _summary(out)["changed"] == []
    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with caplog.at_level(logging.WARNING, logger="recognizer.batch.cluster"):
        assert main(argv) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().out
    assert _summary(out)["changed"][0]["reason"] == "it was modified since"


@pytest.mark.timeout(300)
def test_a_dead_worker_is_reported_on_stderr_not_stdout(ray_address: str, tmp_path: Path, models: list[str]) -> None:
    long_clip, short = _clip(tmp_path / "long.mp4", 600, seed=1), _clip(tmp_path / "short.mp4", 10, seed=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recognizer", "batch", str(long_clip), str(short), "--out", str(out), "--workers", "2",
           "--retries", "1", "--address", ray_address, *models, "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            for part in out.glob(".long.*.part.jsonl") if out.is_dir() else ():
                if part.stat().st_size > 3000:  # some frames in
                    killed = part_pid(part)
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=200)
    finally:
        stop(proc)
    assert killed, "the long file finished before its worker could be killed"
    assert proc.returncode == 0, stderr
    assert stdout.strip().splitlines() == [stdout.strip()] and stdout.startswith("batch completed: 2 done"), stdout
    assert "died" in stderr
    assert _summary(out)["retried"] == 1 and _frames(out / "long.jsonl") == 600


@pytest.mark.timeout(120)
def test_a_run_that_fails_as_a_whole_says_why_in_its_summary(ray_address: str, tmp_path: Path) -> None:
    """Workers that cannot load the models (a file that differs on a node: the command itself
    loads them before Ray starts) end the run; summary.json said "failed" with an empty list."""
    from functools import partial

    from recognizer.batch.cluster import BatchConfig, BatchError, run_batch
    from recognizer.batch.jobs import discover
    from recognizer.models.engine import Recognizer

    clip = _clip(tmp_path / "clip.mp4", 4, seed=3)
    load = partial(Recognizer.from_checkpoints, str(tmp_path / "gone" / "detector.pt"), str(tmp_path / "gone" / "classifier.pt"), device="cpu")
    out = tmp_path / "out"
    with pytest.raises(BatchError, match="a Ray worker cannot load the models"):
        run_batch(discover([str(clip)]), BatchConfig(out=out, load=load, workers=1))
    summary = _summary(out)
    assert summary["status"] == "failed" and summary["failed"] == []
    assert summary["error"].startswith("a Ray worker cannot load the models") and "\n" not in summary["error"]
