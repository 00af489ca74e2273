"""Ctrl-C and SIGTERM while a run runs: a frame goes to every output or to none, and a second
signal cannot cut the finalizing short (:class:`RunSignals`, :func:`deferred_interrupts`)."""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["EXIT_INTERRUPTED", "EXIT_TERMINATED", "RunSignals", "Terminated", "active_signals", "deferred_interrupts"]

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so outputs are finalized like on Ctrl-C."""


@contextlib.contextmanager
def _signal_handlers(handlers: dict[int, Any]) -> Iterator[bool]:
    """Install ``{signal: handler}`` for the block and restore the previous ones after it.

    Yields False (and changes nothing) outside the main thread, where Python cannot set them.
    """
    previous: dict[int, Any] = {}
    try:
        for signum, handler in handlers.items():
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        yield False
        return
    try:
        yield True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class RunSignals:
    """Ctrl-C (SIGINT) and SIGTERM while a run runs (main thread only).

    The first one stops the run: :class:`KeyboardInterrupt` (SIGINT) or :class:`Terminated`
    (SIGTERM) is raised on the main thread, or at the end of a :meth:`deferred` block when it
    came inside one (one frame's writes to the outputs are never split). Every later signal,
    and any signal once the outputs are being finalized (:meth:`closing`), is ignored: a second
    Ctrl-C cannot cut the finalizing short.

    ``ignore_after`` (the command line): once a signal was seen, SIGINT and SIGTERM stay ignored
    (``SIG_IGN``) after the run until the process ends, so a signal in the interpreter's
    teardown cannot kill the process after the outputs were finalized and the exit status stays
    130/143. Otherwise (library use) the previous handlers are restored.
    """

    def __init__(self, *, ignore_after: bool = True) -> None:
        self.ignore_after = ignore_after
        self.first: int | None = None  # the signal that stopped the run
        self.seen = False  # any signal came
        self._depth = 0
        self._pending = False
        self._closing = False

    def exception(self) -> KeyboardInterrupt:
        return Terminated() if self.first == signal.SIGTERM else KeyboardInterrupt()

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True
        if self.first is not None or self._closing:
            return
        self.first = signum
        if self._depth:
            self._pending = True
            return
        raise self.exception()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        global _ACTIVE_SIGNALS
        previous: dict[int, Any] = {}
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self.handler)
        except ValueError:  # not the main thread: Python lets only that one set handlers
            previous = {}
        if not previous:
            yield
            return
        _ACTIVE_SIGNALS = self
        try:
            yield
        finally:
            _ACTIVE_SIGNALS = None
            self._closing = True
            for signum, old in previous.items():
                # After an interrupt: ignored for good. Python puts its own handlers back to
                # the default while the interpreter shuts down (which takes a moment with
                # torch loaded), and a signal then would kill the process; SIG_IGN is kept.
                signal.signal(signum, signal.SIG_IGN if self.seen and self.ignore_after else old)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            self._pending = False
            raise self.exception()

    @contextlib.contextmanager
    def closing(self) -> Iterator[None]:
        """From here on signals are ignored: the outputs are being finalized."""
        self._closing = True
        yield


_ACTIVE_SIGNALS: RunSignals | None = None


def active_signals() -> RunSignals | None:
    """The :class:`RunSignals` installed for the run in progress (None outside a run)."""
    return _ACTIVE_SIGNALS


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM during the block and raise them (KeyboardInterrupt / Terminated) at
    its end, so one frame's writes to the outputs are never split (main thread only).

    Inside a run with :class:`RunSignals` installed this is :meth:`RunSignals.deferred`;
    elsewhere handlers are installed for the block alone.
    """
    if _ACTIVE_SIGNALS is not None:
        with _ACTIVE_SIGNALS.deferred():
            yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    with _signal_handlers({signal.SIGINT: hold, signal.SIGTERM: hold}):
        yield
    if pending:
        raise Terminated() if signal.SIGTERM in pending else KeyboardInterrupt()
