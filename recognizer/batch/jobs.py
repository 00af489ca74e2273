"""Many files, each once: the library side of ``recognizer batch`` (no Ray in this module).

* :func:`discover`: SOURCES (video files, folders, globs, image folders) as :class:`Job`\\ s,
  one per video file and one per image sequence, each with an output name unique in DIR.
* :func:`run_job`: one job through the same frame loop as ``recognizer run`` (a
  :class:`~recognizer.live.pipeline.Pipeline` and :class:`~recognizer.tracking.Tracker` consumed by
  :func:`~recognizer.live.session.run_session`), writing ``DIR/<name>.jsonl`` (the ``--log`` schema)
  and, asked for, ``DIR/<name>.mp4`` under temporary names (``DIR/.<name>.<token>.part.*``),
  renamed (the video first) only when the file was read to its end: a log under its final
  name is always complete (:func:`is_complete`).

:mod:`recognizer.batch.results` builds the run's table and summary from the per-file logs;
:mod:`recognizer.batch.cluster` runs the jobs on Ray workers. :func:`run_job` works without Ray.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recognizer.output.records import SUMMARY
from recognizer.output.sinks.numbers import NumbersPlan

__all__ = [
    "DEFAULT_BATCH", "BatchInputError", "Job", "JobResult", "discover", "evidence_path", "frame_total", "input_change",
    "input_identity", "is_complete", "log_path", "part_pid", "remove_parts", "result_state", "run_job", "unique_names", "video_path",
]

DEFAULT_BATCH = 4
"""Frames per inference call of a CPU worker: ``recognizer run``'s default, so readings match."""

VIDEO_OUTPUT = ".mp4"
EVIDENCE_OUTPUT = ".evidence"
_PART = re.compile(r"\.(?P<pid>\d+)-[0-9a-f]+\.part\.(?:jsonl|mp4|evidence)")


class BatchInputError(ValueError):
    """SOURCES that name nothing to read (one user-facing line)."""


@dataclass(frozen=True)
class Job:
    """One unit of work: a video file, or an image sequence (a folder, a glob, an image file).

    Attributes:
        path: absolute path of the video file or image folder/file, or the glob pattern.
        name: output stem, unique in the output folder (``DIR/<name>.jsonl``).
        kind: ``"video"`` or ``"images"``.
        aliases: other paths among SOURCES that are this same file (a symlink or hard link to
            it, found in a folder): read once, as ``path``.
    """

    path: str
    name: str
    kind: str = "video"
    aliases: tuple[str, ...] = ()


@dataclass
class JobResult:
    """How one job ended. ``status``: completed, failed, interrupted or skipped (already done)."""

    name: str
    path: str
    status: str = "completed"
    frames: int = 0
    seconds: float = 0.0
    confirmed: list[str] = field(default_factory=list)
    error: str | None = None
    attempts: int = 1
    worker: str | None = None
    input_changed: str | None = None  # why a file whose result was complete was read again

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


# --------------------------------------------------------------------------- inputs


def _natural_key(path: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


def _kind(path: Path) -> str | None:
    from recognizer.io.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    suffix = path.suffix.lower()
    return "video" if suffix in VIDEO_EXTENSIONS else "images" if suffix in IMAGE_EXTENSIONS else None


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def _walk(folder: Path, exclude: Path | None) -> list[tuple[str, str]]:
    """Each video file under ``folder`` (recursively), and each folder holding images as one sequence."""
    found: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root)
        dirs[:] = sorted((d for d in dirs if not d.startswith(".") and not _inside(here / d, exclude)), key=_natural_key)
        if _inside(here, exclude):
            continue
        kinds = {f: _kind(here / f) for f in files if not f.startswith(".") and (here / f).is_file()}
        found += [(str(here / f), "video") for f in sorted(kinds, key=_natural_key) if kinds[f] == "video"]
        if "images" in kinds.values():
            found.append((str(here), "images"))
    return found


