"""``recognizer image``: read the house numbers in image files."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from recognizer.cli import options
from recognizer.cli.options import add_model_arguments, same_file
from recognizer.errors import CLIError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "image",
        help="read house numbers in image files",
        description="Print the house number(s) read in each image; optionally save annotated copies.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders of images")
    p.add_argument("--json", action="store_true", help="print one JSON object per image (JSON Lines)")
    p.add_argument("--save-dir", metavar="DIR", help="write each image with boxes and digits drawn here")
    p.add_argument("--batch", type=int, default=4, metavar="N", help="images per batch (default: 4)")
    add_model_arguments(p)
    p.set_defaults(func=run_image)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given; folders replaced by the image files in them (sorted)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


BATCH_PIXELS = 4096 * 4096
"""A batch is sent to the recognizer early once its images hold this many pixels: the detector
holds about 30 bytes per input pixel while it runs, so four 4096x4096 images at once would need
some 2 GB. Images are downscaled on read to :data:`recognizer.io.imageio.MAX_SIDE`."""


def prepare_save_dir(raw: str) -> Path:
    """Create the ``--save-dir`` folder; a file, or a folder that cannot be made or written, is a CLIError."""
    folder = Path(raw)
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"--save-dir '{folder}' is a file; expected a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--save-dir '{folder}': cannot create the folder ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"--save-dir '{folder}': the folder is not writable")
    return folder


class ResultNames:
    """Names of the drawn copies in ``--save-dir``: ``STEM_read.png``, never one already written
    by this run nor one of the inputs (``a/photo.png`` and ``b/photo.jpg`` give ``photo_read.png``
    and ``photo_read-2.png``)."""

    def __init__(self, folder: Path, inputs: list[Path]) -> None:
        self.folder = folder
        self._taken: set[Path] = set()
        self._inputs = [p for p in inputs if p.is_file()]

    def _is_input(self, out: Path) -> bool:
        return any(same_file(out, p) for p in self._inputs)

    def next(self, path: Path) -> Path:
        n = 1
        while True:
            out = self.folder / (f"{path.stem}_read.png" if n == 1 else f"{path.stem}_read-{n}.png")
            key = out.resolve()
            if key not in self._taken and not self._is_input(out):
                self._taken.add(key)
                return out
            n += 1


def run_image(args: argparse.Namespace) -> int:
    from recognizer.io.imageio import read_image
    from recognizer.output.records import rescale_reading
    from recognizer.output.render import draw_readings

    if args.batch < 1:
        raise CLIError(f"--batch {args.batch}: expected a positive number of images")
    options.in_range("--batch", args.batch, 1, options.MAX_BATCH, "images per inference call; memory grows with it")
    paths = expand_paths(args.paths)
    if not paths:
        raise CLIError(f"no images found in {', '.join(args.paths)}")
    save_dir = prepare_save_dir(args.save_dir) if args.save_dir else None
    names = ResultNames(save_dir, paths) if save_dir else None
    recognizer = options.load_recognizer(args)
    mode = options.reader_mode(args)
    reader = options.load_text_reader(mode)
    if reader is not None:
        from recognizer.models.fusion import FusedRecognizer, FusionConfig

        recognizer = FusedRecognizer(recognizer, reader, FusionConfig(mode=mode))
    failed = 0
    # (path, image as read, (x, y) factors back to the file's pixels or None)
    pending: list[tuple[Path, np.ndarray, tuple[float, float] | None]] = []
    pixels = 0

    def flush() -> None:
        nonlocal failed, pixels
        if not pending:
            return
        results = recognizer.recognize([img for _, img, _ in pending])
        for (path, image, scale), readings in zip(pending, results):
            if args.json:
                # Boxes in the file's pixels, also for an image downscaled on read.
                shown = [rescale_reading(r, scale) for r in readings] if scale is not None else readings
                print(json.dumps({"path": str(path), "readings": [r.to_dict() for r in shown]}), flush=True)
            else:
                text = ", ".join(r.text for r in readings) if readings else "(none)"
                print(f"{path}: {text}", flush=True)
            if names is not None:
                out = names.next(path)
                if out.name != f"{path.stem}_read.png":
                    print(f"recognizer: note: {path} saved as {out} ({path.stem}_read.png is taken by another image of this run)", file=sys.stderr)
                # A downscaled image is drawn (and saved) at the size it was read.
                if not cv2.imwrite(str(out), draw_readings(image, readings)):
                    print(f"recognizer: error: cannot write {out}", file=sys.stderr)
                    failed += 1
        pending.clear()
        pixels = 0

    for path in paths:
        image, why, original = read_image(path)
        if image is None:
            print(f"recognizer: error: cannot read image {str(path)!r}: {why}", file=sys.stderr)
            failed += 1
            continue
        h, w = image.shape[:2]
        if pending and pixels + h * w > BATCH_PIXELS:
            flush()
        scale = (original[0] / w, original[1] / h) if original is not None else None
        pending.append((path, image, scale))
        pixels += h * w
        if len(pending) >= args.batch:
            flush()
    flush()
    return 1 if failed else 0
