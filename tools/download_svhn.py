"""Download the official SVHN files, check them and unpack them.

    python tools/download_svhn.py --out data/svhn                       # format 1: train, test
    python tools/download_svhn.py --out data/svhn --splits train,test,extra
    python tools/download_svhn.py --out data/svhn --format 2            # train_32x32.mat, test_32x32.mat

Each file is fetched to ``NAME.part`` and resumed with an HTTP Range request after an
interruption (re-running the command resumes too); a server that ignores Range makes the
download start over. A finished file must have the known size and md5 sum, otherwise it is
kept as ``NAME.bad`` and the command fails. Format-1 archives are unpacked into ``OUT``
(``OUT/train/1.png ... digitStruct.mat``), refusing any member that would land outside it.
Files already downloaded and checked are skipped.

Only the standard library (urllib) is needed; tqdm draws the progress bar when installed.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # run from a checkout: make recognizer/ importable
    sys.path.insert(0, str(_ROOT))

from recognizer.errors import FailedError, UsageError, run_main  # noqa: E402

DEFAULT_BASE_URL = "http://ufldl.stanford.edu/housenumbers/"

KNOWN_FILES: dict[str, tuple[int, str]] = {
    "train.tar.gz": (404141560, "a649f4cb15c35520e8a8c342d4c0005a"),
    "test.tar.gz": (276555967, "790d9c8d42f1fcbd219b59956c853a81"),
    "extra.tar.gz": (1955489752, "606f41243d71ca4d5fe66dbaf1f02bee"),
    "train_32x32.mat": (182040794, "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test_32x32.mat": (64275384, "eb5a983be6a315427106f1b164d9cef3"),
    "extra_32x32.mat": (1329278602, "a93ce644f1a588dc4d68dda5feec44a7"),
}
"""Official SVHN files: name -> (size in bytes, md5)."""

SPLITS = ("train", "test", "extra")
CHUNK = 1 << 20
PROG = "download_svhn"


class DownloadError(FailedError):
    """A download, check or extraction failed; the message is one line (exit status 1)."""


class _Interrupted(Exception):
    """The transfer stopped early; it can be resumed."""


def file_names(fmt: int, splits: Sequence[str]) -> list[str]:
    """The official file names of ``splits`` in format 1 (``.tar.gz``) or 2 (``_32x32.mat``)."""
    return [f"{s}.tar.gz" if fmt == 1 else f"{s}_32x32.mat" for s in splits]


def load_manifest(path: str | os.PathLike) -> dict[str, tuple[int, str]]:
    """Read ``{"name": {"size": int, "md5": "hex"}}`` (or ``{"name": [size, md5]}``).

    Raises:
        UsageError: unreadable JSON or malformed entries.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--manifest {str(path)!r}: cannot read JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--manifest {str(path)!r}: expected an object of name -> {{size, md5}}")
    table: dict[str, tuple[int, str]] = {}
    for name, entry in raw.items():
        try:
            size, md5 = (entry["size"], entry["md5"]) if isinstance(entry, dict) else entry
            size, md5 = int(size), str(md5).lower()
            if size < 0 or len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise UsageError(
                f"--manifest {str(path)!r}: entry {name!r} is {entry!r}; expected {{\"size\": bytes, \"md5\": \"32 hex\"}}"
            ) from None
        table[name] = (size, md5)
    return table


def md5_of(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest()


def _bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                dynamic_ncols=True, file=sys.stderr)


