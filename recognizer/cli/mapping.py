"""The options of ``recognizer run`` and ``recognizer batch`` that make results people can check
and map: ``--evidence``, ``--gpx``/``--nmea``, ``--start-time``, ``--time-offset``,
``--geojson`` and ``--expect``.

Everything they name is read and checked here before a run starts (a corrupt GPX file, a track
that misses the video's time, an ``--expect`` line that does not parse: one line, exit status
2, nothing written). The work is in :mod:`recognizer.output.sinks.numbers`, :mod:`recognizer.output.geo`,
:mod:`recognizer.output.expect` and :mod:`recognizer.output.evidence`.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognizer.cli.options import same_file
from recognizer.errors import CLIError, finite_float

__all__ = ["RunMapping", "add_batch_arguments", "add_run_arguments", "batch_plan", "prepare_run"]

_OPTIONS = ("evidence", "gpx", "nmea", "start_time", "geojson", "expect")


def _track_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--gpx", action="append", metavar="FILE", help="GPS track (GPX) of the drive: each number gets the camera's "
                   "position at its best view, interpolated in time (repeat, or quote a glob such as 'gps/*.gpx', for several "
                   "files; an NMEA log given here works too)")
    g.add_argument("--nmea", action="append", metavar="FILE", help="NMEA sentence log ($GPRMC/$GPGGA) of the drive, as --gpx")
    g.add_argument("--time-offset", type=finite_float, default=0.0, metavar="S",
                   help="seconds to add to the video's start time (a camera clock S seconds behind; default: 0)")
    g.add_argument("--expect", metavar="FILE", help="the numbers that can exist, one per line or ranges such as '1-99 odd', "
                   "'2-120 even', '10-20': a read not in the list is flagged, with a known number one digit away when the votes support it")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``recognizer run`` (one video file, or any one source without positions)."""
    g = parser.add_argument_group("evidence, positions, known numbers")
    g.add_argument("--evidence", metavar="DIR", help="write a JPEG of each confirmed number's best view to DIR (new or empty); "
                   "the log's records name it")
    _track_options(g)
    g.add_argument("--start-time", metavar="ISO8601", help="when the video's first frame was taken (e.g. 2024-05-04T10:20:30Z; "
                   "UTC unless it has an offset; default: the video's creation_time)")
    g.add_argument("--geojson", metavar="FILE", help="write one GeoJSON point per placed number (needs --gpx or --nmea)")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``recognizer batch`` (start times from each video's creation_time)."""
    g = parser.add_argument_group("evidence, positions, known numbers")
    g.add_argument("--no-evidence", action="store_true", help="do not write DIR/<name>.evidence/ (a JPEG of each number's best view)")
    _track_options(g)


@dataclass
class RunMapping:
    """What ``recognizer run`` was asked for, checked: build its sink with :meth:`sink`."""

    evidence: Path | None = None
    placement: Any = None  # Placement
    known: Any = None  # KnownNumbers
    geojson: Path | None = None
    track_files: tuple[str, ...] = ()

    def sink(self, log: str | os.PathLike[str] | None) -> Any:
        """The :class:`~recognizer.output.sinks.numbers.NumbersSink` (records name pictures relative
        to ``log``'s folder)."""
        from recognizer.output.evidence import EvidenceWriter
        from recognizer.output.sinks.numbers import NumbersSink

        writer = ref = None
        if self.evidence is not None:
            writer = EvidenceWriter(self.evidence, what=f"--evidence folder '{self.evidence}'")
            base = Path(log).parent if log else Path(".")
            ref = Path(os.path.relpath(self.evidence.resolve(), base.resolve())).as_posix()
        return NumbersSink(evidence=writer, evidence_ref=ref, placement=self.placement, known=self.known, geojson=self.geojson)

    def run_fields(self, args: argparse.Namespace) -> dict[str, Any]:
        """What the log's first record says about it (the report links the video from there)."""
        from recognizer.output.geo import format_time

        base = Path(args.log).parent if args.log else Path(".")
        out: dict[str, Any] = {}
        if args.save:
            out["video"] = Path(os.path.relpath(Path(args.save).resolve(), base.resolve())).as_posix()
        if self.evidence is not None:
            out["evidence"] = Path(os.path.relpath(self.evidence.resolve(), base.resolve())).as_posix()
        if self.placement is not None:
            out["start_time"] = format_time(self.placement.start)
        if self.track_files:
            out["track"] = list(self.track_files)
        if self.known is not None:
            out["expect"] = self.known.path
        return out


def _known(args: argparse.Namespace) -> Any:
    from recognizer.output.expect import ExpectError, KnownNumbers

    if not args.expect:
        return None
    try:
        return KnownNumbers.parse(args.expect)
    except ExpectError as exc:
        raise CLIError(str(exc)) from exc


def _track(args: argparse.Namespace) -> Any:
    from recognizer.output.geo import GeoError, load_tracks

    files = [f for spec in (*(args.gpx or []), *(args.nmea or [])) for f in _expand(spec)]
    if not files:
        return None, ()
    try:
        return load_tracks(files), tuple(files)
    except GeoError as exc:
        raise CLIError(str(exc)) from exc


def _expand(spec: str) -> list[str]:
    """A track file, or a quoted glob of them (``'gps/*.nmea'``: one NMEA log per clip)."""
    import glob

    if os.path.exists(spec) or not any(ch in spec for ch in "*?["):
        return [spec]
    found = sorted(glob.glob(spec))
    if not found:
        raise CLIError(f"track files '{spec}': the pattern matches no file")
    return found


def _note(text: str) -> None:
    print(f"recognizer: {text}", file=sys.stderr)


def _check_span(track: Any, start: float, span: float | None, video: str, how: str) -> None:
    """A track that misses the video's time altogether is an error; one that covers part of it
    a note (numbers outside it get no position)."""
    from recognizer.output.geo import format_time

    end = start + (span or 0.0)
    covered = track.overlap(start, end)
    when = f"video '{video}' runs {format_time(start)} to {format_time(end)} ({how})"
    have = f"{track.name} cover{'s' if len(track.files) == 1 else ''} {format_time(track.start)} to {format_time(track.end)}"
    fits = covered > 0.0 if span else track.covers(start)
    if not fits:
        raise CLIError(f"{have}, but {when}: no position would fit; check --time-offset or --start-time, or the track file")
    if span and covered < span - 1e-6:
        _note(f"positions: {have}, {covered:.0f} s of the {span:.0f} s of {when}; numbers outside it get no position")


def prepare_run(args: argparse.Namespace, source: Any, n_sources: int = 1) -> RunMapping | None:
    """Check ``recognizer run``'s evidence/position/expect options before the run (``source``:
    the one source, not opened); None when none was given."""
    from recognizer.output.geo import GeoError, parse_time, video_span, video_start_time

    given = [o for o in _OPTIONS if getattr(args, o, None)]
    if not given and not args.time_offset:
        return None
    if n_sources > 1:
        raise CLIError(f"--{given[0].replace('_', '-') if given else 'time-offset'} works with one SOURCE; "
                       "run the sources one at a time, or use recognizer batch for many files")
    mapping = RunMapping(known=_known(args))
    track, mapping.track_files = _track(args)
    if args.geojson:
        if track is None:
            raise CLIError("--geojson needs positions: give the drive's track with --gpx FILE or --nmea FILE")
        _check_output(args, Path(args.geojson), "--geojson")
        mapping.geojson = Path(args.geojson)
    if args.evidence:
        mapping.evidence = _evidence_folder(args)
    if track is None and not args.start_time and not args.time_offset:
        return mapping
    kind = getattr(source, "kind", None)
    if getattr(source, "live", False) or kind in ("camera", "stream"):
        raise CLIError("--gpx/--nmea/--start-time/--time-offset: positions need a recorded video (a live camera's frames "
                       "carry no video time)")
    if kind == "files" and track is not None:
        raise CLIError("--gpx/--nmea: positions need one video file as SOURCE (each video of a folder has its own start "
                       "time): use recognizer batch for a folder of videos")
    start, how = None, ""
    if args.start_time:
        try:
            start, how = parse_time(args.start_time), f"--start-time {args.start_time}"
        except GeoError as exc:
            raise CLIError(str(exc)) from exc
    elif kind == "file":
        start, why = video_start_time(source.name)
        how = why
        if start is None:
            _note(f"positions: video '{source.name}' has no usable start time ({why}) and no --start-time was given: "
                  "the numbers get no time and no position")
            return mapping
    else:
        _note(f"positions: {kind} source '{getattr(source, 'name', source)}' has no start time and no --start-time was "
              "given: the numbers get no time and no position")
        return mapping
    start += args.time_offset
    if args.time_offset:
        how += f", {args.time_offset:+g} s offset"
    if track is not None:
        span = video_span(source.name) if kind == "file" else None
        _check_span(track, start, span, source.name, how)
    from recognizer.output.sinks.numbers import Placement

    mapping.placement = Placement(start, track)
    return mapping


def _check_output(args: argparse.Namespace, path: Path, option: str) -> None:
    """An output of these options may not be an input, a model or another output."""
    from recognizer.io.sources import input_files

    if path.is_dir():
        raise CLIError(f"{option} '{path}' is a folder; expected a file path")
    if not path.parent.is_dir() and str(path.parent):
        raise CLIError(f"{option} '{path}': folder '{path.parent}' does not exist; create it or choose another path")
    specs = args.source if isinstance(args.source, (list, tuple)) else [args.source]
    inputs = [p for spec in specs for p in input_files(spec)]
    inputs += [Path(p) for p in (*(args.gpx or []), *(args.nmea or []), *([args.expect] if args.expect else []))]
    for other in ("save", "log"):
        if getattr(args, other, None):
            inputs.append(Path(getattr(args, other)))
    for p in inputs:
        if same_file(path, p):
            raise CLIError(f"{option} '{path}' is also '{p}' (an input or another output); choose another path")


def _evidence_folder(args: argparse.Namespace) -> Path:
    folder = Path(args.evidence)
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"--evidence '{folder}' is a file; expected a folder (created when missing)")
    if folder.is_dir() and any(folder.iterdir()):
        raise CLIError(f"--evidence folder '{folder}' is not empty; choose a new or empty folder (pictures of one run never "
                       "overwrite another's)")
    if args.dump and folder.resolve() == Path(args.dump).resolve():
        raise CLIError(f"--evidence '{folder}' is the --dump folder; choose another folder")
    for option in ("save", "log", "geojson"):
        value = getattr(args, option, None)
        if value and folder.resolve() in Path(value).resolve().parents:
            raise CLIError(f"--{option} '{value}' is inside the --evidence folder '{folder}'; choose a path outside it")
    return folder


def batch_plan(args: argparse.Namespace, jobs: Sequence[Any]) -> Any:
    """``recognizer batch``'s :class:`~recognizer.output.sinks.numbers.NumbersPlan`: the track and
    each video's start time read and checked here, before Ray starts."""
    from recognizer.output.geo import video_span, video_start_time
    from recognizer.output.sinks.numbers import NumbersPlan

    known = _known(args)
    track, _ = _track(args)
    starts: dict[str, float] = {}
    if track is not None:
        missing: list[str] = []
        for job in jobs:
            start, why = video_start_time(job.path) if job.kind == "video" else (None, "an image sequence")
            if start is None:
                missing.append(f"{job.path} ({why})")
                continue
            start += args.time_offset
            how = why + (f", {args.time_offset:+g} s offset" if args.time_offset else "")
            _check_span(track, start, video_span(job.path), job.path, how)
            starts[job.path] = start
        if missing:
            shown = "; ".join(missing[:3]) + (f"; and {len(missing) - 3} more" if len(missing) > 3 else "")
            _note(f"positions: {len(missing)} of {len(jobs)} file(s) have no usable start time, their numbers get no "
                  f"position: {shown}")
    return NumbersPlan(evidence=not args.no_evidence, track=track, starts=starts, known=known)
