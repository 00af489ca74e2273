"""Several cameras: one process with one shared batch against one process per camera.

For each camera count N (default 1, 2 and 4) the same work is run two ways, one after the
other in one invocation of this script:

* **shared**: one process runs the N cameras as ``recognizer run CAM CAM ...`` does
  (:func:`~recognizer.live.run.run`: one model, frames of all cameras in the same batches, one
  tiled window);
* **separate**: N processes, each running one camera as ``recognizer run CAM`` does (the same
  :func:`~recognizer.live.run.run` with one source), all at the same time.

Each camera is a :class:`~recognizer.synth.footage.SyntheticCamera` (640x480, ``--fps`` frames
per second, its own seed) for ``--seconds``. Every process loads the models and chooses its
threads exactly as ``recognizer run`` does (``--device cpu``, the shipped weights, the default
workers and torch threads; ``--device cuda`` for a GPU), draws every frame with its HUD and hands it to a window that shows
nothing (no X server needed; the tiled window still composes its grid). The processes are
started early, load their models, warm up, and begin their cameras at one agreed moment, so
loading torch in one process does not eat into another's measured seconds.

Per camera: frames shown per second, capture-to-display latency (p50, p95: from the moment the
capture thread got the frame to the moment its annotated copy was handed to the window) and
frames dropped (a newer frame arrived first). Per arm: the machine's load average before and
after, and the CPU the processes used (cores' worth, at most 2.0 on this machine).

    python -m benchmarks.multicam --cameras 1 2 4 --seconds 20 --json runs/multicam.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class _NullWindow:
    """A window that shows nothing (the frames are still drawn and handed to it)."""

    quit = False
    frames = 0

    def emit(self, result: Any, image: Any) -> None:
        self.frames += 1

    def show(self, image: Any) -> bool:
        self.frames += 1
        return True

    def close(self) -> None:
        pass


def _load_models(device: str = "cpu") -> tuple[Any, int]:
    """The recognizer and workers of ``recognizer run --device DEVICE`` (shipped weights), warmed up."""
    from recognizer.cli import options
    from recognizer.live.threads import choose_parallelism, configure_threads
    from recognizer.synth.footage import ClipSpec, synthetic_frame

    args = argparse.Namespace(detector=None, classifier=None, device=device, score_thresh=None, not_digit_thresh=None, tta=None)
    recognizer = options.load_recognizer(args, video=True)
    workers, threads = choose_parallelism(recognizer.device.type, None, None)
    configure_threads(threads)
    # The first calls are slow (allocations): make them on a thread of their own, before the clock.
    warm = threading.Thread(target=lambda: [recognizer.recognize([synthetic_frame(i, ClipSpec())]) for i in range(3)])
    warm.start()
    warm.join()
    return recognizer, workers


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def worker(cameras: int, seconds: float, fps: float, start_at: float, out: Path, device: str = "cpu") -> None:
    """Run ``cameras`` synthetic cameras in this process (one: the single-source path), from
    ``start_at`` (wall clock) for ``seconds``; write the figures to ``out`` as JSON."""
    from recognizer.live.pipeline import PipelineConfig
    from recognizer.live.run import run
    from recognizer.output.sinks import TiledWindow
    from recognizer.synth.footage import ClipSpec, SyntheticCamera

    recognizer, workers = _load_models(device)
    late = time.time() - start_at
    if late < 0:
        time.sleep(-late)
    cams = [SyntheticCamera(ClipSpec(width=640, height=480, fps=fps, seed=k), frames=int(round(seconds * fps))) for k in range(cameras)]
    names = [f"cam{k}" for k in range(cameras)]
    window = _NullWindow() if cameras == 1 else TiledWindow(names, window=_NullWindow())
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    summary = run(cams, recognizer, names=names, config=PipelineConfig(batch_size=max(4, cameras), workers=workers), window=window)
    per_camera = summary.sources or [summary]
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    if summary.exception is not None:
        raise summary.exception
    result = {
        "cameras": [
            {
                "frames": s.frames, "captured": s.captured, "dropped": s.dropped, "seconds": round(s.seconds, 2),
                "fps": round(s.frames / seconds, 2),
                "latency_p50_ms": _round(s.latency_ms(50)),
                "latency_p95_ms": _round(s.latency_ms(95)),
            }
            for s in per_camera
        ],
        "cpu_seconds": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 2),
        "wall": round(wall, 2),
        "late_s": round(max(late, 0.0), 2),
        "workers": workers,
    }
    out.write_text(json.dumps(result))


def run_arm(kind: str, n: int, seconds: float, fps: float, folder: Path, device: str = "cpu") -> dict[str, Any]:
    """One arm: ``shared`` (one process, n cameras) or ``separate`` (n processes, one camera each)."""
    procs = n if kind == "separate" else 1
    per_process = 1 if kind == "separate" else n
    # Time for every process to import torch and load the models on 2 busy cores.
    start_at = time.time() + 10 + 4 * procs
    load0 = os.getloadavg()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    outs = [folder / f"{kind}-{n}-{k}.json" for k in range(procs)]
    children = [
        subprocess.Popen([sys.executable, "-m", "benchmarks.multicam", "--worker", "--cameras", str(per_process), "--seconds", str(seconds),
                          "--fps", str(fps), "--start-at", repr(start_at), "--out", str(out), "--device", device], cwd=REPO, env=env)
        for out in outs
    ]
    for child in children:
        if child.wait() != 0:
            raise RuntimeError(f"a {kind} worker failed with status {child.returncode}")
    load1 = os.getloadavg()
    results = [json.loads(out.read_text()) for out in outs]
    cams = [c for r in results for c in r["cameras"]]
    captured = sum(c["captured"] for c in cams)
    return {
        "arm": kind, "cameras": n, "processes": procs,
        "fps_per_camera_mean": round(sum(c["fps"] for c in cams) / len(cams), 2),
        "fps_per_camera_min": min(c["fps"] for c in cams),
        "latency_p50_ms_mean": round(sum(c["latency_p50_ms"] or 0 for c in cams) / len(cams), 1),
        "latency_p95_ms_mean": round(sum(c["latency_p95_ms"] or 0 for c in cams) / len(cams), 1),
        "latency_p95_ms_max": max(c["latency_p95_ms"] or 0 for c in cams),
        "dropped": sum(c["dropped"] for c in cams), "captured": captured,
        "dropped_pct": round(100.0 * sum(c["dropped"] for c in cams) / max(captured, 1), 1),
        "cpu_cores_used": round(sum(r["cpu_seconds"] for r in results) / max(max(r["wall"] for r in results), 1e-9), 2),
        "late_s_max": max(r["late_s"] for r in results),
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in load1],
        "per_camera": cams,
    }


def table(rows: list[dict[str, Any]], fps: float) -> str:
    lines = [
        f"| cameras @ {fps:g} fps | run as | shown FPS per camera (mean / min) | latency p50 | latency p95 (mean / worst camera) "
        "| dropped | CPU cores used | load average before -> after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        how = "1 process, shared batch" if r["arm"] == "shared" else f"{r['processes']} separate process(es)"
        lines.append(
            f"| {r['cameras']} | {how} | {r['fps_per_camera_mean']} / {r['fps_per_camera_min']} | {r['latency_p50_ms_mean']} ms "
            f"| {r['latency_p95_ms_mean']} / {r['latency_p95_ms_max']} ms | {r['dropped']}/{r['captured']} ({r['dropped_pct']}%) "
            f"| {r['cpu_cores_used']} | {r['loadavg_before'][0]} -> {r['loadavg_after'][0]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4], help="camera counts to measure (default: 1 2 4)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds each camera runs (default: 20)")
    p.add_argument("--fps", type=float, default=15.0, help="frame rate of each camera (default: 15)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N, as for recognizer run")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.cameras[0], args.seconds, args.fps, args.start_at, args.out, args.device)
        return 0
    from recognizer.apps.bench import machine_info

    rows = []
    with tempfile.TemporaryDirectory(prefix="multicam-") as tmp:
        for k, n in enumerate(args.cameras):
            # Alternate which arm goes first, so a burst of other load does not always hit the same one.
            for kind in (("shared", "separate") if k % 2 == 0 else ("separate", "shared")):
                if kind == "separate" and n == 1:
                    continue  # the same as shared with one camera: one `recognizer run` process
                row = run_arm(kind, n, args.seconds, args.fps, Path(tmp), args.device)
                rows.append(row)
                print(table([row], args.fps).splitlines()[-1], flush=True)
    rows.sort(key=lambda r: (r["cameras"], r["arm"] != "shared"))
    print()
    print(table(rows, args.fps))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine_info(), "seconds": args.seconds, "fps": args.fps, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
