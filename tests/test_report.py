"""``recognizer report``: a run's log or a batch folder as one self-contained HTML page, checked
as text and in a real headless browser (Debian's Chromium; the test says so and skips where
there is none).

The browser test keeps its screenshot: under ``$RECOGNIZER_TEST_ARTEFACTS`` when set, else in
the test's temporary folder (the path is printed). ``RECOGNIZER_UPDATE_DOCS=1`` also copies it
to ``docs/report.png``, the README's picture.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from mapping_helpers import START, fix_times, write_clip, write_gpx
from shipped import needs_models, shipped_weights

from recognizer.cli import main
from recognizer.models.weights import resolve_weights
from recognizer.output.records import CONFIRMED, read_log
from recognizer.output.results import numbers_from_records

REPO = Path(__file__).resolve().parents[1]
KNOWN = "# the street in the clip\n1-99 odd\n2-98 even\n201-299 odd\n1350\n"




def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real run with every output: the annotated video, evidence, positions and --expect."""
    if not shipped_weights():
        pytest.skip("shipped weights (weights/*.pt) not present")
    root = tmp_path_factory.mktemp("report")
    clip = write_clip(root / "dashcam.mp4", 75)
    gpx = write_gpx(root / "drive.gpx", fix_times(START.timestamp() - 3, START.timestamp() + 8))
    known = root / "street.txt"
    known.write_text(KNOWN, encoding="utf-8")
    out = root / "results"
    out.mkdir()
    # Relative paths, as a user types them (the report shows the source's name as given).
    args = ["run", clip.name, "--save", "results/annotated.mp4", "--log", "results/run.jsonl", "--evidence", "results/evidence",
            "--gpx", gpx.name, "--expect", known.name, "--geojson", "results/numbers.geojson", "--device", "cpu", "--no-progress"]
    here = os.getcwd()
    os.chdir(root)
    try:
        assert main(args) == 0
    finally:
        os.chdir(here)
    return {"root": root, "out": out, "log": out / "run.jsonl", "video": out / "annotated.mp4"}


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr>(<td.*?)</tr>", page, flags=re.S)  # body rows (the heading row holds <th>)


