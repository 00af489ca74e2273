"""What every entry point shares: user-facing errors, their exit statuses, and the one mapping
from one to the other.

:func:`run_main` is the one mapping from errors to exit statuses, used by ``recognizer`` and by
every ``python -m train.*`` and ``tools/*`` entry point: a user-facing error (any exception with
an ``exit_status``: :class:`CLIError`, ``train``'s ``UsageError``, ...) is printed as one line
``PROG: error: ...`` with its status (2 bad input, 1 the work failed, 3 a broken install);
Ctrl-C exits 130 and SIGTERM 143; anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

__all__ = ["EXIT_DEPENDENCY", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_USAGE", "CLIError", "FailedError",
           "UsageError", "exit_status", "finite_float", "run_main"]

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
