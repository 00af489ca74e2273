"""``recognizer report``: a run's results as one self-contained HTML page people can check.

:func:`load_results` reads a run's log (``recognizer run --log``) or a batch output folder
(``recognizer batch --out``: its complete per-file logs and ``summary.json``);
:func:`render_html` turns them into a page with, per file, a table of the confirmed numbers
(evidence picture, time range, confidence, position, the ``--expect`` check) that sorts by any
column, a link that opens the annotated video at the number's time when one was saved, and a
summary at the top (files, frames, numbers, failures). Pictures are embedded as ``data:`` URIs
and the script is inline: the page needs no server, no network and no other file (except the
videos it links to).
"""
from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recognizer.output.records import CONFIRMED, RUN, SUMMARY, TRACK_ENDED, iter_log
from recognizer.output.results import numbers_from_records, replace_atomically

__all__ = ["FileResults", "ReportError", "Results", "load_results", "render_html", "write_report"]


class ReportError(ValueError):
    """Results that cannot be read (one user-facing line)."""


@dataclass
class FileResults:
    """The numbers of one file (or one source of a run).

    Attributes:
        name: what the section is called (the file's path or the source's name).
        log: the log it was read from.
        frames: frames processed (None when the log has no summary).
        status: how its run ended (``completed``, ``interrupted``, ...; None without summary).
        error: why it failed, if it did.
        numbers: :func:`recognizer.output.results.numbers_from_records` of its log.
        video: the annotated video, when one was saved and is there.
    """

    name: str
    log: Path
    frames: int | None = None
    status: str | None = None
    error: str | None = None
    numbers: list[dict[str, Any]] = field(default_factory=list)
    video: Path | None = None


@dataclass
class Results:
    """Everything a report shows: a section per file and the files that failed."""

    source: Path
    files: list[FileResults] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of files without a complete log
    inputs: list[Path] = field(default_factory=list)  # every file read, which the report may not overwrite

    @property
    def frames(self) -> int:
        return sum(f.frames or 0 for f in self.files)

    @property
    def numbers(self) -> int:
        return sum(len(f.numbers) for f in self.files)


