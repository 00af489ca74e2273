"""``--show``: a window with the annotated frames."""
from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import cv2
import numpy as np

from recognizer.output.sinks.base import SinkError, os_reason

if TYPE_CHECKING:
    from recognizer.types import FrameResult

log = logging.getLogger(__name__)


def display_available() -> str | None:
    """None when a window can be opened here, else the reason (one line)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "--show needs a display but DISPLAY is not set; use --save or --dump on a machine without a screen"
    return None


class WindowSink:
    """``--show``: a window with the annotated frames. ``q``/Esc quits, space pauses/resumes.

    Call :meth:`show` once per frame on the main thread; it returns False when the user asked
    to quit (key or window closed).
    """

    QUIT_KEYS = (ord("q"), ord("Q"), 27)
    PAUSE_KEY = ord(" ")

    def __init__(self, title: str = "recognizer") -> None:
        reason = display_available()
        if reason:
            raise SinkError(reason)
        self.title = title
        self.paused = False
        self.quit = False
        self.frames = 0
        self._open = False

    def open(self) -> None:
        if not self._open:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            self._open = True

    def _closed_by_user(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def _handle_key(self, key: int) -> None:
        if key < 0:
            return
        key &= 0xFF
        if key in self.QUIT_KEYS:
            self.quit = True
        elif key == self.PAUSE_KEY:
            self.paused = not self.paused

    def emit(self, result: FrameResult, image: np.ndarray | None) -> None:
        """Show the annotated frame (the :class:`Sink` interface); :attr:`quit` turns True
        when the user closes the window or presses q/Esc."""
        if not self.show(image if image is not None else result.frame.image):
            self.quit = True

    def show(self, image_bgr: np.ndarray, *, wait_ms: int = 1) -> bool:
        """Display a frame and handle keys; blocks while paused. Returns False to quit.

        Raises :class:`SinkError` when OpenCV cannot show it (the display went away).
        """
        try:
            return self._show(image_bgr, wait_ms)
        except cv2.error as exc:
            raise SinkError(f"window '{self.title}': cannot show the frame ({os_reason(exc)})") from exc

    def _show(self, image_bgr: np.ndarray, wait_ms: int) -> bool:
        self.open()
        cv2.imshow(self.title, image_bgr)
        self.frames += 1
        self._handle_key(cv2.waitKey(max(wait_ms, 1)))
        while self.paused and not self.quit:
            self._handle_key(cv2.waitKey(50))
            if self._closed_by_user():
                self.quit = True
        if not self.quit and self._closed_by_user():
            self.quit = True
        return not self.quit

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False

    def __enter__(self) -> WindowSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