class Downloader:
    """Fetches files from ``base_url`` into ``out`` with resume, retries and md5 checks."""

    def __init__(
        self,
        base_url: str,
        out: Path,
        table: dict[str, tuple[int, str]],
        *,
        timeout: float = 60.0,
        retries: int = 5,
        retry_wait: float = 2.0,
        progress: bool = True,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.out = out
        self.table = table
        self.timeout = timeout
        self.retries = retries
        self.retry_wait = retry_wait
        self.progress = progress

    def url(self, name: str) -> str:
        return self.base_url + name

    # ------------------------------------------------------------------ checks

    def _stamp(self, name: str) -> Path:
        return self.out / f".{name}.verified"

    def is_complete(self, name: str) -> bool:
        """True when ``OUT/name`` has the expected size and md5 (remembered after one check)."""
        size, md5 = self.table[name]
        path = self.out / name
        if not path.is_file() or path.stat().st_size != size:
            return False
        st = path.stat()
        key = f"{size} {st.st_mtime_ns} {md5}"
        stamp = self._stamp(name)
        if stamp.is_file() and stamp.read_text().strip() == key:
            return True
        got = self._hash(path, f"check {name}")
        if got != md5:
            return False
        stamp.write_text(key + "\n")
        return True

    def _hash(self, path: Path, desc: str) -> str:
        bar = _bar(path.stat().st_size, 0, desc, self.progress)
        try:
            return md5_of(path, bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()

    # ------------------------------------------------------------------ transfer

    def fetch(self, name: str) -> Path:
        """Download ``name`` unless already complete; returns the checked file.

        Raises:
            DownloadError: HTTP errors, unreachable server, too many interruptions, bad md5.
        """
        size, md5 = self.table[name]
        final = self.out / name
        if self.is_complete(name):
            print(f"{name}: already downloaded and checked", file=sys.stderr)
            return final
        if final.exists():
            bad = final.with_name(name + ".bad")
            os.replace(final, bad)
            print(f"{name}: existing file has the wrong size or md5; moved to {bad.name}", file=sys.stderr)
        part = final.with_name(name + ".part")
        if part.is_file() and part.stat().st_size > size:
            part.unlink()  # longer than the real file: cannot be a prefix of it
        url = self.url(name)
        attempt = 0
        while True:
            try:
                self._transfer(url, part, size, name)
                break
            except _Interrupted as exc:
                attempt += 1
                have = part.stat().st_size if part.is_file() else 0
                if attempt > self.retries:
                    raise DownloadError(
                        f"{url}: {exc}; stopped after {attempt} attempts with {have} of {size} bytes "
                        f"in {part} (run again to resume)"
                    ) from None
                wait = self.retry_wait * (2 ** (attempt - 1))
                print(f"{name}: {exc}; resuming from byte {have} in {wait:.0f} s "
                      f"(attempt {attempt + 1} of {self.retries + 1})", file=sys.stderr)
                time.sleep(wait)
        got_size = part.stat().st_size
        got = self._hash(part, f"md5 {name}")
        if got_size != size or got != md5:
            bad = final.with_name(name + ".bad")
            os.replace(part, bad)
            what = "size mismatch" if got_size != size else "md5 mismatch"
            raise DownloadError(
                f"{name}: {what}: expected {md5} ({size} bytes), got {got} ({got_size} bytes); "
                f"kept as {bad} and not used; run again to download it afresh"
            )
        os.replace(part, final)
        st = final.stat()
        self._stamp(name).write_text(f"{size} {st.st_mtime_ns} {md5}\n")
        return final

    def _transfer(self, url: str, part: Path, size: int, name: str) -> None:
        """One HTTP request continuing ``part``; raises _Interrupted when it can be retried."""
        have = part.stat().st_size if part.is_file() else 0
        if have == size:
            return
        headers = {"User-Agent": "recognizer-download-svhn/1"}
        if have:
            headers["Range"] = f"bytes={have}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                # Range not satisfiable: the partial file does not fit this server's file.
                part.unlink()
                raise _Interrupted("server refused to resume (HTTP 416), starting over") from None
            if exc.code >= 500 or exc.code in (408, 429):
                raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError, ConnectionResetError)):
                raise _Interrupted(f"connection failed ({reason})") from None
            raise DownloadError(f"{url}: cannot reach the server ({reason})") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise _Interrupted(f"connection failed ({exc or type(exc).__name__})") from None
        with response:
            status = response.status
            if have and status == 206:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != have:
                    part.unlink()
                    raise _Interrupted(f"server resumed at byte {start}, not {have}; starting over")
                mode = "ab"
            elif status == 200:
                if have:
                    print(f"{name}: server ignored the resume request; starting over", file=sys.stderr)
                have = 0
                mode = "wb"
            else:
                raise DownloadError(f"{url}: unexpected HTTP {status} {response.reason}")
            length = response.headers.get("Content-Length")
            expected_body = int(length) if length and length.isdigit() else None
            received = 0
            bar = _bar(size, have, name, self.progress)
            try:
                with open(part, mode) as fh:
                    while True:
                        try:
                            chunk = response.read(CHUNK)
                        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                            raise _Interrupted(f"transfer interrupted ({type(exc).__name__})") from None
                        if not chunk:
                            break
                        fh.write(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                        if have + received > size:
                            break  # more than the known size: the md5 check will reject it
            finally:
                if bar is not None:
                    bar.close()
            if expected_body is not None and received < expected_body:
                raise _Interrupted(f"transfer interrupted after {have + received} of {size} bytes")
            if have + received < size and expected_body is None:
                raise _Interrupted(f"transfer ended after {have + received} of {size} bytes")


def _content_range_start(value: str | None) -> int | None:
    """``"bytes 100-199/200"`` -> 100."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


# --------------------------------------------------------------------------- extraction


def _check_member(member: tarfile.TarInfo, root: Path, archive: Path) -> None:
    """Refuse members that would be written outside ``root`` or are not plain files/folders."""
    name = member.name
    target = (root / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not target.is_relative_to(root):
        raise DownloadError(f"{archive}: unsafe member {name!r} escapes {root}; archive not extracted further")
    if member.issym() or member.islnk():
        link_target = (target.parent / member.linkname).resolve() if member.issym() else (root / member.linkname).resolve()
        if os.path.isabs(member.linkname) or not link_target.is_relative_to(root):
            raise DownloadError(f"{archive}: unsafe link {name!r} -> {member.linkname!r}; archive not extracted further")
    elif not (member.isfile() or member.isdir()):
        raise DownloadError(f"{archive}: member {name!r} is a device or pipe; archive not extracted further")


def extract(archive: Path, out: Path, *, progress: bool = True) -> Path:
    """Unpack a ``.tar.gz`` into ``out`` safely; returns ``out``. Skips archives already unpacked.

    Raises:
        DownloadError: a damaged archive or an unsafe member.
    """
    root = out.resolve()
    stamp = out / f".{archive.name}.extracted"
    st = archive.stat()
    key = f"{st.st_size} {st.st_mtime_ns}"
    if stamp.is_file() and stamp.read_text().strip() == key:
        print(f"{archive.name}: already extracted", file=sys.stderr)
        return out
    bar = _bar(st.st_size, 0, f"extract {archive.name}", progress)
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            last = 0
            for member in tar:
                _check_member(member, root, archive)
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, root, filter="data")
                else:  # Python without extraction filters: the check above is the guard
                    tar.extract(member, root)
                if bar is not None:
                    pos = raw.tell()
                    bar.update(pos - last)
                    last = pos
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot extract ({exc}); delete it and download again") from None
    finally:
        if bar is not None:
            bar.close()
    stamp.write_text(key + "\n")
    return out


# --------------------------------------------------------------------------- CLI


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python tools/{PROG}.py",
        description="Download SVHN (http://ufldl.stanford.edu/housenumbers/), check md5 sums, unpack.",
    )
    p.add_argument("--out", required=True, help="folder for the files (created)")
    p.add_argument("--format", type=int, choices=(1, 2), default=1,
                   help="1: full images + digitStruct.mat (.tar.gz); 2: 32x32 crops (.mat) (default: 1)")
    p.add_argument("--splits", default="train,test",
                   help="comma-separated splits among train,test,extra (default: train,test; extra is 1.9 GB)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="where the files are (default: %(default)s)")
    p.add_argument("--no-extract", action="store_true", help="keep format-1 archives packed")
    p.add_argument("--manifest", help="JSON {name: {size, md5}} overriding the known sizes and md5 sums")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry (default: 60)")
    p.add_argument("--retries", type=int, default=5, help="resume attempts per file (default: 5)")
    p.add_argument("--retry-wait", type=float, default=2.0,
                   help="seconds before the first retry, doubling each time (default: 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = get_args_parser().parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if not splits or unknown:
        raise UsageError(f"--splits {args.splits!r}: unknown split {unknown[0] if unknown else ''!r}; "
                         f"expected a comma-separated subset of {','.join(SPLITS)}")
    if args.retries < 0 or args.timeout <= 0 or args.retry_wait < 0:
        raise UsageError("--retries and --retry-wait must be >= 0 and --timeout > 0")
    if not args.base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {args.base_url!r}: expected an http:// or https:// URL")
    table = dict(KNOWN_FILES)
    if args.manifest:
        table.update(load_manifest(args.manifest))
    names = file_names(args.format, splits)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out!r}: cannot create ({exc.strerror or exc})") from None
    dl = Downloader(args.base_url, out, table, timeout=args.timeout, retries=args.retries,
                    retry_wait=args.retry_wait, progress=not args.no_progress)
    for name in names:
        path = dl.fetch(name)
        print(f"{name}: ok ({path.stat().st_size} bytes, md5 {table[name][1]})", file=sys.stderr)
        if args.format == 1 and not args.no_extract:
            extract(path, out, progress=not args.no_progress)
            print(f"{name}: extracted into {out / name[: -len('.tar.gz')]}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns 0, 1 (download/check failed), 2 (bad arguments) or 130 (Ctrl-C)."""
    return run_main(PROG, lambda: _main(argv), interrupted="interrupted; run the same command again to resume")


if __name__ == "__main__":
    sys.exit(main())