def discover(sources: Sequence[str], *, exclude: str | os.PathLike[str] | None = None) -> list[Job]:
    """The jobs of SOURCES, in the order given, each file once.

    A video file is one job; a folder gives each video file under it (recursively) and each
    folder of images under it as one sequence; a glob gives its video files one by one, its
    images as one sequence (as ``recognizer run GLOB`` reads them) and its folders as folders; an
    image file is a sequence of one. Nothing under ``exclude`` (the output folder) is taken.

    Raises:
        BatchInputError: a source that does not exist or holds nothing to read.
    """
    out = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[str, str]] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            if _inside(path.resolve(), out):
                raise BatchInputError(f"folder '{source}' is the output folder (--out) or inside it, which is never read as an "
                                      "input (results are not footage); choose another --out")
            items = _walk(path.resolve(), out)
            what = f"folder '{source}' holds no video files or images" + (
                " outside the output folder (--out), which is skipped as an input" if out is not None and _inside(out, path.resolve()) else "")
        elif path.exists():
            items = [] if _inside(path.resolve(), out) else [(str(path.resolve()), _kind(path) or "video")]
            what = f"'{source}' is in the output folder"
        elif any(ch in source for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(source, recursive=True), key=_natural_key)]
            matches = [m for m in matches if not _inside(m.resolve(), out)]
            items = []
            for m in matches:
                if m.is_dir():
                    items += _walk(m.resolve(), out)
                elif _kind(m) == "video":
                    items.append((str(m.resolve()), "video"))
            if any(m.is_file() and _kind(m) == "images" for m in matches):
                items.append((os.path.abspath(source), "images"))
            what = f"pattern '{source}' matches no video files or images"
        else:
            raise BatchInputError(f"source '{source}' not found: expected video files, folders or globs of them")
        if not items:
            raise BatchInputError(what)
        found += items
    # Each real file once: a symlink or hard link in a folder is the file it points to.
    first: dict[Any, int] = {}
    unique: list[tuple[str, str]] = []
    aliases: list[list[str]] = []
    for p, k in found:
        key = _file_key(p)
        if key in first:
            same = aliases[first[key]]
            if p != unique[first[key]][0] and p not in same:
                same.append(p)
            continue
        first[key] = len(unique)
        unique.append((p, k))
        aliases.append([])
    names = unique_names([p for p, _ in unique])
    return [Job(path=p, name=n, kind=k, aliases=tuple(a)) for (p, k), n, a in zip(unique, names, aliases)]


def _file_key(path: str) -> Any:
    """What makes two paths one input: device and inode of an existing file or folder, else the text."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    return (st.st_dev, st.st_ino)


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "input"


def unique_names(paths: Sequence[str]) -> list[str]:
    """An output stem per input path, unique ignoring case: the file's stem (a folder's name);
    inputs that share one get their folder's name in front, then a hash of their path."""

    def stem(p: str) -> str:
        path = Path(p)
        base = path.parent.name if any(ch in path.name for ch in "*?[") else (path.stem if path.suffix else path.name)
        return _clean(base)

    def dupes(names: list[str]) -> set[str]:
        lowered = [n.lower() for n in names]
        return {n for n in lowered if lowered.count(n) > 1}

    names = [stem(p) for p in paths]
    clash = dupes(names)
    names = [_clean(f"{Path(p).parent.name}-{n}") if n.lower() in clash else n for p, n in zip(paths, names)]
    clash = dupes(names)
    return [f"{n}-{hashlib.sha1(p.encode()).hexdigest()[:8]}" if n.lower() in clash else n for p, n in zip(paths, names)]


def frame_total(job: Job) -> int | None:
    """Frames a job will read, from the file's metadata (None when unknown); for the progress bar."""
    import cv2

    from recognizer.io.sources import quiet_stderr

    if job.kind == "images":
        files = Path(job.path).iterdir() if os.path.isdir(job.path) else map(Path, glob.glob(glob.escape(job.path) if os.path.isfile(job.path) else job.path))
        return sum(_kind(p) == "images" for p in files)
    with quiet_stderr():
        cap = cv2.VideoCapture(job.path)
        try:
            n = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
        finally:
            cap.release()
    return int(n) if n and n > 0 else None


# --------------------------------------------------------------------------- outputs of a job


def log_path(out: Path, job: Job) -> Path:
    return out / f"{job.name}.jsonl"


def video_path(out: Path, job: Job) -> Path:
    return out / f"{job.name}{VIDEO_OUTPUT}"


def evidence_path(out: Path, job: Job) -> Path:
    """The folder of a job's evidence pictures (``DIR/<name>.evidence``)."""
    return out / f"{job.name}{EVIDENCE_OUTPUT}"


