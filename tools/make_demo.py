"""Write a demo street clip with known house numbers (the clip behind ``recognizer demo``).

    python tools/make_demo.py --out clips/street0 --seed 0 --frames 180
        -> clips/street0/clip.mp4 and clips/street0/truth.json

truth.json lists each house number with the frames where it is fully visible, and per-frame
digit boxes; tracking and smoothing can be measured against it.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # run from a checkout
    sys.path.insert(0, str(_ROOT))

from recognizer.errors import UsageError, run_main  # noqa: E402
from recognizer.synth.street import ClipConfig, make_street_clip  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=180)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--houses", type=int, default=None, help="house numbers along the street (default: frames / 36)")
    p.add_argument("--motion-blur", type=float, default=0.35, help="exposure as a fraction of a frame (default 0.35; 0 = none)")
    p.add_argument("--noise", type=float, default=3.0, help="noise sigma in grey levels (default 3)")
    p.add_argument("--name", default="clip.mp4", help="video file name, .mp4 or .avi (default clip.mp4)")
    p.add_argument("--force", action="store_true", help="render again even if the same clip is there")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("make_demo", lambda: _make(get_args_parser().parse_args(argv)))


def _make(args: argparse.Namespace) -> int:
    try:
        cfg = ClipConfig(seed=args.seed, frames=args.frames, fps=args.fps, width=args.width, height=args.height,
                         houses=args.houses, motion_blur=args.motion_blur, noise=args.noise)
        t0 = time.perf_counter()
        clip = make_street_clip(args.out, cfg, reuse=not args.force, name=args.name)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    dt = time.perf_counter() - t0
    print(f"{clip.video} ({cfg.frames} frames, {cfg.width}x{cfg.height} at {cfg.fps:g} fps) and {clip.truth_path} in {dt:.1f} s")
    for n in clip.truth["numbers"]:
        lo, hi = n["digit_height"]
        print(f"  {n['text']:>5}: fully visible in frames {n['first_frame']}-{n['last_frame']} "
              f"({n['visible_frames']} frames), digits {lo:.0f}-{hi:.0f} px tall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
