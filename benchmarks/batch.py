"""``recognizer batch`` throughput: 1 worker against 2 on the same clips, in one run.

Generates ``--files`` clips (the panning wall with house-number plates of ``recognizer bench``,
``--frames`` frames each at ``--size``), starts one local Ray instance (its start-up is timed
on its own), then processes the clips with 1 worker and with 2 (``--order`` times each,
alternating, every run into a fresh output folder, so no file is skipped) through the library
entry point of ``recognizer batch`` (:func:`recognizer.batch.cluster.run_batch`, shipped weights on
the CPU). Each run's wall time includes starting its workers (loading the models); the table
gives files per hour, frames per second and the speed-up of 2 workers over 1::

    python -m benchmarks.batch --files 8 --frames 150 --json runs/batch-bench.json

The load average before and after is printed: other work on the machine shows up in it.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def make_clips(folder: Path, files: int, frames: int, size: tuple[int, int]) -> list[Path]:
    """``files`` clips, each with its own plates and texture (kept and reused)."""
    from recognizer.synth.footage import ClipSpec, make_bench_clip

    folder.mkdir(parents=True, exist_ok=True)
    numbers = ("221", "47", "1350", "12", "86", "305", "63", "58", "9", "740")
    clips = []
    for k in range(files):
        path = folder / f"clip{k:02d}_{size[0]}x{size[1]}_{frames}.mp4"
        if not path.is_file():
            spec = ClipSpec(width=size[0], height=size[1], fps=30.0, numbers=(numbers[k % 10], numbers[(k + 3) % 10]), seed=k)
            make_bench_clip(path, frames, spec)
        clips.append(path)
    return clips


def loader() -> Any:
    """What each worker calls: the shipped models on the CPU, as ``recognizer batch`` loads them."""
    from recognizer.cli.options import load_recognizer
    from recognizer.models.weights import resolve_weights

    options = argparse.Namespace(
        detector=str(resolve_weights(None, "detector").resolve()), classifier=str(resolve_weights(None, "classifier").resolve()),
        device="cpu", score_thresh=None, not_digit_thresh=None, tta=None,
    )
    return functools.partial(load_recognizer, options, video=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--size", default="640x480", help="WxH of the clips (default: 640x480)")
    p.add_argument("--workers", default="1,2", help="worker counts to compare (default: 1,2)")
    p.add_argument("--order", type=int, default=1, help="runs of each worker count, alternating (default: 1)")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "recognizer-batch-bench"), help="folder for the clips and outputs")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)

    import ray

    from recognizer.batch.cluster import BatchConfig, run_batch
    from recognizer.batch.jobs import discover

    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work)
    clips = make_clips(work / "clips", args.files, args.frames, (width, height))
    jobs = discover([str(c) for c in clips])
    load_before = os.getloadavg()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.monotonic()
    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False,
             logging_level=logging.ERROR)
    ray_start = time.monotonic() - t0
    runs: list[dict[str, Any]] = []
    try:
        counts = [int(v) for v in args.workers.split(",")]
        for repeat in range(args.order):
            for n in counts:
                out = work / f"out-{n}w-{repeat}"
                shutil.rmtree(out, ignore_errors=True)
                report = run_batch(jobs, BatchConfig(out=out, load=loader(), workers=n))
                d = report.to_dict()
                runs.append({"workers": n, "repeat": repeat, "status": d["status"], "files": d["done"], "frames": d["frames"],
                             "seconds": d["seconds"], "fps": d["fps"], "files_per_hour": d["files_per_hour"],
                             "workers_ready_seconds": d["workers_ready_seconds"], "numbers": d["numbers"]})
                print(f"{n} worker(s): {report.line()}", flush=True)
    finally:
        ray.shutdown()
    load_after = os.getloadavg()
    best = {n: min((r for r in runs if r["workers"] == n), key=lambda r: r["seconds"]) for n in {r["workers"] for r in runs}}
    print(f"\nclips: {args.files} x {args.frames} frames at {width}x{height}; cores: {os.cpu_count()}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; Ray start-up {ray_start:.1f} s\n")
    print("| workers | files/hour | frames/s | frames/s once started | wall s | workers ready s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    base = best[min(best)]["seconds"]
    for n in sorted(best):
        r = best[n]
        steady = r["frames"] / max(r["seconds"] - r["workers_ready_seconds"], 1e-9)
        print(f"| {n} | {r['files_per_hour']:.0f} | {r['fps']:.1f} | {steady:.1f} | {r['seconds']:.1f} | {r['workers_ready_seconds']:.1f} | {base / r['seconds']:.2f}x |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "files": args.files, "frames": args.frames, "size": [width, height], "cores": os.cpu_count(),
            "load_before": load_before, "load_after": load_after, "ray_start_seconds": round(ray_start, 3), "runs": runs,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