def part_path(final: Path, token: str) -> Path:
    """The temporary name of an output while it is written: ``.<name>.<token>.part<suffix>``."""
    return final.with_name(f".{final.stem}.{token}.part{final.suffix}")


def part_token() -> str:
    """This process's id and a random suffix: two attempts at one file never share a temporary name."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:6]}"


def part_pid(path: str | os.PathLike[str]) -> int | None:
    """The id of the process writing a temporary output (from its name), or None."""
    m = _PART.search(Path(path).name)
    return int(m.group("pid")) if m else None


def remove_parts(out: Path, job: Job) -> None:
    """Delete the temporary outputs of ``job`` (left by a killed worker or run)."""
    pattern = re.compile(re.escape(f".{job.name}") + _PART.pattern)
    for p in out.glob(f".{glob.escape(job.name)}.*.part.*"):
        if pattern.fullmatch(p.name):
            _remove(p)


def _remove(path: Path) -> None:
    """Delete a file, or a folder with what is in it (evidence pictures)."""
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _last_record(path: Path) -> dict[str, Any] | None:
    """The last line of a log as JSON, read from the end (logs of long files are large)."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            start, tail = end, b""
            while start > 0 and tail.rstrip(b"\n").count(b"\n") == 0:
                start = max(start - 65536, 0)
                fh.seek(start)
                tail = fh.read(end - start)
        return json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    except (OSError, ValueError):
        return None


HASHED_BYTES = 64 * 1024
"""Bytes hashed at each end of a video file for :func:`input_identity`."""


def _image_files(job: Job) -> list[Path]:
    if os.path.isfile(job.path):
        return [Path(job.path)]
    files = Path(job.path).iterdir() if os.path.isdir(job.path) else map(Path, glob.glob(job.path))
    return sorted((p for p in files if _kind(p) == "images"), key=lambda p: _natural_key(str(p)))


def input_identity(job: Job) -> dict[str, Any] | None:
    """What identifies the input a result is made from, cheaply: a file's size, its mtime in
    ns and a SHA-256 of its first and last :data:`HASHED_BYTES`; for an image sequence, a
    SHA-256 over each image's name, size and mtime. None when it cannot be read."""
    try:
        if job.kind == "video":
            st = os.stat(job.path)
            digest = hashlib.sha256()
            with open(job.path, "rb") as fh:
                digest.update(fh.read(HASHED_BYTES))
                if st.st_size > HASHED_BYTES:
                    fh.seek(max(st.st_size - HASHED_BYTES, HASHED_BYTES))
                    digest.update(fh.read(HASHED_BYTES))
            return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head_tail": digest.hexdigest()}
        files = _image_files(job)
        digest = hashlib.sha256()
        size = 0
        for p in files:
            st = os.stat(p)
            size += st.st_size
            digest.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"images": len(files), "size": size, "sha256_listing": digest.hexdigest()}
    except OSError:
        return None


def _first_record(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.readline())
    except (OSError, ValueError):
        return None


def input_change(recorded: dict[str, Any] | None, current: dict[str, Any] | None) -> str | None:
    """How the input differs from the one a result recorded (one line), or None when it is the
    same, when the result recorded none (a log of an earlier version: trusted) or when the
    input cannot be read now (nothing to compare, and nothing to read again)."""
    if not isinstance(recorded, dict) or not recorded or current is None:
        return None
    if recorded.get("size") != current.get("size"):
        return f"its size changed from {recorded.get('size')} to {current.get('size')} bytes"
    if recorded.get("images") != current.get("images"):
        return f"it held {recorded.get('images')} images and now holds {current.get('images')}"
    for key, what in (("sha256_head_tail", "its first or last 64 KiB differ"), ("sha256_listing", "an image in it changed"),
                      ("mtime_ns", "it was modified since")):
        if recorded.get(key) != current.get(key):
            return what
    return None


def result_state(out: Path, job: Job, *, save_video: bool = False) -> tuple[bool, str | None]:
    """``(complete, changed)``: whether ``job``'s outputs are there and whole (its log ends
    with a completed summary, the video is there when asked for, and the log was made from
    the input as it is now), and, for a whole result made from another input (a dashcam's
    reused file name), how the input changed."""
    last = _last_record(log_path(out, job))
    if not last or last.get("type") != SUMMARY or last.get("status") != "completed":
        return False, None
    first = _first_record(log_path(out, job)) or {}
    changed = input_change(first.get("input"), input_identity(job)) if first.get("input") else None
    if changed is not None:
        return False, changed
    return not save_video or video_path(out, job).is_file(), None


