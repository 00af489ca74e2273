"""What every sink shares: the :class:`Sink` interface, :class:`SinkError`, and the checks
of an output's folder and free space.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from recognizer.types import FrameResult

log = logging.getLogger(__name__)


class SinkError(Exception):
    """An output cannot be created or written; the message is one user-facing line."""


class Sink(Protocol):
    """What every output of a run is to :func:`recognizer.live.session.run_session`.

    ``emit`` takes one processed frame (a :class:`~recognizer.types.FrameResult`: the
    frame, its readings and tracker update) and its annotated image (None when no sink
    draws); ``close`` finalizes the output; ``status_line`` says what the file holds.
    """

    def emit(self, result: FrameResult, image: np.ndarray | None) -> None: ...

    def close(self) -> None: ...


def result_scale(result: FrameResult) -> tuple[float, float] | None:
    return result.frame.scale()  # a frame downscaled on read: boxes go out in the file's pixels


def os_reason(exc: BaseException) -> str:
    """An OSError's reason in words (``No space left on device``), else the exception's text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged process may still write on the disk holding ``folder`` (None: unknown)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_parent(path: Path, what: str) -> None:
    """The folder of ``path`` exists and a file can be created in it (tried, for a new file).

    ``os.access`` is not enough: root may "write" to ``/proc`` by its answer, and a read-only
    mount or a full inode table only shows when a file is made.
    """
    parent = folder_of(path)
    if not parent.is_dir():
        raise SinkError(f"{what} '{path}': folder '{parent}' does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"{what} '{path}': folder '{parent}' is not writable")
    if os.path.lexists(path):
        return  # an existing file (or /dev/full): opening it tells
    try:
        fd, probe = tempfile.mkstemp(prefix=".recognizer-", suffix=".probe", dir=parent)
    except OSError as exc:
        raise SinkError(f"{what} '{path}': folder '{parent}' is not writable ({os_reason(exc)})") from exc
    os.close(fd)
    with suppress_oserror():
        os.unlink(probe)


class suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, OSError)
