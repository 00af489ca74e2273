"""``--show`` with several sources: one window, the sources side by side in tiles."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from recognizer.output.sinks.window import WindowSink

if TYPE_CHECKING:
    from recognizer.types import FrameResult

LABEL_BG = (20, 20, 20)
LABEL_FG = (240, 240, 240)
ENDED_FG = (80, 80, 255)  # BGR red: a source that ended or failed


def grid(n: int) -> tuple[int, int]:
    """``(columns, rows)`` of the most nearly square grid holding ``n`` tiles (wider than tall)."""
    cols = max(math.ceil(math.sqrt(n)), 1)
    return cols, max(math.ceil(n / cols), 1)


class TiledWindow:
    """A :class:`~recognizer.output.sinks.Sink` showing every source of a run in one window.

    Each result goes to the tile of its source (``result.source_index``), scaled to the tile
    size (the first frame's size, made smaller so the whole grid fits ``max_size``) and
    labelled with the source's name along its bottom edge; the HUD each tile carries is drawn by
    the session, per source. The window is redrawn at most ``max_fps`` times a second (with
    four cameras at 15 fps that is every second frame). Keys are the window's: q or Esc quits,
    space pauses.

    Args:
        names: the sources' names, in order.
        title: the window's title.
        window: the window to draw in (default: a new :class:`~recognizer.output.sinks.WindowSink`;
            anything with ``show(image)``, ``quit`` and ``close()``).
    """

    def __init__(self, names: Sequence[str], title: str = "recognizer", *, window: Any = None,
                 max_size: tuple[int, int] = (1280, 960), max_fps: float = 30.0) -> None:
        self.window = window if window is not None else WindowSink(title)
        self.names = list(names)
        self.cols, self.rows = grid(len(self.names))
        self.max_size = max_size
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self.frames = 0  # results received
        self.shown = 0  # times the window was redrawn
        self.canvas: np.ndarray | None = None
        self.tile: tuple[int, int] | None = None  # (width, height)
        self._notes: list[str | None] = [None] * len(self.names)
        self._last_show = -math.inf

    @property
    def quit(self) -> bool:
        return bool(self.window.quit)

    def _layout(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_size[0] / (w * self.cols), self.max_size[1] / (h * self.rows))
        self.tile = (max(int(w * scale), 16), max(int(h * scale), 16))
        tw, th = self.tile
        self.canvas = np.zeros((th * self.rows, tw * self.cols, 3), np.uint8)
        for i in range(len(self.names)):
            self._label(i)

    def _origin(self, index: int) -> tuple[int, int]:
        assert self.tile is not None
        return (index % self.cols) * self.tile[0], (index // self.cols) * self.tile[1]

    def _label(self, index: int) -> None:
        """The source's name (and a note such as "ended") on a bar along the tile's bottom."""
        assert self.canvas is not None and self.tile is not None
        x0, y0 = self._origin(index)
        tw, th = self.tile
        note = self._notes[index]
        text = self.names[index] if note is None else f"{self.names[index]} - {note}"
        scale = max(0.4, min(0.8, th / 500))
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        bar = h + base + 8
        cv2.rectangle(self.canvas, (x0, y0 + th - bar), (x0 + min(w + 12, tw) - 1, y0 + th - 1), LABEL_BG, -1)
        colour = LABEL_FG if note is None else ENDED_FG
        cv2.putText(self.canvas, text, (x0 + 6, y0 + th - base - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
        # a thin line between tiles
        cv2.rectangle(self.canvas, (x0, y0), (x0 + tw - 1, y0 + th - 1), (60, 60, 60), 1)

    def _place(self, index: int, image: np.ndarray) -> None:
        assert self.canvas is not None and self.tile is not None
        tw, th = self.tile
        h, w = image.shape[:2]
        scale = min(tw / w, th / h)
        nw, nh = max(int(w * scale), 1), max(int(h * scale), 1)
        small = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        x0, y0 = self._origin(index)
        self.canvas[y0 : y0 + th, x0 : x0 + tw] = 0
        ox, oy = x0 + (tw - nw) // 2, y0 + (th - nh) // 2
        self.canvas[oy : oy + nh, ox : ox + nw] = small
        self._label(index)

    def emit(self, result: FrameResult, image: np.ndarray | None) -> None:
        """Put the annotated frame in its source's tile; redraw the window when it is time.
        :attr:`quit` turns True when the user closes the window or presses q/Esc."""
        picture = image if image is not None else result.frame.image
        if self.canvas is None:
            self._layout(picture)
        self._place(result.source_index, picture)
        self.frames += 1
        now = time.monotonic()
        if now - self._last_show >= self.min_interval:
            self._last_show = now
            self.redraw()

    def redraw(self) -> None:
        if self.canvas is not None:
            if self.shown == 0 and isinstance(self.window, WindowSink):
                # Open the window at the grid's size (OpenCV's resizable windows start at their own).
                self.window.open()
                try:
                    cv2.resizeWindow(self.window.title, self.canvas.shape[1], self.canvas.shape[0])
                except cv2.error:
                    pass
            self.shown += 1
            self.window.show(self.canvas)  # sets the window's ``quit`` on q, Esc or a closed window

    def mark(self, index: int, note: str) -> None:
        """Note on a tile that its source ended ("ended", "failed"); its last frame stays."""
        self._notes[index] = note
        if self.canvas is not None:
            self._label(index)
            self.redraw()

    def close(self) -> None:
        self.window.close()

