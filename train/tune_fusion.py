"""Calibrate how the two readers are fused, on validation images only: ``python -m train.tune_fusion``.

Runs the digit path once per image and the text reader once per image and region setting (the
padding, and ``fast`` or ``accurate`` regions) on the ``dev`` part of every real set
(:mod:`train.realsets`), then replays :meth:`recognizer.models.fusion.FusedRecognizer.decide` over a
grid of thresholds (``veto_score``, ``override_score``, ``keep_own``, ``new_score``) without
reading again. Prints the best settings per mode by the mean whole-number accuracy of the
number sets, with the letters-only words read as digits beside them, and writes every cell to
``OUT/grid.jsonl`` and the winners to ``OUT/best.json``.

The ``val`` parts are never read here: they are the scorecard's (``python -m train.scorecard``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("train.tune_fusion")

PADS = ((0.15, 0.1), (0.35, 0.15), (0.6, 0.25))
CROP_SIDES = (0, 400)  # crop_max_side: off, or small images read whole
GRID = {
    "veto_score": (0.3, 0.5, 0.7, 0.9),
    "override_score": (0.6, 0.7, 0.8, 0.9, 1.0),
    "keep_own": (0.8, 0.9, 0.97, 1.01),
    "new_score": (0.6, 0.7, 0.8, 0.9),
}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.tune_fusion", description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="weights/detector_light.pt", metavar="CKPT")
    p.add_argument("--classifier", default="weights/classifier.pt", metavar="CKPT")
    p.add_argument("--data-root", default="../shared/data", metavar="DIR", help="folder holding svhn_real, building_numbers, scene_text")
    p.add_argument("--sets", nargs="+", default=["svhn", "closeups", "scenes", "letters"])
    p.add_argument("--limit", type=int, default=150, help="at most this many images per set")
    p.add_argument("--modes", nargs="+", default=["fast", "accurate"])
    p.add_argument("--out", default="runs/tune_fusion", metavar="DIR")
    p.add_argument("--threads", type=int, default=1)
    return p


def _main(argv: Sequence[str] | None) -> int:
    import torch

    from recognizer.models.engine import Recognizer
    from recognizer.models.fusion import FusedRecognizer, FusionConfig, RegionPlan
    from recognizer.models.textreader import load_text_reader
    from train.common import UsageError
    from train.inputs import read_batches
    from train.realsets import load_set, score, summarise

    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    reader = load_text_reader(threads=args.threads)
    if reader is None:
        raise UsageError("the text reader could not be loaded (pip install rapidocr onnxruntime)")
    rec = Recognizer.from_checkpoints(args.detector, args.classifier, device="cpu", tta=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # cache[set] = list of (item, digit readings, {mode: plan}, {(mode, pad): reads})
    cache: dict[str, list[tuple[Any, list[Any], dict[str, Any], dict[Any, Any]]]] = {}
    t0 = time.time()
    for name in args.sets:
        items = load_set(name, "dev", args.data_root, limit=args.limit)
        rows = []
        for kept, images, _ in read_batches(items, lambda i: i.path, 1):
            for item, image in zip(kept, images):
                readings = rec.recognize([image])[0]
                plans, reads = {}, {}
                for mode in args.modes:
                    for side in CROP_SIDES if mode != "fast" else (0,):
                        fr = FusedRecognizer(rec, reader, FusionConfig(mode=mode, crop_max_side=side))
                        if side and not fr.reads_whole(image, readings):  # the same regions as without: no second text-detector pass
                            plans[(mode, side)] = plans[(mode, 0)]
                            for pad in PADS:
                                reads[(mode, side, pad)] = reads[(mode, 0, pad)]
                            continue
                        plan = fr.plan(image, list(readings))
                        plans[(mode, side)] = plan
                        for pad in PADS:
                            reads[(mode, side, pad)] = reader.read(fr.region_crops(image, plan, pad))
                rows.append((item, readings, plans, reads))
        cache[name] = rows
        log.info("%s: %d images read (%.0f s so far)", name, len(rows), time.time() - t0)

    def evaluate(mode: str, cfg: FusionConfig) -> dict[str, Any]:
        fr = FusedRecognizer(rec, reader, cfg)
        res = {}
        for name, rows in cache.items():
            scored = []
            for item, readings, plans, reads in rows:
                if mode == "digits":
                    fused = readings
                else:
                    plan: RegionPlan = plans[(mode, cfg.crop_max_side)]
                    fused = fr.decide(plan, reads[(mode, cfg.crop_max_side, (cfg.pad_x, cfg.pad_y))])
                scored.append(score(item, fused))
            res[name] = summarise(name, scored)
        return res

    def objective(res: dict[str, Any]) -> float:
        accs = [res[n]["accuracy"] for n in res if n != "letters" and "accuracy" in res[n]]
        letters = res.get("letters", {}).get("words_with_digit", 0.0)
        return sum(accs) / max(len(accs), 1) - letters

    base = evaluate("digits", FusionConfig(mode="fast"))
    print("digits alone: " + "  ".join(_fmt(n, r) for n, r in base.items()))
    best: dict[str, Any] = {"digits": {"config": None, "result": base, "objective": objective(base)}}
    with open(out / "grid.jsonl", "w", encoding="utf-8") as fh:
        for mode in args.modes:
            top = None
            sides = CROP_SIDES if mode != "fast" else (0,)
            for side, pad, values in itertools.product(sides, PADS, itertools.product(*GRID.values())):
                cfg = replace(FusionConfig(mode=mode, pad_x=pad[0], pad_y=pad[1], crop_max_side=side), **dict(zip(GRID.keys(), values)))
                res = evaluate(mode, cfg)
                obj = objective(res)
                fh.write(json.dumps({"config": asdict(cfg), "objective": obj, "result": res}) + "\n")
                if top is None or obj > top["objective"] + 1e-9:
                    top = {"config": asdict(cfg), "result": res, "objective": obj}
            best[mode] = top
            print(f"{mode}: best {top['config']}\n    " + "  ".join(_fmt(n, r) for n, r in top["result"].items()))
    (out / "best.json").write_text(json.dumps(best, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'best.json'} and {out / 'grid.jsonl'} in {time.time() - t0:.0f} s")
    return 0


def _fmt(name: str, r: dict[str, Any]) -> str:
    if name == "letters":
        return f"letters {r.get('words_hit', 0)}/{r.get('words', 0)} words with a digit"
    return f"{name} {r.get('correct', 0)}/{r.get('images', 0)}"


def main(argv: Sequence[str] | None = None) -> int:
    from train.common import run_main

    return run_main(_main, argv, "train.tune_fusion")


if __name__ == "__main__":
    sys.exit(main())
