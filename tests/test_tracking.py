"""The tracker and smoother on scripted sequences of readings."""
from __future__ import annotations

import pytest

from recognizer.tracking import TrackConfig, Tracker, box_iou
from recognizer.types import DigitBox, Reading

FPS = 30.0


def reading(text: str, x: float = 100.0, y: float = 100.0, conf: float = 0.9, w: float = 20.0, h: float = 30.0) -> Reading:
    """A reading of ``text`` whose digits sit side by side starting at (x, y)."""
    digits = tuple(
        DigitBox(box=(x + i * w, y, x + (i + 1) * w, y + h), digit=int(ch), det_score=conf ** 0.5, cls_score=conf ** 0.5)
        for i, ch in enumerate(text)
    )
    return Reading(text=text, confidence=conf, box=(x, y, x + w * len(text), y + h), digits=digits)


def run(tracker: Tracker, script: list[list[Reading]], start: int = 0):
    updates = []
    for i, readings in enumerate(script, start=start):
        updates.append(tracker.update(i, i / FPS, readings))
    return updates


def stable_texts(updates, track_id=None):
    out = []
    for u in updates:
        if u.assignments:
            tid = track_id if track_id is not None else u.assignments[0]
            state = u.track(tid)
            out.append(state.stable_text if state else None)
        else:
            out.append(None)
    return out


def all_events(updates):
    return [e for u in updates for e in u.confirmed]


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_flicker_is_suppressed_and_one_event() -> None:
    # "221" read steadily, with single misreads ("227", "22", "821") sprinkled in.
    script = [[reading("221")] for _ in range(30)]
    for i, wrong in ((6, "227"), (11, "22"), (17, "821"), (18, "227"), (25, "2211")):
        script[i] = [reading(wrong, conf=0.95)]
    tracker = Tracker()
    updates = run(tracker, script)
    ids = {u.assignments[0] for u in updates}
    assert len(ids) == 1, "one plate, one track"
    assert set(stable_texts(updates)) == {"221"}, "the stable text never flickers"
    events = all_events(updates)
    assert [e.text for e in events] == ["221"]
    assert events[0].first_frame == 0 and events[0].frame >= TrackConfig().confirm_min_hits - 1


def test_per_digit_vote_across_readings_of_same_length() -> None:
    # The most frequent whole text is "721", but position by position the votes say 2, 2, 1.
    texts = ["721", "221", "721", "281", "227", "721", "281", "227"]
    tracker = Tracker(TrackConfig(decay=1.0, switch_ratio=1.0))
    updates = run(tracker, [[reading(t)] for t in texts])
    assert stable_texts(updates)[-1] == "221"


def test_real_change_is_followed_within_a_few_frames() -> None:
    script = [[reading("221")] for _ in range(20)] + [[reading("845")] for _ in range(20)]
    tracker = Tracker()
    updates = run(tracker, script)
    texts = stable_texts(updates)
    assert texts[19] == "221"
    switch = texts.index("845")
    assert 20 < switch <= 27, f"switched at frame {switch}"
    assert all(t == "845" for t in texts[switch:]), "no flicker back after the switch"
    assert [e.text for e in all_events(updates)] == ["221", "845"]


def test_low_confidence_noise_does_not_win_against_confident_reads() -> None:
    script = []
    for i in range(30):
        script.append([reading("47", conf=0.9)] if i % 2 == 0 else [reading("41", conf=0.2)])
    updates = run(Tracker(), script)
    assert set(stable_texts(updates)) == {"47"}


def test_two_numbers_get_two_tracks_and_two_events() -> None:
    script = [[reading("12", x=50, y=50), reading("345", x=400, y=300)] for _ in range(10)]
    updates = run(Tracker(), script)
    last = updates[-1]
    assert len(set(last.assignments)) == 2
    assert sorted(e.text for e in all_events(updates)) == ["12", "345"]
    by_id = {t.track_id: t.stable_text for t in last.tracks}
    assert by_id[last.assignments[0]] == "12" and by_id[last.assignments[1]] == "345"


def test_moving_number_with_a_gap_keeps_its_track() -> None:
    # Moves 8 px per frame to the right; unseen for frames 10..14; then seen again further on.
    script = []
    for i in range(25):
        script.append([] if 10 <= i < 15 else [reading("56", x=50 + 8 * i)])
    updates = run(Tracker(), script)
    ids = {a for u in updates for a in u.assignments}
    assert len(ids) == 1
    assert len(all_events(updates)) == 1
    # While unseen the track stays alive (not seen, still listed).
    gap_state = updates[12].tracks[0]
    assert not gap_state.seen and gap_state.stable_text == "56"


def test_track_ends_after_the_gap_and_reports_range() -> None:
    cfg = TrackConfig(max_gap_frames=3, max_gap_seconds=0.05)
    script = [[reading("9")] for _ in range(6)] + [[] for _ in range(10)]
    updates = run(Tracker(cfg), script)
    ended = [e for u in updates for e in u.ended]
    assert len(ended) == 1
    assert (ended[0].first_frame, ended[0].last_frame, ended[0].text, ended[0].confirmed) == (0, 5, "9", True)
    assert updates[-1].tracks == ()


def test_lost_and_found_again_is_not_announced_twice() -> None:
    cfg = TrackConfig(max_gap_frames=2, max_gap_seconds=0.01, dedupe_seconds=5.0)
    script = [[reading("77")] for _ in range(8)] + [[] for _ in range(5)] + [[reading("77", x=300)] for _ in range(8)]
    updates = run(Tracker(cfg), script)
    ids = {a for u in updates for a in u.assignments}
    assert len(ids) == 2, "the plate was lost long enough to get a new track"
    assert [e.text for e in all_events(updates)] == ["77"]


