"""``recognizer report RESULTS -o report.html``: a run's log or a batch folder as one HTML page.

argparse and checks live here; the work is in :mod:`recognizer.apps.report`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from recognizer.cli.options import same_file
from recognizer.errors import CLIError


def report_command(args: argparse.Namespace) -> int:
    """Handler of ``recognizer report``."""
    from recognizer.apps.report import ReportError, evidence_files, load_results, write_report

    out = Path(args.output)
    if out.is_dir():
        raise CLIError(f"-o '{out}' is a folder; expected the path of the HTML file to write")
    if not out.parent.is_dir() and str(out.parent):
        raise CLIError(f"-o '{out}': folder '{out.parent}' does not exist; create it or choose another path")
    try:
        results = load_results(args.results)
    except ReportError as exc:
        raise CLIError(str(exc)) from exc
    for f in [*results.inputs, *evidence_files(results), *(s.video for s in results.files if s.video is not None)]:
        if same_file(out, f):
            raise CLIError(f"-o '{out}' is '{f}', which the report is made from; refusing to overwrite it, choose another path")
    try:
        write_report(results, out, title=args.title)
    except OSError as exc:
        raise CLIError(f"-o '{out}': cannot write it ({exc.strerror or exc})", code=1) from exc
    print(f"report: {results.numbers} house numbers from {len(results.files)} file(s), {len(results.failed)} failure(s), "
          f"written to {out}")
    return 0


HELP = "turn a run's log or a batch output folder into one self-contained HTML page"
DESCRIPTION = """\
Read RESULTS (the log of 'recognizer run --log', or a 'recognizer batch --out' folder) and write one
HTML page: a summary (files, frames, numbers, failures) and, per file, a sortable table of the
confirmed numbers with their evidence picture, time range (linked to the annotated video when one
was saved), confidence, position and --expect check. Pictures are embedded; the page works offline.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help=HELP, description=DESCRIPTION)
    p.add_argument("results", metavar="RESULTS", help="a log file of recognizer run --log, or a recognizer batch --out folder")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write (replaced atomically)")
    p.add_argument("--title", help="the page's title (default: from RESULTS)")
    p.set_defaults(func=report_command)
