"""tools/download_svhn.py against a real HTTP server on 127.0.0.1 serving small fixture files."""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from svhn_fixtures import make_32x32_mat, make_svhn_split

from tools import download_svhn
from tools.download_svhn import KNOWN_FILES, main
from train.svhn import read_32x32_mat, read_digitstruct

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(60)


class FixtureServer(ThreadingHTTPServer):
    """Serves ``files`` by name. ``mode`` per file:

    * ``"range"``: honours ``Range: bytes=N-`` with 206 (416 past the end);
    * ``"ignore_range"``: always 200 with the whole file;
    * ``"wrong"``: the right length, different bytes;
    * ``cuts[name] = k``: the next k responses send half their body, then drop the connection.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.cuts: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/svhn/"


class Handler(BaseHTTPRequestHandler):
    server: FixtureServer

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        srv = self.server
        rng = self.headers.get("Range")
        with srv.lock:
            srv.requests.append((name, rng))
            cut = srv.cuts.get(name, 0) > 0
            if cut:
                srv.cuts[name] -= 1
        if name not in srv.files:
            self.send_error(404, "Not Found")
            return
        data = srv.files[name]
        mode = srv.modes.get(name, "range")
        if mode == "wrong":
            data = bytes(b ^ 0xFF for b in data)
        start = 0
        if rng and mode != "ignore_range" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    srv = FixtureServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _targz(tmp: Path, split: str = "train", n_images: int = 3) -> bytes:
    """A small format-1 archive laid out like SVHN's: ``<split>/N.png`` + ``<split>/digitStruct.mat``."""
    make_svhn_split(tmp / "src" / split, n_images=n_images, seed=4)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp / "src" / split, arcname=split)
    return buf.getvalue()


def _manifest(tmp: Path, files: dict[str, bytes]) -> Path:
    path = tmp / "manifest.json"
    path.write_text(json.dumps({n: {"size": len(b), "md5": hashlib.md5(b).hexdigest()} for n, b in files.items()}))
    return path


def _run(server: FixtureServer, out: Path, manifest: Path, *extra: str) -> int:
    return main(["--out", str(out), "--base-url", server.url, "--manifest", str(manifest), "--no-progress",
                 "--retry-wait", "0", "--timeout", "10", *extra])


def _error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


def test_known_table_is_the_official_one() -> None:
    assert KNOWN_FILES["train.tar.gz"] == (404141560, "a649f4cb15c35520e8a8c342d4c0005a")
    assert KNOWN_FILES["extra_32x32.mat"] == (1329278602, "a93ce644f1a588dc4d68dda5feec44a7")
    assert download_svhn.DEFAULT_BASE_URL == "http://ufldl.stanford.edu/housenumbers/"
    assert download_svhn.file_names(1, ["train", "extra"]) == ["train.tar.gz", "extra.tar.gz"]
    assert download_svhn.file_names(2, ["test"]) == ["test_32x32.mat"]


def test_format1_download_check_and_extract(server: FixtureServer, tmp_path: Path) -> None:
    archive = _targz(tmp_path)
    server.files["train.tar.gz"] = archive
    out = tmp_path / "svhn"
    assert _run(server, out, _manifest(tmp_path, server.files), "--splits", "train") == 0
    assert (out / "train.tar.gz").read_bytes() == archive
    assert not (out / "train.tar.gz.part").exists()
    records = read_digitstruct(out / "train" / "digitStruct.mat", cache=False)
    assert len(records) == 3 and all((out / "train" / r.name).is_file() for r in records)
    assert server.requests == [("train.tar.gz", None)]

    # Everything there: no request at all the second time.
    assert _run(server, out, _manifest(tmp_path, server.files), "--splits", "train") == 0
    assert len(server.requests) == 1


def test_interrupted_transfer_is_resumed_with_range(server: FixtureServer, tmp_path: Path) -> None:
    archive = _targz(tmp_path)
    server.files["train.tar.gz"] = archive
    server.cuts["train.tar.gz"] = 1
    out = tmp_path / "svhn"
    assert _run(server, out, _manifest(tmp_path, server.files), "--splits", "train", "--no-extract") == 0
    assert (out / "train.tar.gz").read_bytes() == archive
    half = len(archive) // 2
    assert server.requests == [("train.tar.gz", None), ("train.tar.gz", f"bytes={half}-")]
    assert not (out / "train").exists()  # --no-extract


