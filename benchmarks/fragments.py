"""What ``--fragment-seconds`` costs and buys: the ``.mp4`` writer at several fragment lengths.

``recognizer run --save out.mp4`` writes H.264 in fragmented MP4 (PyAV): a fragment per
keyframe, a keyframe every ``--fragment-seconds`` of video. A process killed with ``kill -9``
leaves the video up to its last complete fragment, while the ``--log`` is flushed line by line,
so the log can be ahead of the video by up to one fragment. Shorter fragments lose less and cost
bytes (more keyframes) and a little encoding time.

For each value this script writes the frames of the generated benchmark clip (640x480, the
panning wall with number plates of ``recognizer bench``) through the real
:class:`recognizer.output.sinks.VideoSink` and reports:

* the writer's FPS (best of ``--repeats``; encoding and muxing only, no models),
* the size of the finished file,
* the frames a kill would lose: every ``--every`` frames, a copy of the file as it is on disk
  at that moment (what a ``kill -9`` would leave) is decoded, and the frames written but not
  decodable are counted (mean and max over the samples).

    python -m benchmarks.fragments --values 0.25 1 4 --frames 300
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from recognizer.output.sinks import VideoSink
from recognizer.output.sinks.video import count_readable_frames
from recognizer.synth.footage import ClipSpec, synthetic_frame


def frames_of_clip(n: int, fps: float) -> list[np.ndarray]:
    spec = ClipSpec(width=640, height=480, fps=fps)
    return [synthetic_frame(i, spec) for i in range(n)]


def write_timed(frames: list[np.ndarray], path: Path, fps: float, seconds: float) -> float:
    """Seconds to write and finalize ``frames``."""
    sink = VideoSink(path, fps, fragment_seconds=seconds)
    t0 = time.perf_counter()
    for image in frames:
        sink.write(image)
    sink.close()
    return time.perf_counter() - t0


def kill_losses(frames: list[np.ndarray], path: Path, fps: float, seconds: float, every: int) -> list[int]:
    """Frames written but not decodable in a copy of the file taken every ``every`` frames."""
    sink = VideoSink(path, fps, fragment_seconds=seconds)
    snapshot = path.with_name(f"snapshot{path.suffix}")
    lost = []
    for k, image in enumerate(frames, 1):
        sink.write(image)
        if k % every == 0:
            shutil.copyfile(path, snapshot)
            lost.append(k - count_readable_frames(snapshot))
    sink.close()
    return lost


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--values", type=float, nargs="+", default=[0.25, 1.0, 4.0], help="--fragment-seconds values")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--every", type=int, default=7, help="frames between two simulated kills")
    p.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = p.parse_args(argv)
    frames = frames_of_clip(args.frames, args.fps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.values:
            path = Path(tmp) / f"f{seconds:g}.mp4"
            best = min(write_timed(frames, path, args.fps, seconds) for _ in range(args.repeats))
            size = os.path.getsize(path)
            lost = kill_losses(frames, Path(tmp) / "k.mp4", args.fps, seconds, args.every)
            rows.append({"fragment_seconds": seconds, "writer_fps": round(len(frames) / best, 1),
                         "ms_per_frame": round(1000 * best / len(frames), 2), "bytes": size,
                         "kill_lost_mean": round(float(np.mean(lost)), 1), "kill_lost_max": int(max(lost))})
    print(f"{len(frames)} frames 640x480 at {args.fps:g} fps; load average {os.getloadavg()[0]:.2f}")
    print("fragment s | writer FPS | ms/frame | file KiB | frames lost by a kill: mean, max")
    for r in rows:
        print(f"{r['fragment_seconds']:>10g} | {r['writer_fps']:>10} | {r['ms_per_frame']:>8} | {r['bytes'] // 1024:>8} | "
              f"{r['kill_lost_mean']}, {r['kill_lost_max']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