def test_same_number_twice_at_once_is_announced_twice() -> None:
    script = [[reading("3", x=10), reading("3", x=500)] for _ in range(6)]
    updates = run(Tracker(), script)
    assert [e.text for e in all_events(updates)] == ["3", "3"]


def test_unconfident_track_is_never_confirmed() -> None:
    script = [[reading("5", conf=0.05)] for _ in range(10)]
    updates = run(Tracker(), script)
    assert all_events(updates) == []
    assert not updates[-1].tracks[0].confirmed


def test_reset_and_backwards_frames() -> None:
    tracker = Tracker()
    run(tracker, [[reading("1")] for _ in range(3)])
    with pytest.raises(ValueError, match="goes backwards"):
        tracker.update(0, 0.0, [reading("1")])
    tracker.reset()
    assert tracker.num_tracks == 0
    u = tracker.update(0, 0.0, [reading("1")])
    assert u.assignments[0] > 1, "ids keep increasing after reset"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"decay": 0.0}, "decay"),
        ({"decay": 1.5}, "decay"),
        ({"switch_ratio": 0.5}, "switch_ratio"),
        ({"iou_threshold": 2.0}, "iou_threshold"),
        ({"max_gap_frames": -1}, "max_gap"),
        ({"decay": 0.9}, None),
    ],
)
def test_config_validation(kwargs, message) -> None:
    if message is None:
        assert TrackConfig(**kwargs).decay == 0.9
    else:
        with pytest.raises(ValueError, match=message):
            TrackConfig(**kwargs)


def test_empty_and_malformed_readings() -> None:
    tracker = Tracker()
    u = tracker.update(0, 0.0, [])
    assert u.tracks == () and u.assignments == () and u.confirmed == ()
    # A reading with an empty text is tracked but casts no vote.
    u = tracker.update(1, 0.03, [Reading(text="", confidence=0.5, box=(0, 0, 10, 10), digits=())])
    assert u.tracks[0].stable_text == ""


def test_hysteresis_holds_the_text_when_evidence_is_split() -> None:
    # Equal evidence for two readings, alternating: the newest vote always leads by a little,
    # which would flip the shown text every frame without hysteresis.
    script = [[reading("47" if i % 2 == 0 else "41")] for i in range(30)]
    texts = stable_texts(run(Tracker(), script))
    changes = sum(1 for a, b in zip(texts, texts[1:]) if a != b)
    assert changes == 0, texts


def test_finish_ends_every_live_track() -> None:
    tracker = Tracker()
    run(tracker, [[reading("12", x=10), reading("3", x=400)] for _ in range(4)])
    ended = tracker.finish()
    assert sorted((e.text, e.first_frame, e.last_frame, e.confirmed) for e in ended) == [("12", 0, 3, True), ("3", 0, 3, True)]
    assert tracker.num_tracks == 0 and tracker.finish() == ()


@pytest.mark.parametrize("frame_size, expected", [((640, 480), ["1350"]), (None, ["350", "1350"])])
def test_a_plate_entering_the_view_is_confirmed_once_whole(frame_size, expected) -> None:
    # A plate slides in from the left edge: "350" while its first digit is still out of view.
    script = [[reading("350", x=0.0)] for _ in range(10)] + [[reading("1350", x=4.0 + 3 * i)] for i in range(10)]
    tracker = Tracker()
    updates = [tracker.update(i, i / FPS, r, frame_size) for i, r in enumerate(script)]
    assert [e.text for e in all_events(updates)] == expected
    assert stable_texts(updates)[-1] == "1350"
    assert len({a for u in updates for a in u.assignments}) == 1


def test_part_of_a_confirmed_number_is_not_announced_again() -> None:
    # "47" confirmed, then the plate leaves the view and only "4" is read, for long enough to
    # become the stable text: it is shown, but not announced as a new house number.
    script = [[reading("47")] for _ in range(10)] + [[reading("4")] for _ in range(15)]
    updates = run(Tracker(), script)
    assert stable_texts(updates)[-1] == "4"
    assert [e.text for e in all_events(updates)] == ["47"]


def test_a_confirmed_number_losing_an_inner_digit_is_not_a_second_house() -> None:
    # "760" confirmed, then the middle digit is lost to blur for a while: "70" is part of the
    # same plate (a subsequence of what was announced), not a new number.
    script = [[reading("760")] for _ in range(10)] + [[reading("70")] for _ in range(25)]
    updates = run(Tracker(), script)
    assert "70" in stable_texts(updates)
    assert [e.text for e in all_events(updates)] == ["760"]


def test_a_passing_misread_of_a_confirmed_number_is_not_announced() -> None:
    # "764" is confirmed; a misread "164" then wins the vote narrowly, never clearly.
    script = [[reading("764")] for _ in range(8)]
    script += [[reading("164" if i % 8 < 5 else "764")] for i in range(40)]
    updates = run(Tracker(), script)
    assert [e.text for e in all_events(updates)] == ["764"]
    # Without the rule (a share of 0 is enough) the misread is announced as a second number.
    loose = run(Tracker(TrackConfig(reannounce_share=0.0)), script)
    assert [e.text for e in all_events(loose)] == ["764", "164"]