def test_run_again_resumes_a_part_file_left_by_an_earlier_run(server: FixtureServer, tmp_path: Path, capsys) -> None:
    archive = _targz(tmp_path)
    server.files["train.tar.gz"] = archive
    server.cuts["train.tar.gz"] = 5
    out = tmp_path / "svhn"
    manifest = _manifest(tmp_path, server.files)
    assert _run(server, out, manifest, "--splits", "train", "--retries", "1") == 1
    err = _error_lines(capsys)
    assert len(err) == 1 and server.url + "train.tar.gz" in err[0] and "run again to resume" in err[0]
    part = out / "train.tar.gz.part"
    kept = part.stat().st_size
    assert 0 < kept < len(archive) and archive.startswith(part.read_bytes())

    server.cuts["train.tar.gz"] = 0
    assert _run(server, out, manifest, "--splits", "train") == 0
    assert server.requests[-1] == ("train.tar.gz", f"bytes={kept}-")
    assert (out / "train.tar.gz").read_bytes() == archive


def test_server_ignoring_range_restarts_the_file(server: FixtureServer, tmp_path: Path) -> None:
    archive = _targz(tmp_path)
    server.files["train.tar.gz"] = archive
    server.modes["train.tar.gz"] = "ignore_range"
    out = tmp_path / "svhn"
    out.mkdir()
    (out / "train.tar.gz.part").write_bytes(archive[:100])
    assert _run(server, out, _manifest(tmp_path, server.files), "--splits", "train", "--no-extract") == 0
    assert server.requests == [("train.tar.gz", "bytes=100-")]
    assert (out / "train.tar.gz").read_bytes() == archive  # not 100 bytes twice


def test_part_that_does_not_fit_the_server_file_starts_over(server: FixtureServer, tmp_path: Path, capsys) -> None:
    mat = tmp_path / "test_32x32.mat"
    make_32x32_mat(mat, n=12)
    data = mat.read_bytes()
    server.files["test_32x32.mat"] = data
    out = tmp_path / "svhn"
    out.mkdir()
    manifest = tmp_path / "m.json"
    # The manifest says the file is longer than the server's, and a .part as long as the real file exists.
    manifest.write_text(json.dumps({"test_32x32.mat": [len(data) + 10, hashlib.md5(data).hexdigest()]}))
    (out / "test_32x32.mat.part").write_bytes(data)
    rc = _run(server, out, manifest, "--format", "2", "--splits", "test", "--retries", "2")
    assert rc == 1  # 416, start over, then the size is not what the manifest says
    err = _error_lines(capsys)
    assert len(err) == 1 and "size mismatch: expected" in err[0] and f"({len(data)} bytes)" in err[0]
    assert ("test_32x32.mat", f"bytes={len(data)}-") in server.requests
    assert ("test_32x32.mat", None) in server.requests


def test_wrong_bytes_fail_the_md5_check(server: FixtureServer, tmp_path: Path, capsys) -> None:
    archive = _targz(tmp_path)
    server.files["train.tar.gz"] = archive
    manifest = _manifest(tmp_path, server.files)
    server.modes["train.tar.gz"] = "wrong"
    out = tmp_path / "svhn"
    assert _run(server, out, manifest, "--splits", "train") == 1
    err = _error_lines(capsys)
    expected = hashlib.md5(archive).hexdigest()
    got = hashlib.md5(bytes(b ^ 0xFF for b in archive)).hexdigest()
    assert len(err) == 1 and f"expected {expected}" in err[0] and f"got {got}" in err[0]
    assert not (out / "train.tar.gz").exists() and not (out / "train.tar.gz.part").exists()
    assert (out / "train.tar.gz.bad").is_file() and not (out / "train").exists()

    server.modes["train.tar.gz"] = "range"  # the server is fixed: a new run downloads afresh
    assert _run(server, out, manifest, "--splits", "train") == 0
    assert (out / "train.tar.gz").read_bytes() == archive