_KEEP = (RUN, CONFIRMED, TRACK_ENDED, SUMMARY)


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of a log a report uses (not the frame lines, which are most of a log)."""
    try:
        records = [r for r in iter_log(path) if isinstance(r, dict) and r.get("type") in _KEEP]
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read log '{path}' ({getattr(exc, 'strerror', None) or exc})") from None
    if not records or records[0].get("type") != RUN:
        raise ReportError(f"'{path}' is not a recognizer log (its first record is not a 'run' line)")
    return records


def _from_log(path: Path) -> list[FileResults]:
    """One section per source of a ``recognizer run --log`` file."""
    records = _records(path)
    run = records[0]
    base = path.parent
    video = base / run["video"] if isinstance(run.get("video"), str) else None
    sources = run.get("sources")
    names: list[str | None] = list(sources) if isinstance(sources, dict) else [None]
    out = []
    for name in names:
        own = [r for r in records if r.get("source") == name or (r.get("type") == RUN)]
        summary = next((r for r in reversed(own) if r.get("type") == SUMMARY and r.get("source") == name), None)
        src = run.get("source")
        label = name if name is not None else (src.get("name") if isinstance(src, dict) else None) or str(path)
        out.append(FileResults(
            name=str(label), log=path, frames=summary.get("frames") if summary else None,
            status=summary.get("status") if summary else None, error=summary.get("error") if summary else None,
            numbers=numbers_from_records(own, str(label)), video=video if name is None and video and video.is_file() else None,
        ))
    return out


def load_results(path: str | os.PathLike[str]) -> Results:
    """The results at ``path``: a log file, or a ``recognizer batch`` output folder.

    Raises:
        ReportError: nothing there, or not a recognizer log / batch folder.
    """
    p = Path(path)
    if not p.exists():
        raise ReportError(f"'{path}' not found: expected a log of recognizer run --log, or a recognizer batch --out folder")
    results = Results(source=p)
    if p.is_file():
        results.files = _from_log(p)
        results.inputs = [p]
        for f in results.files:
            if f.status not in (None, "completed", "quit"):
                results.failed.append((f.name, f.error or f.status or "did not complete"))
        return results
    summary_path = p / "summary.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReportError(f"'{summary_path}': not a readable batch summary ({exc})") from None
        results.inputs.append(summary_path)
    logs = sorted(q for q in p.glob("*.jsonl") if not q.name.startswith("."))
    for log in logs:
        try:
            section = _from_log(log)[0]
        except ReportError:
            continue  # not a recognizer log
        if section.status != "completed":
            continue  # batch renames a log into place only when complete: this one is something else
        video = p / f"{log.stem}.mp4"
        section.video = video if video.is_file() else None
        for n in section.numbers:
            n.setdefault("file", section.name)
        results.files.append(section)
        results.inputs.append(log)
    for item in summary.get("failed", []) if isinstance(summary.get("failed"), list) else []:
        if isinstance(item, dict):
            results.failed.append((str(item.get("file") or item.get("name")), str(item.get("reason") or "failed")))
    if not results.files and not results.failed:
        raise ReportError(f"folder '{path}' holds no complete recognizer logs (*.jsonl) and no summary.json")
    return results


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2327;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px;word-break:break-all}
.meta{color:#5f6b73;font-size:12px}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{background:#fff;border:1px solid #dde2e5;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:20px}.card.bad b{color:#b32d2e}
table{border-collapse:collapse;background:#fff;border:1px solid #dde2e5;width:100%;margin-top:6px}
th,td{padding:6px 10px;border-bottom:1px solid #eceff1;text-align:left;vertical-align:middle}
th{background:#f0f3f5;cursor:pointer;user-select:none;white-space:nowrap;position:sticky;top:0}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{font-size:20px;font-weight:700;white-space:nowrap}
td img{display:block;max-height:110px;max-width:260px;border-radius:3px}
.flag{display:inline-block;font-size:12px;font-weight:600;padding:1px 6px;border-radius:3px;margin-top:2px}
.unknown{background:#fcf0e1;color:#8a4b00}.known{background:#e5f5e8;color:#1e6b30}
.failed li{color:#b32d2e}.none{color:#5f6b73;font-style:italic}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(table){
  var heads=table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads,function(th,col){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('asc');
      Array.prototype.forEach.call(heads,function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var key=function(r){var v=r.cells[col].getAttribute('data-sort');return v===null?r.cells[col].textContent:v;};
      var numeric=rows.every(function(r){var v=key(r);return v===''||!isNaN(parseFloat(v));});
      rows.sort(function(a,b){
        var x=key(a),y=key(b);
        if(numeric){x=x===''?Infinity:parseFloat(x);y=y===''?Infinity:parseFloat(y);return asc?x-y:y-x;}
        return asc?x.localeCompare(y):y.localeCompare(x);
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _seconds(t: Any) -> str:
    if not isinstance(t, (int, float)):
        return ""
    m, s = divmod(float(t), 60.0)
    return f"{int(m)}:{s:04.1f}"


def _picture(n: dict[str, Any], base: Path) -> str:
    ref = n.get("evidence")
    if not ref:
        return '<td><span class="none">no picture</span></td>'
    path = base / ref
    try:
        data = path.read_bytes()
    except OSError:
        return f'<td><span class="none">picture missing: {_e(ref)}</span></td>'
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return f'<td><img src="{uri}" alt="{_e(n["number"])}" title="{_e(ref)}"></td>'


def _row(n: dict[str, Any], section: FileResults, out_dir: Path) -> str:
    number = _e(n["number"])
    flag = ""
    if n.get("known") is False:
        if n.get("expected"):
            flag = f'<br><span class="flag unknown">expected: {_e(n["expected"])} (read {number})</span>'
        else:
            flag = '<br><span class="flag unknown">not in the known numbers</span>'
    elif n.get("known") is True:
        flag = '<br><span class="flag known">known</span>'
    first, last = n.get("first_time"), n.get("last_time")
    span = f"{_seconds(first)}&ndash;{_seconds(last)}"
    if section.video is not None and isinstance(first, (int, float)):
        href = Path(os.path.relpath(section.video.resolve(), out_dir.resolve())).as_posix()
        at = max(float(n.get("best_time", first)) - 1.0, float(first), 0.0)
        span = f'<a href="{_e(href)}#t={at:.1f}" title="open the annotated video here">{span}</a>'
    when = f'<br><span class="meta">{_e(n["time"])}</span>' if n.get("time") else ""
    conf = n.get("confidence")
    if n.get("lat") is not None and n.get("lon") is not None:
        lat, lon = float(n["lat"]), float(n["lon"])
        osm = f"https://www.openstreetmap.org/?mlat={lat:.7f}&amp;mlon={lon:.7f}#map=19/{lat:.7f}/{lon:.7f}"
        fix = f' <span class="meta">&plusmn;{float(n["fix_distance_m"]):.1f} m to a fix</span>' if n.get("fix_distance_m") is not None else ""
        pos = f'<td data-sort="{lat:.7f}"><a href="{osm}">{lat:.6f}, {lon:.6f}</a>{fix}</td>'
    else:
        pos = '<td data-sort=""><span class="none">none</span></td>'
    return (
        f'<tr>{_picture(n, section.log.parent)}'
        f'<td class="num" data-sort="{number}">{number}{flag}</td>'
        f'<td data-sort="{first if isinstance(first, (int, float)) else ""}">{span}{when}</td>'
        f'<td data-sort="{conf if isinstance(conf, (int, float)) else ""}">{f"{float(conf):.0%}" if isinstance(conf, (int, float)) else ""}</td>'
        f"{pos}"
        f'<td data-sort="{n.get("best_frame", "")}">{_e(n.get("best_frame", ""))}</td></tr>'
    )


def _section(section: FileResults, out_dir: Path) -> str:
    bits = [f"{section.frames} frames" if section.frames is not None else "no summary (the run did not finish)"]
    if section.status and section.status != "completed":
        bits.append(f"status {section.status}" + (f": {section.error}" if section.error else ""))
    if section.video is not None:
        href = Path(os.path.relpath(section.video.resolve(), out_dir.resolve())).as_posix()
        bits.append(f'<a href="{_e(href)}">annotated video</a>')
    head = f'<h2>{_e(section.name)}</h2><div class="meta">{len(section.numbers)} numbers; {"; ".join(bits)}</div>'
    if not section.numbers:
        return head + '<p class="none">No house number was confirmed.</p>'
    rows = "\n".join(_row(n, section, out_dir) for n in section.numbers)
    return (
        head + '<table class="sortable"><thead><tr><th>evidence</th><th>number</th><th>time in video</th>'
        "<th>confidence</th><th>position</th><th>best frame</th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table>"
    )


def render_html(results: Results, out_dir: str | os.PathLike[str] = ".", *, title: str | None = None) -> str:
    """The page (a string) for ``results``; links are relative to ``out_dir``, where the page
    will be written."""
    out = Path(out_dir)
    title = title or f"House numbers: {results.source.name or results.source}"
    placed = sum(1 for f in results.files for n in f.numbers if n.get("lat") is not None)
    unknown = sum(1 for f in results.files for n in f.numbers if n.get("known") is False)
    cards = [("files", len(results.files) + len(results.failed)), ("frames", results.frames), ("numbers", results.numbers)]
    if placed:
        cards.append(("with a position", placed))
    if any(n.get("known") is not None for f in results.files for n in f.numbers):
        cards.append(("not in the known list", unknown))
    summary = "".join(f'<div class="card"><b>{v}</b>{_e(k)}</div>' for k, v in cards)
    summary += f'<div class="card{" bad" if results.failed else ""}"><b>{len(results.failed)}</b>failures</div>'
    failed = ""
    if results.failed:
        failed = '<ul class="failed">' + "".join(f"<li>{_e(f)}: {_e(r)}</li>" for f, r in results.failed) + "</ul>"
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = "\n".join(_section(f, out) for f in results.files)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_e(title)}</h1><div class="meta">from {_e(results.source)}, made {made} by recognizer report; '
        "click a column heading to sort</div>"
        f'<div class="summary">{summary}</div>{failed}\n{sections}\n'
        f"<script>{_JS}</script></body></html>\n"
    )


def write_report(results: Results, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write the page to ``path`` atomically (a temporary file renamed into place)."""
    out = Path(path)
    page = render_html(results, out.parent, title=title)
    replace_atomically(out, lambda fh: fh.write(page))
    return out


def evidence_files(results: Results) -> Iterable[Path]:
    """The pictures a report embeds (inputs too)."""
    for f in results.files:
        for n in f.numbers:
            if n.get("evidence"):
                yield f.log.parent / n["evidence"]
