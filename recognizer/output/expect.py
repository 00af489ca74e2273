"""Known numbers (``--expect FILE``): the house numbers that can exist along a street, and what
to say about a confirmed read that is not one of them.

The file holds one entry per line (or several, separated by commas); ``#`` starts a comment::

    # Hauptstrasse
    1-99 odd        # the odd side
    2-120 even
    10-20           # every number from 10 to 20
    7, 9, 250

A confirmed number not in the list is flagged (``known: false``). When a known number is one
digit away from it (a digit replaced, or one digit more or fewer) and the track's votes give
that number at least :data:`MIN_SHARE` of their weight, the result names it (``expected:
"123"`` beside the read ``"128"``); the read itself is never replaced.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recognizer.tracking import VoteTally

__all__ = ["MIN_SHARE", "ExpectError", "KnownNumbers", "neighbours"]

MIN_SHARE = 0.1
"""Share of a track's vote weight a known neighbour of its read needs to be named as expected."""

_ENTRY = re.compile(r"^(\d+)(?:\s*-\s*(\d+)(?:\s+(odd|even|all))?)?$", re.IGNORECASE)


class ExpectError(ValueError):
    """An ``--expect`` file that cannot be used; one line naming the file and line."""


@dataclass(frozen=True)
class KnownNumbers:
    """Ranges of house numbers: ``(low, high, parity)`` with parity 1 (odd), 0 (even) or None
    (all); a single number is a range of one."""

    ranges: tuple[tuple[int, int, int | None], ...]
    path: str = ""

    @classmethod
    def parse(cls, path: str | os.PathLike[str]) -> KnownNumbers:
        """Read an ``--expect`` file (see the module docstring).

        Raises:
            ExpectError: the file cannot be read, a line does not parse (the message names the
                file, the line number and its text), or it lists no number.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ExpectError(f"--expect file '{path}' not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ExpectError(f"--expect file '{path}': cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
        ranges: list[tuple[int, int, int | None]] = []
        for number, line in enumerate(text.splitlines(), 1):
            body = line.split("#", 1)[0].strip()
            for part in filter(None, (p.strip() for p in body.split(","))):
                ranges.append(_entry(part, f"--expect file '{path}' line {number}: '{line.strip()}'"))
        if not ranges:
            raise ExpectError(f"--expect file '{path}': no numbers in it (one per line, or ranges such as 1-99 odd)")
        return cls(tuple(ranges), str(path))

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str) or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
            return False  # "012" is no house number, whatever 12 is
        n = int(text)
        return any(lo <= n <= hi and (parity is None or n % 2 == parity) for lo, hi, parity in self.ranges)

    def __len__(self) -> int:
        return sum(_count(lo, hi, parity) for lo, hi, parity in self.ranges)

    def expected(self, text: str, tally: VoteTally | None, min_share: float = MIN_SHARE) -> tuple[str, float] | None:
        """The known number one digit away from ``text`` that the votes support most, with its
        share of the vote, when that share is at least ``min_share``; else None (also for a
        ``text`` that is known itself, and without a tally)."""
        if tally is None or text in self:
            return None
        best: tuple[float, int, str] | None = None
        for cand, rank in neighbours(text):
            if cand not in self:
                continue
            share = tally.share(cand)
            key = (share, -rank, cand)
            if share >= min_share and (best is None or key > best):
                best = key
        return None if best is None else (best[2], best[0])


def _count(lo: int, hi: int, parity: int | None) -> int:
    if parity is None:
        return hi - lo + 1
    first = lo if lo % 2 == parity else lo + 1
    return 0 if first > hi else (hi - first) // 2 + 1


def _entry(part: str, where: str) -> tuple[int, int, int | None]:
    m = _ENTRY.match(part)
    if m is None:
        raise ExpectError(f"{where}: expected a number, a range such as 10-20, or 1-99 odd / 2-120 even")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if hi < lo:
        raise ExpectError(f"{where}: the range {lo}-{hi} runs backwards; write {hi}-{lo}")
    word = (m.group(3) or "all").lower()
    parity = {"odd": 1, "even": 0, "all": None}[word]
    if _count(lo, hi, parity) == 0:
        raise ExpectError(f"{where}: the range holds no {word} number")
    return lo, hi, parity


def neighbours(text: str) -> Iterator[tuple[str, int]]:
    """Every digit string one edit from ``text``, with the kind of edit (0: a digit replaced,
    1: one digit fewer, 2: one digit more); a one-digit ``text`` has no shorter neighbour."""
    digits = "0123456789"
    for i, ch in enumerate(text):
        for d in digits:
            if d != ch:
                yield text[:i] + d + text[i + 1 :], 0
    if len(text) > 1:
        for i in range(len(text)):
            yield text[:i] + text[i + 1 :], 1
    for i in range(len(text) + 1):
        for d in digits:
            yield text[:i] + d + text[i:], 2