def is_complete(out: Path, job: Job, *, save_video: bool = False) -> bool:
    """``job``'s outputs are there, whole, and made from the input as it is now (:func:`result_state`)."""
    return result_state(out, job, save_video=save_video)[0]


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _named_as(text: str | None, finals: dict[str, str]) -> str | None:
    """``text`` with each temporary output path replaced by the final one."""
    for tmp, final in finals.items():
        text = text.replace(tmp, final) if text else text
    return text


def run_job(job: Job, out: str | os.PathLike[str], recognizer: Any, *, save_video: bool = False, batch: int = DEFAULT_BATCH,
            workers: int = 1, on_frame: Callable[[int], None] | None = None, numbers: NumbersPlan | None = None,
            reader: str = "digits") -> JobResult:
    """Process ``job`` to its end like ``recognizer run FILE --log DIR/<name>.jsonl [--save ...]``.

    ``numbers`` adds evidence pictures (``DIR/<name>.evidence/``), positions and known-number
    checks to the confirmed numbers (:class:`recognizer.output.sinks.numbers.NumbersPlan`). ``reader``
    (``digits``, ``fast``, ``accurate``) adds the text reader (:mod:`recognizer.live.textworker`).

    The outputs are renamed into place only when the run completed; otherwise they are deleted
    and the result says why (``status`` failed with a one-line ``error``, or interrupted).
    """
    from recognizer.io.sources import ImageFolderSource, VideoFileSource
    from recognizer.live.pipeline import PipelineConfig
    from recognizer.live.run import run

    out = Path(out)
    token = part_token()
    log_final, video_final = log_path(out, job), video_path(out, job)
    log_tmp, video_tmp = part_path(log_final, token), part_path(video_final, token)
    evidence_final = evidence_path(out, job)
    evidence_tmp = part_path(evidence_final, token)
    result = JobResult(job.name, job.path, worker=f"{os.uname().nodename}:{os.getpid()}")
    identity = input_identity(job)  # before reading: a change while it is read shows next time
    # Errors name the outputs asked for, not the temporary files (deleted when a job fails).
    finals = {str(log_tmp): str(log_final), str(video_tmp): str(video_final), str(evidence_tmp): str(evidence_final)}
    source = VideoFileSource(job.path) if job.kind == "video" else ImageFolderSource(job.path)
    text_reader = None
    if reader != "digits":
        from recognizer.models.textreader import load_text_reader

        text_reader = load_text_reader(threads=1)
    frames = 0

    def progress(_: Any) -> None:
        nonlocal frames
        frames += 1
        if on_frame is not None:
            on_frame(frames)

    t0 = time.monotonic()
    renamed = False
    try:
        summary = run(
            source, recognizer, config=PipelineConfig(batch_size=batch, workers=workers, live=False),
            reader=reader, text_reader=text_reader, save=video_tmp if save_video else None, log=log_tmp,
            # pictures named by their final folder, relative to DIR (the log's)
            numbers=(lambda: numbers.sink(job.path, evidence_tmp, evidence_final.name)) if numbers is not None else None,
            record={"input": identity}, on_frame=progress,
        )
        if not summary.started and isinstance(summary.exception, KeyboardInterrupt):
            raise summary.exception
        result.frames, result.confirmed = summary.frames, list(summary.confirmed)
        result.status, result.error = summary.status, _named_as(summary.error, finals)
        if summary.status == "completed":
            _sync(log_tmp)
            if save_video:
                os.replace(video_tmp, video_final)
            if numbers is not None and numbers.evidence:
                _remove(evidence_final)  # an earlier attempt's, whose log never completed
                if evidence_tmp.is_dir():
                    os.replace(evidence_tmp, evidence_final)
            os.replace(log_tmp, log_final)
            renamed = True
        return result
    finally:
        source.close()
        result.seconds = time.monotonic() - t0
        if not renamed:
            for p in (log_tmp, video_tmp, evidence_tmp):
                _remove(p)
