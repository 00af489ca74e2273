"""Where results go: a window, a video file, a frame dump, a JSON Lines log.

Each sink is a context manager whose ``close()`` finalizes its output (the video's last
fragment or index is written, files are closed), also when the run ends with an error or
Ctrl-C. Every error a sink meets while opening, writing or closing (a missing or read-only
folder, a full disk, ``/dev/full``) is raised as :class:`SinkError`, one line that says what
the output holds; a sink that failed refuses further writes and remembers why (``error``).

* JSON Lines go to the file one whole line per ``os.write``, without a buffer; a write that
  fails or comes up short (the disk filled) is undone by cutting the file back to the end of
  its last whole line, so a log is valid up to its last line at any moment.
* ``.mp4``, ``.m4v`` and ``.mov`` are H.264 in fragmented MP4 written with PyAV (FFmpeg's
  libx264) when ``av`` is installed: a fragment of about one second reaches the disk as soon as
  it is complete, so a process killed outright (SIGKILL, power loss, out of memory) leaves a
  video that plays up to its last second. Without ``av``, and for the other containers
  (``.avi``, ``.mkv``: they keep what was written when killed), OpenCV's writer is used.
* A video stops before its disk is full, while there is still room to finalize it
  (:data:`RESERVE_BYTES` plus two seconds of video and its index): OpenCV's writer does not
  report failed writes, and a file cut off by a full disk may not play at all.

With several sources (``recognizer run SOURCE SOURCE ...``) each source has its own video and
dump, the log is shared (each line names its source) and the window tiles the sources
(:class:`TiledWindow`).

All sinks run on the main thread (``cv2.imshow`` must).
"""
from __future__ import annotations

from recognizer.output.sinks.base import Sink, SinkError, free_bytes
from recognizer.output.sinks.dump import DumpSink
from recognizer.output.sinks.jsonl import JsonlLog, JsonlWriter
from recognizer.output.sinks.tiled import TiledWindow
from recognizer.output.sinks.video import AV_CONTAINERS, CODECS_BY_EXTENSION, RESERVE_BYTES, VideoSink, count_readable_frames
from recognizer.output.sinks.window import WindowSink, display_available

__all__ = [
    "AV_CONTAINERS",
    "CODECS_BY_EXTENSION",
    "RESERVE_BYTES",
    "DumpSink",
    "JsonlLog",
    "JsonlWriter",
    "Sink",
    "SinkError",
    "TiledWindow",
    "VideoSink",
    "WindowSink",
    "count_readable_frames",
    "display_available",
    "free_bytes",
]