@needs_models
@pytest.mark.timeout(180)
def test_report_of_a_run(run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "report.html"
    assert main(["report", str(run["log"]), "-o", str(report)]) == 0
    assert "house numbers from 1 file(s), 0 failure(s), written to" in capsys.readouterr().out
    page = report.read_text(encoding="utf-8")
    numbers = numbers_from_records(read_log(run["log"]))
    confirmed = [r for r in read_log(run["log"]) if r["type"] == CONFIRMED]
    assert len(numbers) == len(confirmed) >= 2
    rows = _rows(page)
    assert len(rows) == len(numbers)
    # Summary first: files, frames, numbers, failures.
    for value, label in ((1, "files"), (75, "frames"), (len(numbers), "numbers"), (0, "failures")):
        assert f"<b>{value}</b>{label}" in page
    for row, n in zip(rows, numbers):
        assert f'data-sort="{n["number"]}">{n["number"]}' in row
        # The evidence picture, embedded: the same bytes as the file the log names.
        uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', row)
        assert uri is not None
        data = base64.b64decode(uri.group(1))
        assert data == (run["log"].parent / n["evidence"]).read_bytes()
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
        # A link into the annotated video at the number's time (relative to the page).
        link = re.search(r'href="([^"#]+)#t=([\d.]+)"', row)
        assert link is not None and (tmp_path / link.group(1)).resolve() == run["video"].resolve()
        assert n["first_time"] - 0.05 <= float(link.group(2)) <= n["best_time"] + 0.05
        assert f"{n['lat']:.6f}, {n['lon']:.6f}" in row and f"{n['confidence']:.0%}" in row
        if n.get("known") is False and n.get("expected"):
            assert f"expected: {n['expected']} (read {n['number']})" in row
        elif n.get("known") is False:
            assert "not in the known numbers" in row
        else:
            assert "known" in row
    # Self-contained: nothing loaded from elsewhere (links to the map and the video only).
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(https?:)?//", page)
    assert "<script>" in page and "sortable" in page
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed


@needs_models
@pytest.mark.timeout(120)
def test_report_refuses_to_overwrite_an_input(run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = run["log"].read_bytes()
    picture = next((run["out"] / "evidence").iterdir())
    for target in (run["log"], picture, run["video"]):
        assert main(["report", str(run["log"]), "-o", str(target)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "refusing to overwrite it" in err[0]
    assert run["log"].read_bytes() == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found: expected a log"),
        (lambda p: p.write_text('{"type": "frame"}\n'), "is not a recognizer log"),
        (lambda p: p.mkdir(), "holds no complete recognizer logs"),
    ],
)
def test_report_bad_input(tmp_path: Path, make, message: str, capsys: pytest.CaptureFixture) -> None:
    results = tmp_path / "results"
    make(results)
    assert main(["report", str(results), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "r.html").exists()


@needs_models
@pytest.mark.timeout(180)
def test_report_of_a_batch_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A batch output folder (made by ``run_job`` as a worker does, with the summary's failure)."""
    from recognizer.batch.jobs import Job, run_job
    from recognizer.batch.results import BatchReport, write_json, write_numbers_csv
    from recognizer.models.engine import Recognizer
    from recognizer.output.sinks.numbers import NumbersPlan

    rec = Recognizer.from_checkpoints(resolve_weights(None, "detector"), resolve_weights(None, "classifier"), device="cpu", tta=False)
    out = tmp_path / "out"
    out.mkdir()
    clip = write_clip(tmp_path / "drive1.mp4", 45)
    bad = tmp_path / "drive2.mp4"
    bad.write_bytes(b"\x00" * 2048)
    jobs = [Job(str(clip), "drive1"), Job(str(bad), "drive2")]
    results = [run_job(job, out, rec, save_video=True, numbers=NumbersPlan()) for job in jobs]
    assert [r.status for r in results] == ["completed", "failed"]
    report = BatchReport(files=2, results=results, out=str(out))
    report.numbers = write_numbers_csv(out, jobs)
    write_json(out / "summary.json", report.to_dict())
    page_path = out / "report.html"
    assert main(["report", str(out), "-o", str(page_path)]) == 0
    page = page_path.read_text(encoding="utf-8")
    assert "<b>2</b>files" in page and "<b>1</b>failures" in page and "<b>45</b>frames" in page
    assert html.escape(str(bad)) in page and "cannot open video file" in page
    assert len(_rows(page)) == report.numbers >= 1
    assert page.count('href="drive1.mp4#t=') == report.numbers  # the annotated video, next to the page
    assert page.count("data:image/jpeg;base64,") == report.numbers


@needs_models
@pytest.mark.timeout(180)
def test_report_renders_in_a_browser(run: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here (install Debian's chromium; .ci/apt-packages.txt lists it): the report was not opened in a browser")
    report = run["out"] / "report.html"
    monkeypatch.chdir(run["root"])
    assert main(["report", "results/run.jsonl", "-o", "results/report.html", "--title", "House numbers: dashcam.mp4"]) == 0
    # A copy with a checker appended: once loaded, it counts the decoded images and table rows,
    # sorts by number with a click on its heading, and writes what it found into the page.
    checker = """<script>window.addEventListener('load', function () {
      var imgs = Array.prototype.slice.call(document.images);
      var rows = document.querySelectorAll('table.sortable tbody tr').length;
      var heads = document.querySelectorAll('table.sortable th');
      heads[1].click();
      var order = Array.prototype.map.call(document.querySelectorAll('td.num'), function (td) { return td.getAttribute('data-sort'); });
      heads[1].click();
      var reverse = Array.prototype.map.call(document.querySelectorAll('td.num'), function (td) { return td.getAttribute('data-sort'); });
      var out = document.createElement('pre'); out.id = 'checks';
      out.textContent = JSON.stringify({images: imgs.length, decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
                                        rows: rows, order: order, reverse: reverse, title: document.title});
      document.body.appendChild(out);
    });</script></body>"""
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", checker), encoding="utf-8")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90)
    found = re.search(r'<pre id="checks">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found is not None, dom.stderr[-2000:]
    checks = json.loads(html.unescape(found.group(1)))
    numbers = numbers_from_records(read_log(run["log"]))
    assert checks["rows"] == len(numbers) and checks["images"] == len(numbers) == checks["decoded"]
    assert checks["title"] == "House numbers: dashcam.mp4"
    assert checks["order"] == sorted((n["number"] for n in numbers), key=int)  # house numbers sort as numbers
    assert checks["reverse"] == checks["order"][::-1]
    # The screenshot: kept as the test's artefact (and, asked for, as the README's picture).
    artefacts = Path(os.environ.get("RECOGNIZER_TEST_ARTEFACTS", tmp_path))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1100,820", report.as_uri()], capture_output=True, timeout=90)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (820, 1100), f"no screenshot at {shot}"
    assert float(image.std()) > 20  # the page drew something (pictures, text), not a blank window
    print(f"report screenshot: {shot}")
    if os.environ.get("RECOGNIZER_UPDATE_DOCS") == "1":  # small: the page's height, 128 colours
        from PIL import Image

        rows = np.flatnonzero(image.std(axis=(1, 2)) > 0)
        page = image[: min(int(rows[-1]) + 24, image.shape[0])]
        (REPO / "docs").mkdir(exist_ok=True)
        Image.fromarray(page[:, :, ::-1]).quantize(128).save(REPO / "docs" / "report.png", optimize=True)
