"""``--expect FILE``: parsing the known numbers, and what a confirmed read not in them says."""
from __future__ import annotations

from pathlib import Path

import pytest

from recognizer.cli import main
from recognizer.output.expect import MIN_SHARE, ExpectError, KnownNumbers, neighbours
from recognizer.tracking import Tracker
from recognizer.types import DigitBox, Reading


def _known(tmp_path: Path, text: str) -> KnownNumbers:
    path = tmp_path / "known.txt"
    path.write_text(text, encoding="utf-8")
    return KnownNumbers.parse(path)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("1-99 odd\n", ["1", "7", "99"], ["2", "98", "101", "0"]),
        ("2-120 even  # the even side\n", ["2", "120", "64"], ["1", "121", "122", "3"]),
        ("10-20\n", ["10", "15", "20"], ["9", "21"]),
        ("# a comment\n\n7, 9 ,250\n 12 - 14 ALL \n", ["7", "9", "250", "12", "13", "14"], ["8", "15"]),
        ("5-9 even\n", ["6", "8"], ["5", "7", "9"]),
        ("12\n", ["12"], ["012", "12a", "", "1"]),
    ],
)
def test_known_numbers_parse(tmp_path: Path, text: str, inside: list[str], outside: list[str]) -> None:
    known = _known(tmp_path, text)
    assert all(n in known for n in inside), [n for n in inside if n not in known]
    assert not any(n in known for n in outside), [n for n in outside if n in known]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("1-99 odd\nabc\n", 2, "expected a number, a range such as 10-20"),
        ("1-99 odd\n\n# x\n5 - \n", 4, "expected a number"),
        ("30-20\n", 1, "runs backwards; write 20-30"),
        ("1-99 odds\n", 1, "expected a number"),
        ("4-4 odd\n", 1, "holds no odd number"),
        ("1-9 even, 12b\n", 1, "'1-9 even, 12b'"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(ExpectError) as err:
        _known(tmp_path, text)
    assert f"known.txt' line {line}: " in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ExpectError, match="no numbers in it"):
        _known(tmp_path, "# nothing\n\n")
    with pytest.raises(ExpectError, match="not found"):
        KnownNumbers.parse(tmp_path / "missing.txt")


def test_len_counts_numbers_not_lines(tmp_path: Path) -> None:
    assert len(_known(tmp_path, "1-99 odd\n2-120 even\n10-20\n")) == 50 + 60 + 11


def test_neighbours_are_one_edit_away() -> None:
    got = {n for n, _ in neighbours("128")}
    assert {"123", "028", "12", "18", "28", "1280", "1128", "9128"} <= got
    assert "128" not in got and "132" not in got and "1" not in got
    assert {n for n, kind in neighbours("7") if kind == 1} == set()  # no empty number


def _reading(text: str, conf: float, x: float = 100.0) -> Reading:
    digits = tuple(DigitBox((x + 20 * i, 50.0, x + 20 * i + 18, 90.0), int(ch), conf, 1.0) for i, ch in enumerate(text))
    return Reading(text=text, confidence=conf, box=(x, 50.0, x + 20 * len(text), 90.0), digits=digits)


def _votes(reads: list[tuple[str, float]]):
    """The tracker's last confirmed event after the reads, one per frame, of one plate."""
    tracker = Tracker()
    events = []
    for i, (text, conf) in enumerate(reads):
        events += tracker.update(i, i / 15, [_reading(text, conf)]).confirmed
    return events[-1]


def test_a_supported_neighbour_is_expected(tmp_path: Path) -> None:
    known = _known(tmp_path, "121-125 odd\n")
    # "128" wins the vote, but "123" was read too (its last digit), with real weight.
    event = _votes([("128", 0.9), ("123", 0.8), ("128", 0.9), ("123", 0.7), ("128", 0.9)])
    assert event.text == "128" and event.text not in known
    share = event.tally.share("123")
    assert share >= MIN_SHARE
    assert known.expected("128", event.tally) == ("123", pytest.approx(share))


def test_an_unsupported_neighbour_is_not_named(tmp_path: Path) -> None:
    known = _known(tmp_path, "123\n")
    event = _votes([("128", 0.9)] * 5)  # never a 3 in the last place: no reason to suggest 123
    assert event.tally.share("123") == 0.0
    assert known.expected("128", event.tally) is None
    assert known.expected("123", event.tally) is None  # a known read needs nothing


def test_a_lost_digit_is_expected_back(tmp_path: Path) -> None:
    known = _known(tmp_path, "1350\n")
    event = _votes([("350", 0.9), ("1350", 0.8), ("350", 0.9), ("1350", 0.6), ("350", 0.9), ("350", 0.9)])
    assert event.text == "350"
    guess = known.expected("350", event.tally)
    assert guess is not None and guess[0] == "1350"


def test_run_refuses_a_bad_expect_file_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from recognizer.synth.footage import ClipSpec, make_bench_clip

    clip = make_bench_clip(tmp_path / "clip.mp4", 5, ClipSpec(width=160, height=120))
    bad = tmp_path / "known.txt"
    bad.write_text("1-99 odd\n2-120 even\nseven\n", encoding="utf-8")
    log, evidence = tmp_path / "run.jsonl", tmp_path / "ev"
    rc = main(["run", str(clip), "--log", str(log), "--evidence", str(evidence), "--expect", str(bad), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and f"'{bad}' line 3: 'seven'" in err[0]
    assert not log.exists() and not evidence.exists()
