"""recognizer.live.run.run: the one way to start a run, for one source or several. Setup
failures come back in the summary (nothing half open), the log's first line is one run record
with the pipeline's fields, and every source is closed on every path."""
from __future__ import annotations

from pathlib import Path

import pytest

from recognizer.io.sources import SourceError, open_source
from recognizer.live.pipeline import PipelineConfig
from recognizer.live.run import run
from recognizer.output.records import read_log
from recognizer.output.sinks import SinkError
from recognizer.synth.footage import ClipSpec, make_bench_clip
from recognizer.types import DigitBox, Reading

SPEC = ClipSpec(width=160, height=120, fps=10.0, numbers=("42",))


class FortyTwo:
    def recognize(self, images):  # noqa: ANN001, ANN201
        # in the middle of the 160x120 frame: a reading near a border may be a cut number and weighs less
        d = (DigitBox((60.0, 40.0, 70.0, 60.0), 4, 0.9, 0.9), DigitBox((70.0, 40.0, 80.0, 60.0), 2, 0.9, 0.9))
        return [[Reading("42", 0.81, (60.0, 40.0, 80.0, 60.0), d)] for _ in images]


class Tracked:
    """Wraps a source and records whether it was opened and closed."""

    def __init__(self, source) -> None:  # noqa: ANN001
        self.inner, self.opened, self.closed = source, False, False

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self.inner, name)

    def open(self) -> None:
        self.inner.open()
        self.opened = True

    def read(self, should_stop=None):  # noqa: ANN001, ANN201
        return self.inner.read(should_stop)

    def close(self) -> None:
        self.inner.close()
        self.closed = True


def broken(path: Path) -> Path:
    """A file named like a video that holds none: it exists, and it cannot be opened."""
    path.write_bytes(b"not a video" * 100)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_bench_clip(tmp_path / "clip.mp4", 30, SPEC)


def test_one_source_to_completion_with_one_run_record(tmp_path: Path, clip: Path) -> None:
    src = Tracked(open_source(str(clip)))
    started = []
    summary = run(src, FortyTwo(), config=PipelineConfig(batch_size=4, workers=2), log=tmp_path / "log.jsonl",
                  record={"note": "x"}, on_start=lambda p: started.append(len(p.sources)))
    assert summary.status == "completed" and summary.started and summary.frames == 30 and summary.confirmed == ["42"]
    assert started == [1] and src.opened and src.closed
    records = read_log(tmp_path / "log.jsonl")
    first = records[0]
    assert first["type"] == "run" and first["source"]["kind"] == "file"
    assert (first["live"], first["batch"], first["workers"], first["reader"], first["note"]) == (False, 4, 2, "digits", "x")
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "completed"
    assert any(line.startswith("log:") for line in summary.outputs)


def test_a_source_that_cannot_be_opened_is_a_failed_summary_that_never_started(tmp_path: Path) -> None:
    missing = Tracked(open_source(str(broken(tmp_path / "nowhere.mp4"))))
    summary = run(missing, FortyTwo(), log=tmp_path / "log.jsonl")
    assert (summary.status, summary.started) == ("failed", False)
    assert isinstance(summary.exception, SourceError) and "nowhere.mp4" in summary.error
    assert missing.closed
    assert not (tmp_path / "log.jsonl").exists(), "no output is created before the source opens"


def test_an_output_that_cannot_be_created_closes_the_source_and_the_outputs_made(tmp_path: Path, clip: Path) -> None:
    src = Tracked(open_source(str(clip)))
    summary = run(src, FortyTwo(), dump=tmp_path / "frames", log=tmp_path / "no-such-folder" / "log.jsonl")
    assert (summary.status, summary.started) == ("failed", False)
    assert isinstance(summary.exception, SinkError) and "no-such-folder" in summary.error
    assert src.opened and src.closed


def test_ctrl_c_during_the_setup_is_an_interrupted_summary_with_the_log_finalized(tmp_path: Path, clip: Path) -> None:
    src = Tracked(open_source(str(clip)))

    def interrupt(_pipeline) -> None:  # noqa: ANN001
        raise KeyboardInterrupt

    summary = run(src, FortyTwo(), log=tmp_path / "log.jsonl", on_start=interrupt)
    assert (summary.status, summary.started, summary.exit_code) == ("interrupted", False, 130)
    assert src.closed
    assert [r["type"] for r in read_log(tmp_path / "log.jsonl")] == ["run"], "the run record stays, whole"


def test_several_sources_one_unopenable_runs_the_others_and_fails_the_run(tmp_path: Path, clip: Path) -> None:
    other = make_bench_clip(tmp_path / "other.mp4", 8, SPEC)
    ended = []
    summary = run([open_source(str(clip)), open_source(str(broken(tmp_path / "gone.mp4"))), open_source(str(other))], FortyTwo(),
                  names=["a", "gone", "b"], config=PipelineConfig(batch_size=4), log=tmp_path / "log.jsonl",
                  on_source_end=lambda s: ended.append((s.name, s.status)))
    assert summary.started and summary.status == "failed" and "source 'gone'" in summary.error
    assert [(s.name, s.status, s.frames) for s in summary.sources] == [("a", "completed", 30), ("gone", "failed", 0), ("b", "completed", 8)]
    assert sorted(ended) == [("a", "completed"), ("b", "completed"), ("gone", "failed")]
    first = read_log(tmp_path / "log.jsonl")[0]
    assert sorted(first["sources"]) == ["a", "b", "gone"] and "source" not in first


def test_every_source_unopenable_is_a_setup_failure(tmp_path: Path) -> None:
    summary = run([open_source(str(broken(tmp_path / "x.mp4"))), open_source(str(broken(tmp_path / "y.mp4")))], FortyTwo(),
                  names=["x", "y"])
    assert (summary.status, summary.started) == ("failed", False) and "x.mp4" in summary.error
