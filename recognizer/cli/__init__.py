"""Command line entry point: ``recognizer SUBCOMMAND ...``.

argparse lives in this package only: :mod:`~recognizer.cli.options` holds the options every
command that runs the models shares, and each subcommand module (``image``, ``run``, ``bench``,
``demo``) exposes ``register(subparsers)`` that adds its parser and sets ``func`` to a thin
handler ``(args) -> int`` over library code. Modules are listed explicitly so the order of
``--help`` is stable.

:func:`run_main` is the one mapping from errors to exit statuses, used by ``recognizer`` and by
every ``python -m train.*`` and ``tools/*`` entry point: a user-facing error (any exception with
an ``exit_status``: :class:`CLIError`, ``train``'s ``UsageError``, ...) is printed as one line
``PROG: error: ...`` with its status (2 bad input, 1 the work failed, 3 a broken install);
Ctrl-C exits 130 and SIGTERM 143; anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from collections.abc import Callable, Sequence

from recognizer import __version__

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "recognizer.cli.demo",
    "recognizer.cli.image",
    "recognizer.cli.run",
    "recognizer.cli.bench",
    "recognizer.cli.batch",
    "recognizer.cli.report",
)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DEPENDENCY = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code

    @property
    def exit_status(self) -> int:
        return self.code


class UsageError(CLIError):
    """Bad user input (a missing file, a malformed option): one line, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class FailedError(CLIError):
    """The work could not be done (a download, a training run that diverged): one line, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_FAILED)


def exit_status(exc: BaseException) -> int | None:
    """The exit status of a user-facing error (its ``exit_status``), or None for a bug."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_TERMINATED if type(exc).__name__ == "Terminated" else EXIT_INTERRUPTED
    status = getattr(exc, "exit_status", None)
    return status if isinstance(status, int) else None


def run_main(prog: str, fn: Callable[[], int | None], *, interrupted: str = "interrupted") -> int:
    """Call an entry point's body and map what it raises to an exit status (see the module
    docstring); returns the body's own status otherwise. ``interrupted``: the words printed
    after ``PROG:`` on Ctrl-C."""
    try:
        return int(fn() or 0)
    except KeyboardInterrupt as exc:
        print(f"{prog}: {'terminated' if exit_status(exc) == EXIT_TERMINATED else interrupted}", file=sys.stderr)
        return exit_status(exc) or EXIT_INTERRUPTED
    except Exception as exc:
        status = exit_status(exc)
        if status is None:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return status


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
    return run_main("recognizer", lambda: args.func(args))
