"""A live MJPEG stream over HTTP on 127.0.0.1 as the source: read, cut, restored, reconnected."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from video_helpers import frames_of

from recognizer.io.sources import ReconnectPolicy, SourceError, StreamSource, open_source
from recognizer.live.pipeline import Pipeline, PipelineConfig

FPS = 30.0


class MjpegServer:
    """Serves ``/stream.mjpg`` as ``multipart/x-mixed-replace`` JPEG frames at ``FPS``.

    ``stop()`` closes the listening socket and every open connection (the camera "goes away");
    ``start()`` on the same port brings it back.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.frames_sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._alive = threading.Event()

    def start(self) -> MjpegServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while owner._alive.is_set():
                        image = np.full((120, 160, 3), 40, np.uint8)
                        cv2.putText(image, str(owner.frames_sent % 1000), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
                        ok, jpg = cv2.imencode(".jpg", image)
                        data = jpg.tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode())
                        self.wfile.write(data + b"\r\n")
                        self.wfile.flush()
                        owner.frames_sent += 1
                        time.sleep(1.0 / FPS)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._alive.set()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self._alive.clear()  # handlers leave their loops and close their connections
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


@pytest.fixture
def server() -> Iterator[MjpegServer]:
    srv = MjpegServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)
def test_stream_is_read_live_then_reconnects_after_a_cut(server: MjpegServer) -> None:
    src = open_source(server.url, reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=0.4, timeout=20))
    assert isinstance(src, StreamSource) and src.live
    with src:
        first = [src.read() for _ in range(10)]
        assert all(f is not None for f in first)
        assert [f.index for f in first] == list(range(10))
        assert first[0].image.shape == (120, 160, 3)
        # Timestamps are monotonic wall time, and frames arrive at about the server's rate.
        assert first[-1].timestamp - first[0].timestamp == pytest.approx(9 / FPS, abs=0.25)

        server.stop()
        restored = threading.Timer(1.0, server.start)
        restored.start()
        t0 = time.monotonic()
        later = []
        while len(later) < 10 and time.monotonic() - t0 < 30:
            f = src.read()
            if f is not None:
                later.append(f)
        restored.join()
    assert len(later) == 10, "frames come again after the server is back"
    assert src.reconnects >= 1
    indices = [f.index for f in first + later]
    assert indices == sorted(indices) and len(set(indices)) == len(indices), "the index keeps counting"


@pytest.mark.timeout(60)
def test_pipeline_on_a_stream_survives_a_cut(server: MjpegServer) -> None:
    class Echo:
        def recognize(self, images):
            time.sleep(0.005)
            return [[] for _ in images]

    src = open_source(server.url, reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=0.4, timeout=20))
    with src:
        pipe = Pipeline(src, Echo(), config=PipelineConfig(max_frames=40))
        assert pipe.live
        got = []
        cut_done = False
        t0 = time.monotonic()
        with pipe:
            for r in frames_of(pipe):
                got.append(r)
                if len(got) == 10 and not cut_done:
                    server.stop()
                    threading.Timer(0.8, server.start).start()
                    cut_done = True
        elapsed = time.monotonic() - t0
    assert len(got) == 40
    assert src.reconnects >= 1
    assert elapsed < 30
    lat = sorted(r.inferred_at - r.captured_at for r in got)
    assert lat[len(lat) // 2] < 0.1, "live frames are processed as they come, not queued up"


@pytest.mark.timeout(60)
def test_stream_that_does_not_come_back_is_a_clear_error(server: MjpegServer) -> None:
    src = open_source(server.url, reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=0.2, timeout=1.0))
    with src:
        assert src.read() is not None
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=r"stream '.*' was lost and did not come back within 1 s"):
            while src.read() is not None:
                pass
        assert time.monotonic() - t0 < 15


@pytest.mark.timeout(60)
def test_stream_that_cannot_be_opened() -> None:
    src = open_source(f"http://127.0.0.1:{free_port()}/stream.mjpg")
    with pytest.raises(SourceError, match="cannot open stream 'http://127.0.0.1"):
        src.open()


@pytest.mark.timeout(60)
def test_stop_interrupts_reconnecting(server: MjpegServer) -> None:
    src = open_source(server.url, reconnect=ReconnectPolicy(initial_delay=0.5, max_delay=2.0, timeout=None))
    with src:
        assert src.read() is not None
        server.stop()
        stop = threading.Event()
        threading.Timer(1.0, stop.set).start()
        t0 = time.monotonic()
        while src.read(stop.is_set) is not None:
            pass
        assert stop.is_set()
        assert time.monotonic() - t0 < 10
