"""Images per second of each reader mode on still images: ``python -m benchmarks.readers``.

Reads the same real images with ``--reader digits``, ``fast`` and ``accurate`` (as
``recognizer image`` runs them: test-time views on, one image per call), the modes interleaved
round by round so that other load on the machine hits each alike, and prints the best round of
each per set. Needs the real data in ``../shared/data`` (``--data-root``).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence

MODES = ("digits", "fast", "accurate")


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from recognizer.models.engine import Recognizer
    from recognizer.models.fusion import FusedRecognizer, FusionConfig
    from recognizer.models.textreader import load_text_reader
    from train.datasets import read_image
    from train.realsets import load_set

    p = argparse.ArgumentParser(prog="python -m benchmarks.readers", description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--per-set", type=int, default=20, help="images per set (spread over its val part)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rec = Recognizer.from_checkpoints("weights/detector_light.pt", "weights/classifier.pt", device="cpu", tta=True)
    reader = load_text_reader(threads=args.threads)
    readers = {m: rec if m == "digits" else FusedRecognizer(rec, reader, FusionConfig(mode=m)) for m in MODES}
    sets = {name: [read_image(i.path)[0] for i in load_set(name, "val", args.data_root, limit=args.per_set)]
            for name in ("svhn", "closeups", "scenes")}
    for images in sets.values():  # warm up every model once
        for r in readers.values():
            r.recognize(images[:1])
    best: dict[str, dict[str, float]] = {name: {} for name in sets}
    for _ in range(args.rounds):
        for name, images in sets.items():
            for mode, r in readers.items():
                t0 = time.perf_counter()
                for image in images:
                    r.recognize([image])
                ips = len(images) / (time.perf_counter() - t0)
                best[name][mode] = max(best[name].get(mode, 0.0), ips)
    sizes = {name: f"{images[0].shape[1]}x{images[0].shape[0]}" for name, images in sets.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
          f"best of {args.rounds} interleaved rounds, {args.per_set} images per set")
    print("| set (first image's size) | " + " | ".join(f"{m} (images/s)" for m in MODES) + " |")
    print("| --- |" + " --- |" * len(MODES))
    for name in sets:
        print(f"| {name} ({sizes[name]}) | " + " | ".join(f"{best[name][m]:.2f}" for m in MODES) + " |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"images_per_second": best, "rounds": args.rounds, "per_set": args.per_set}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
