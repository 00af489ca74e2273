"""Does writing evidence pictures slow ``recognizer run`` down? FPS with and without
``--evidence``, interleaved (issue 22).

    python -m benchmarks.evidence --frames 300 --repeats 4 --out /tmp/evidence-bench

Generates a 640x480, 30 fps clip of the bench footage with five plates (so numbers are confirmed,
and their best views replaced, all along), then runs ``recognizer run CLIP --log LOG`` and the
same with ``--evidence DIR`` alternately, each in a fresh process with the shipped weights, and
prints the FPS each run reports (frames over the frame loop's wall time; model loading not
included) and the pictures written. Runs alternate so a burst of other load on a shared machine
hits both alike. Last, one run in this process times the evidence sink's work on the main
thread around each frame (the part that could hold the frame loop up).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from recognizer.synth.footage import ClipSpec, make_bench_clip

NUMBERS = ("221", "47", "1350", "86", "503")


def _run(clip: Path, out: Path, tag: str, evidence: bool) -> dict:
    log = out / f"{tag}.jsonl"
    cmd = [sys.executable, "-m", "recognizer", "run", str(clip), "--log", str(log), "--device", "cpu", "--no-progress"]
    folder = out / f"{tag}-evidence"
    if evidence:
        shutil.rmtree(folder, ignore_errors=True)
        cmd += ["--evidence", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"(\d+) frames in ([\d.]+) s \(([\d.]+) FPS\)", done.stdout)
    assert m is not None, done.stdout + done.stderr
    pictures = len(list(folder.glob("*.jpg"))) if evidence else 0
    confirmed = sum(1 for line in log.read_text().splitlines() if '"type":"confirmed"' in line)
    return {"evidence": evidence, "frames": int(m.group(1)), "seconds": float(m.group(2)), "fps": float(m.group(3)),
            "confirmed": confirmed, "pictures": pictures}


def sink_cost(clip: Path, out: Path) -> dict:
    """Main-thread time the evidence sink takes per frame (its ``emit``: keeping crops, handing
    pictures to the writer thread), measured in-process around each call."""
    import time

    from recognizer.io.sources import open_source
    from recognizer.live.run import run
    from recognizer.models.engine import Recognizer
    from recognizer.models.weights import resolve_weights
    from recognizer.output.evidence import EvidenceWriter
    from recognizer.output.sinks.numbers import NumbersSink

    costs: list[float] = []

    class Timed(NumbersSink):
        def emit(self, result, image=None):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            super().emit(result, image)
            costs.append(time.perf_counter() - t0)

    folder = out / "timed-evidence"
    shutil.rmtree(folder, ignore_errors=True)
    rec = Recognizer.from_checkpoints(resolve_weights(None, "detector"), resolve_weights(None, "classifier"), device="cpu", tta=False)
    summary = run(open_source(str(clip)), rec, numbers=lambda: Timed(evidence=EvidenceWriter(folder)))
    ms = sorted(c * 1000 for c in costs)
    return {"frames": summary.frames, "mean_ms": statistics.mean(ms), "p99_ms": ms[int(0.99 * (len(ms) - 1))], "max_ms": ms[-1],
            "pictures": len(list(folder.glob("*.jpg")))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--out", default="/tmp/evidence-bench")
    p.add_argument("--json", help="also write the runs here")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = make_bench_clip(out / "clip.mp4", args.frames, ClipSpec(numbers=NUMBERS))
    runs = []
    load = [os.getloadavg()[0]]
    for k in range(args.repeats):
        for evidence in ((False, True) if k % 2 == 0 else (True, False)):
            run = _run(clip, out, f"{'with' if evidence else 'without'}{k}", evidence)
            runs.append(run)
            print(json.dumps(run), flush=True)
    load.append(os.getloadavg()[0])
    for evidence in (False, True):
        fps = [r["fps"] for r in runs if r["evidence"] is evidence]
        print(f"{'with' if evidence else 'without'} --evidence: FPS {', '.join(f'{v:.1f}' for v in fps)} "
              f"(mean {statistics.mean(fps):.1f}, median {statistics.median(fps):.1f})")
    print(f"load average {load[0]:.2f} -> {load[1]:.2f}")
    cost = sink_cost(clip, out)
    print(f"evidence sink on the main thread: {cost['mean_ms']:.3f} ms/frame mean, p99 {cost['p99_ms']:.3f} ms, "
          f"max {cost['max_ms']:.2f} ms over {cost['frames']} frames ({cost['pictures']} pictures)")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "load": load, "sink": cost}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
