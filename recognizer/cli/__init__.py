"""Command line entry point: ``recognizer SUBCOMMAND ...``.

argparse lives in this package only: :mod:`~recognizer.cli.options` holds the options every
command that runs the models shares, and each subcommand module (``image``, ``run``, ``bench``,
``demo``) exposes ``register(subparsers)`` that adds its parser and sets ``func`` to a thin
handler ``(args) -> int`` over library code. Modules are listed explicitly so the order of
``--help`` is stable.

The user-facing errors and their exit statuses (:func:`~recognizer.errors.run_main`) live in
:mod:`recognizer.errors`, shared with ``train/`` and ``tools/``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

from recognizer import __version__
from recognizer.errors import run_main

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "recognizer.cli.demo",
    "recognizer.cli.image",
    "recognizer.cli.run",
    "recognizer.cli.bench",
    "recognizer.cli.batch",
    "recognizer.cli.report",
)

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
    return run_main("recognizer", lambda: args.func(args))