def test_damaged_complete_file_is_replaced(server: FixtureServer, tmp_path: Path) -> None:
    mat = tmp_path / "train_32x32.mat"
    X, digits = make_32x32_mat(mat, n=10)
    server.files["train_32x32.mat"] = mat.read_bytes()
    out = tmp_path / "svhn"
    out.mkdir()
    (out / "train_32x32.mat").write_bytes(b"\0" * len(server.files["train_32x32.mat"]))
    assert _run(server, out, _manifest(tmp_path, server.files), "--format", "2", "--splits", "train") == 0
    X2, d2 = read_32x32_mat(out / "train_32x32.mat")
    assert (X2 == X).all() and (d2 == digits).all()
    assert (out / "train_32x32.mat.bad").is_file()


def test_server_down_is_reported_clearly(tmp_path: Path, capsys) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/svhn/"
    t0 = time.monotonic()
    rc = main(["--out", str(tmp_path / "o"), "--base-url", url, "--no-progress", "--splits", "test", "--timeout", "5"])
    assert rc == 1 and time.monotonic() - t0 < 20
    err = _error_lines(capsys)
    assert len(err) == 1 and f"{url}test.tar.gz" in err[0] and "cannot reach the server" in err[0]


def test_http_404_names_the_url(server: FixtureServer, tmp_path: Path, capsys) -> None:
    manifest = _manifest(tmp_path, {"extra.tar.gz": b"x"})
    assert _run(server, tmp_path / "o", manifest, "--splits", "extra") == 1
    err = _error_lines(capsys)
    assert len(err) == 1 and f"{server.url}extra.tar.gz: HTTP 404" in err[0]


def _evil_targz(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        ok = tarfile.TarInfo("train/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        if kind == "dotdot":
            evil = tarfile.TarInfo("train/../../evil.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        elif kind == "absolute":
            evil = tarfile.TarInfo("/tmp/evil-recognizer-test.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        else:
            link = tarfile.TarInfo("train/link")
            link.type = tarfile.SYMTYPE
            link.linkname = "../../outside"
            tar.addfile(link)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_archive_members_escaping_the_folder_are_refused(server: FixtureServer, tmp_path: Path, capsys, kind) -> None:
    server.files["train.tar.gz"] = _evil_targz(kind)
    out = tmp_path / "deep" / "svhn"
    assert _run(server, out, _manifest(tmp_path, server.files), "--splits", "train") == 1
    err = _error_lines(capsys)
    assert len(err) == 1 and "unsafe" in err[0]
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert not Path("/tmp/evil-recognizer-test.txt").exists()
    assert not (out / "train" / "link").exists()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--splits", "train,valid"], "unknown split 'valid'"),
        (["--splits", ","], "--splits"),
        (["--base-url", "ftp://x/"], "--base-url"),
        (["--retries", "-1"], "--retries"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, capsys, args: list[str], match: str) -> None:
    assert main(["--out", str(tmp_path / "o"), "--no-progress", *args]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and match in err[0]


@pytest.mark.parametrize("content", ["{bad json", '{"train.tar.gz": {"size": 3}}', '{"train.tar.gz": [3, "xyz"]}'])
def test_bad_manifest_exit_2(tmp_path: Path, capsys, content: str) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(content)
    assert main(["--out", str(tmp_path / "o"), "--manifest", str(manifest), "--no-progress"]) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "--manifest" in err[0]


def test_script_runs_standalone_with_progress_bars(server: FixtureServer, tmp_path: Path) -> None:
    """``python tools/download_svhn.py`` as users run it, bars on, two splits."""
    server.files["train.tar.gz"] = _targz(tmp_path / "a", "train")
    server.files["test.tar.gz"] = _targz(tmp_path / "b", "test", n_images=2)
    manifest = _manifest(tmp_path, server.files)
    out = tmp_path / "svhn"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "download_svhn.py"), "--out", str(out), "--base-url", server.url,
         "--manifest", str(manifest), "--splits", "train,test"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "train" / "digitStruct.mat").is_file() and (out / "test" / "digitStruct.mat").is_file()
    assert "test.tar.gz: ok" in proc.stderr
