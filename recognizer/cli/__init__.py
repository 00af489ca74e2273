"""Command line entry point: ``recognizer SUBCOMMAND ...``.

argparse lives here and in the ``cli_*`` modules only. Each subcommand module exposes
``register(subparsers)`` that adds its parser and sets ``func`` to a handler
``(args) -> int`` returning the exit code. Modules are listed explicitly so the order of
``--help`` is stable.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from collections.abc import Sequence

from recognizer import __version__

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "recognizer.cli_demo",
    "recognizer.cli_image",
    "recognizer.cli_run",
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def finite_float(text: str) -> float:
    """argparse ``type=`` of every float option: a finite number (``nan``/``inf`` are usage errors).

    ``float("nan")`` succeeds, and a NaN timeout or frame rate never compares true with anything
    (a run that never gives up); ``tests/test_bad_input.py`` checks that no option uses plain float.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recognizer",
        description="Read house numbers in images, video files, webcams and streams.",
    )
    parser.add_argument("--version", action="version", version=f"recognizer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module: let it show
                raise
            continue  # that subcommand is not part of this build
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except CLIError as exc:
        print(f"recognizer: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("recognizer: interrupted", file=sys.stderr)
        return 130
