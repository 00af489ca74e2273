"""Names of the sources of a run, and what follows from them.

``recognizer run left=0 right=clip.mp4``: each source has a short name, usable in file names
(:func:`name_sources`); with several sources each one's ``--save`` and ``--dump`` path is
derived from it (:func:`per_source_path`). A source that could not be opened is stood in for
by :class:`UnopenedSource`, so a run of several reports it like a source lost for good and goes
on with the others.
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from recognizer.io.sources import Source, SourceError

__all__ = ["NAME_RULE", "UnopenedSource", "default_name", "name_sources", "per_source_path"]


class UnopenedSource(Source):
    """Stands in for a source that could not be opened: its first read raises the error, so
    the run reports it like a source lost for good and goes on with the others."""

    def __init__(self, source: Source, error: BaseException) -> None:
        super().__init__(source.name)
        self.kind, self.live, self.fps = source.kind, source.live, source.fps
        self.error = error

    def open(self) -> None:
        pass

    def read(self, should_stop: Any = None) -> Any:
        raise self.error

    def close(self) -> None:
        pass


def default_name(spec: str, position: int) -> str:
    """A short name for a source spec, usable in file names: ``cam0`` for camera 0, the file's
    or folder's stem, the stream's last path part or host; ``src<position>`` otherwise."""
    text = str(spec).strip()
    if text.isdigit():
        return f"cam{int(text)}"
    if "://" in text:
        url = urlparse(text)
        base = os.path.splitext(os.path.basename(url.path.rstrip("/")))[0] or (url.hostname or "")
    else:
        base = os.path.splitext(os.path.basename(text.rstrip("/\\")))[0]
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-")
    return base or f"src{position}"


_NAMED = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,39})=(.+)$")
NAME_RULE = "a name starts with a letter and has at most 40 letters, digits, '_' or '-'"
"""What :func:`name_sources` accepts before ``=`` (names become parts of file names)."""


def _meant_as_name(spec: str) -> str | None:
    """The text before ``=`` when ``spec`` reads as ``NAME=SOURCE`` with a name that is not
    valid (``../x=clip.mp4``, ``a/b=0``, ``=clip.mp4``): what follows ``=`` is a source that
    exists (a path, a camera index, a URL, a glob that matches) and the whole is none."""
    prefix, sep, rest = spec.partition("=")
    if not sep or "://" in prefix or os.path.exists(spec) or glob.glob(spec):
        return None
    rest = rest.strip()
    plausible = rest.isdigit() or "://" in rest or os.path.exists(rest) or bool(rest and glob.glob(rest))
    return prefix if plausible else None


def name_sources(specs: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, spec)`` for each spec: ``NAME=SPEC`` names it (unless the whole text is an
    existing path or a glob that matches), otherwise :func:`default_name`; names made unique
    with ``-2``, ``-3``.

    Raises:
        SourceError: a spec that names a source with an invalid name (:data:`NAME_RULE`).
    """
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for i, spec in enumerate(specs):
        m = _NAMED.match(spec)
        if m and not os.path.exists(spec) and not glob.glob(spec):
            name, spec = m.group(1), m.group(2)
        elif (bad := _meant_as_name(spec)) is not None:
            what = f"source name '{bad}'" if bad else "empty source name"
            raise SourceError(f"{what} (in '{spec}') is not valid: {NAME_RULE}")
        else:
            name = default_name(spec, i)
        unique, k = name, 2
        while unique.lower() in used:
            unique, k = f"{name}-{k}", k + 1
        used.add(unique.lower())
        out.append((unique, spec))
    return out


def per_source_path(template: str | os.PathLike[str], name: str) -> Path:
    """The output path of source ``name``: ``{name}`` in ``template`` replaced by it, else the
    name appended to the file's stem (``out.mp4`` -> ``out_left.mp4``) or to a folder's name
    (``frames`` -> ``frames_left``)."""
    text = str(template)
    if "{name}" in text:
        return Path(text.replace("{name}", name))
    path = Path(text)
    if not path.suffix:
        return path.with_name(f"{path.name}_{name}")
    return path.with_name(f"{path.stem}_{name}{path.suffix}")
