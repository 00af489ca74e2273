"""Tracking and smoothing of house numbers across video frames (pure logic, no I/O).

A :class:`Tracker` associates the readings of consecutive frames (box overlap, or centre
distance when a number moves fast or a frame was dropped), keeps a confidence-weighted vote on
each track's text and shows a *stable* text that only changes when the evidence does:

* Votes are kept per text length and, for each length, per digit position, so ``"221"`` read
  twice and ``"227"`` once still votes ``2``, ``2`` and mostly ``1``.
* Old evidence fades by ``decay`` per observation, so a real change (a new plate under the same
  box) wins after a few frames, while a single misread frame never does.
* The stable text switches only when the candidate's support exceeds the current text's support
  by ``switch_ratio`` (hysteresis), which suppresses flicker between close votes.
* A track whose stable text has enough support and observations emits one ``confirmed`` event
  per house number; the same text seen again soon after (the track was lost and found again)
  is not announced twice.

The tracker is owned by one thread; it holds no locks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from recognizer.types import Box, Reading, as_box

__all__ = [
    "BestView",
    "ConfirmedEvent",
    "TrackConfig",
    "TrackEnded",
    "TrackState",
    "TrackUpdate",
    "Tracker",
    "VoteTally",
    "box_iou",
]


@dataclass(frozen=True)
class TrackConfig:
    """Tuning of association, voting and confirmation.

    Attributes:
        iou_threshold: minimum IoU between a track's predicted box and a reading to match.
        max_center_distance: when IoU is too small, a reading still matches if its centre lies
            within this many track-box diagonals of the predicted centre.
        max_gap_frames: a track unseen for more than this many frame indices is retired.
        max_gap_seconds: ... or for more than this many seconds (whichever is longer, so that
            live sources that drop frames keep their tracks).
        decay: factor applied to a track's votes at each new observation, in (0, 1].
        switch_ratio: a candidate text replaces the stable text only when its support is at
            least this many times the stable text's support.
        confirm_min_hits: observations needed before a track can be confirmed.
        confirm_min_support: decayed vote weight (sum of confidences) the stable text needs.
        confirm_min_share: share of the track's total vote weight the stable text needs.
        reannounce_share: a track that already announced a number announces another reading
            of the same length only with at least this share of its vote (a misread plate is
            not a second house); one contained in an earlier announcement is never announced.
        dedupe_seconds: a text confirmed again within this many seconds after an earlier
            confirmation of the same text (by a track that has since ended) is not announced.
        velocity_smoothing: weight of the newest motion in the velocity estimate, in [0, 1].
        edge_weight: vote weight factor of a reading that may be cut by the frame border (when
            ``update`` gets the frame size): a plate half out of view reads as a shorter
            number; with 0.2 such reads alone never reach ``confirm_min_support`` at the
            default decay, and the full number takes over as soon as it is in view.
        edge_margin: pixels from any border that count as touching it.
        edge_digits: a reading this many digit pitches (its box width / its length, at least
            0.8 x its height) or less from the left or right border may have lost a digit
            past it.
        text_weight: vote weight of one read of the text reader (:meth:`Tracker.text_vote`),
            times its score; a frame of the digit models weighs at most 1.
        letters_block: a track on which the text reader has read letters (not a number) with
            at least this much summed score is never confirmed.
    """

    iou_threshold: float = 0.2
    max_center_distance: float = 1.0
    max_gap_frames: int = 15
    max_gap_seconds: float = 1.0
    decay: float = 0.8
    switch_ratio: float = 1.5
    confirm_min_hits: int = 3
    confirm_min_support: float = 1.0
    confirm_min_share: float = 0.5
    dedupe_seconds: float = 5.0
    reannounce_share: float = 0.65
    velocity_smoothing: float = 0.5
    edge_weight: float = 0.2
    edge_margin: float = 2.0
    edge_digits: float = 1.0
    text_weight: float = 2.0
    letters_block: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay={self.decay} must be in (0, 1]")
        if self.switch_ratio < 1.0:
            raise ValueError(f"switch_ratio={self.switch_ratio} must be >= 1")
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold={self.iou_threshold} must be in [0, 1]")
        if self.max_gap_frames < 0 or self.max_gap_seconds < 0:
            raise ValueError("max_gap_frames and max_gap_seconds must be >= 0")
        if not 0.0 <= self.edge_weight <= 1.0:
            raise ValueError(f"edge_weight={self.edge_weight} must be in [0, 1]")
        if not 0.0 <= self.reannounce_share <= 1.0:
            raise ValueError(f"reannounce_share={self.reannounce_share} must be in [0, 1]")
        if not 0.0 <= self.velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing={self.velocity_smoothing} must be in [0, 1]")


@dataclass(frozen=True)
class BestView:
    """Where a track was seen best: its most confident reading of its stable text so far (the
    frame to take its picture from, see :mod:`recognizer.output.evidence`).

    Attributes:
        frame, time: the frame's index and timestamp (seconds).
        box: the reading's xyxy box in the frame's pixels.
        score: the reading's confidence times its vote scale (a reading cut by the frame's
            border scores ``edge_weight`` of its confidence, so a full view wins).
        text: what that reading read.
    """

    frame: int
    time: float
    box: Box
    score: float
    text: str


@dataclass(frozen=True, eq=False)
class VoteTally:
    """A copy of a track's vote when an event was emitted, to ask how much weight a text
    other than the announced one holds (``--expect``: is a known number one digit away
    supported by the votes?).

    Attributes:
        digits: text length -> (length, 10) decayed vote weight per position and digit.
        total: the track's total decayed vote weight (all lengths).
    """

    digits: dict[int, np.ndarray]
    total: float

    def share(self, text: str) -> float:
        """Share of the vote behind ``text`` (its weakest position's weight over the total),
        in [0, 1]; 0 for a length never read."""
        votes = self.digits.get(len(text))
        if not text or not text.isdigit() or votes is None or self.total <= 0:
            return 0.0
        return float(min(votes[i, int(ch)] for i, ch in enumerate(text))) / self.total


@dataclass(frozen=True)
class TrackState:
    """A snapshot of one live track after an update.

    Attributes:
        track_id: positive integer, unique within a tracker's life (also across ``reset``).
        box: last observed xyxy box in pixels.
        stable_text: the smoothed house number ("" before the first reading).
        support: share of the track's vote weight behind ``stable_text``, in [0, 1].
        hits: number of frames with a reading of this track.
        first_frame, last_frame: frame indices of the first and the latest reading.
        first_time, last_time: timestamps (seconds) of the same frames.
        seen: True when this frame had a reading of the track.
        confirmed: True once the track's current stable text was confirmed.
        best: the track's best view so far (None before a reading of its stable text).
    """

    track_id: int
    box: Box
    stable_text: str
    support: float
    hits: int
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    seen: bool
    confirmed: bool
    best: BestView | None = None


@dataclass(frozen=True)
class ConfirmedEvent:
    """Emitted once per house number when a track's stable text is confirmed.

    Attributes:
        track_id: the track that read it.
        text: the confirmed house number.
        confidence: share of the track's vote weight behind ``text``, in [0, 1].
        frame: frame index at which it was confirmed.
        timestamp: time (seconds) of that frame.
        first_frame, last_frame: frame range over which the track read it so far.
        first_time, last_time: the same range in seconds.
        best: the track's best view so far.
        tally: the track's vote at this frame.
    """

    track_id: int
    text: str
    confidence: float
    frame: int
    timestamp: float
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    best: BestView | None = None
    tally: VoteTally | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TrackEnded:
    """Emitted when a track is retired (unseen too long): its final text and frame range, its
    best view and its vote."""

    track_id: int
    text: str
    confirmed: bool
    hits: int
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    best: BestView | None = None
    tally: VoteTally | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TrackUpdate:
    """What :meth:`Tracker.update` returns for one frame.

    Attributes:
        frame_index, timestamp: the frame this update belongs to.
        tracks: every live track (seen in this frame or within the gap allowance).
        assignments: for each reading of the frame, in order, the id of its track.
        confirmed: house numbers confirmed at this frame.
        ended: tracks retired at this frame.
    """

    frame_index: int
    timestamp: float
    tracks: tuple[TrackState, ...] = ()
    assignments: tuple[int, ...] = ()
    confirmed: tuple[ConfirmedEvent, ...] = ()
    ended: tuple[TrackEnded, ...] = ()

    def track(self, track_id: int) -> TrackState | None:
        """The state of track ``track_id`` in this update, or None."""
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        return None


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two xyxy boxes (0 when either is empty)."""
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _is_subsequence(short: str, long: str) -> bool:
    """Whether ``short``'s characters appear in ``long`` in order ("70" in "760")."""
    it = iter(long)
    return len(short) < len(long) and all(ch in it for ch in short)


def _near_border(reading: Reading, b: Box, frame_size: tuple[int, int], margin: float, digits: float) -> bool:
    """True when the reading may be cut by the frame: within ``margin`` px of the top or
    bottom, or within ``margin`` px plus ``digits`` digit pitches of the left or right side
    (a digit hidden past the border leaves the next one at most one pitch from it)."""
    w, h = frame_size
    # Digit pitch from the box width, but at least 0.8 x its height: a lone "1" is narrow.
    pitch = max((b[2] - b[0]) / max(len(reading.text), 1), 0.8 * (b[3] - b[1]))
    side = margin + digits * pitch
    return b[0] <= side or b[2] >= w - 1 - side or b[1] <= margin or b[3] >= h - 1 - margin


def _center(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)


def _reading_weights(reading: Reading) -> tuple[float, list[float]]:
    """Vote weight of a reading as a whole and of each of its digits (all in [0, 1])."""
    whole = min(max(float(reading.confidence), 0.0), 1.0)
    if len(reading.digits) == len(reading.text):
        per_digit = [min(max(d.det_score * d.cls_score, 0.0), 1.0) for d in reading.digits]
    else:
        per_digit = [whole] * len(reading.text)
    return whole, per_digit


@dataclass
class _Track:
    """Mutable state of one track (private to the tracker)."""

    track_id: int
    box: Box
    first_frame: int
    first_time: float
    last_frame: int
    last_time: float
    velocity: tuple[float, float] = (0.0, 0.0)  # centre motion, pixels per frame index
    hits: int = 0
    length_votes: dict[int, float] = field(default_factory=dict)
    digit_votes: dict[int, np.ndarray] = field(default_factory=dict)  # length -> (L, 10)
    stable: str = ""
    confirmed_texts: set[str] = field(default_factory=set)
    best: BestView | None = None  # the most confident reading of the stable text
    letters: float = 0.0  # summed score of the text reader's reads of letters here
    text_reads: int = 0  # reads of the text reader applied to this track

    def predicted_box(self, frame_index: int) -> Box:
        steps = max(frame_index - self.last_frame, 0)
        dx, dy = self.velocity[0] * steps, self.velocity[1] * steps
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    def total_weight(self) -> float:
        return float(sum(self.length_votes.values()))

    def support(self, text: str) -> float:
        """Decayed vote weight behind ``text``: its weakest digit position's weight."""
        if not text:
            return 0.0
        votes = self.digit_votes.get(len(text))
        if votes is None:
            return 0.0
        return float(min(votes[i, int(ch)] for i, ch in enumerate(text)))

    def candidate(self) -> str:
        """Best text by the votes: the heaviest length, then the heaviest digit per position."""
        if not self.length_votes:
            return ""
        length = max(self.length_votes, key=lambda k: (self.length_votes[k], k))
        votes = self.digit_votes[length]
        return "".join(str(int(np.argmax(votes[i]))) for i in range(length))

    def note_view(self, reading: Reading, box: Box, frame_index: int, timestamp: float, scale: float) -> None:
        """Keep ``reading`` as the best view when it reads the stable text more confidently
        than the one kept (or the kept one read an earlier stable text)."""
        if not reading.text or reading.text != self.stable:
            return
        score = float(reading.confidence) * scale
        if self.best is None or self.best.text != self.stable or score > self.best.score:
            self.best = BestView(frame_index, timestamp, box, score, reading.text)

    def tally(self) -> VoteTally:
        return VoteTally({n: v.copy() for n, v in self.digit_votes.items()}, self.total_weight())

    def vote(self, reading: Reading, decay: float, scale: float = 1.0) -> None:
        for k in self.length_votes:
            self.length_votes[k] *= decay
        for arr in self.digit_votes.values():
            arr *= decay
        text = reading.text
        if not text or not text.isdigit():
            return
        whole, per_digit = _reading_weights(reading)
        whole *= scale
        per_digit = [w * scale for w in per_digit]
        n = len(text)
        self.length_votes[n] = self.length_votes.get(n, 0.0) + whole
        arr = self.digit_votes.setdefault(n, np.zeros((n, 10), dtype=np.float64))
        for i, ch in enumerate(text):
            arr[i, int(ch)] += per_digit[i]


def _ended(track: _Track) -> TrackEnded:
    return TrackEnded(
        track_id=track.track_id,
        text=track.stable,
        confirmed=track.stable in track.confirmed_texts,
        hits=track.hits,
        first_frame=track.first_frame,
        last_frame=track.last_frame,
        first_time=track.first_time,
        last_time=track.last_time,
        best=track.best,
        tally=track.tally(),
    )


class Tracker:
    """Associates readings across frames and smooths their text (see the module docstring).

    Usage::

        tracker = Tracker()
        for frame, readings in results:
            update = tracker.update(frame.index, frame.timestamp, readings)
            for event in update.confirmed: ...
    """

    def __init__(self, config: TrackConfig | None = None) -> None:
        self.config = config or TrackConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._recent: dict[str, float] = {}  # text -> time of its last confirmation
        self._last_frame: int | None = None
        self._prev_frame: int | None = None  # the frame index of the update before this one

    @property
    def num_tracks(self) -> int:
        """Number of live tracks."""
        return len(self._tracks)

    def finish(self) -> tuple[TrackEnded, ...]:
        """End every live track (the source is over) and return their :class:`TrackEnded`.

        The tracker is empty afterwards, as after :meth:`reset`.
        """
        ended = tuple(_ended(t) for t in self._tracks)
        self.reset()
        return ended

    def reset(self) -> None:
        """Forget all tracks and votes (e.g. when the source restarts); ids keep increasing."""
        self._tracks = []
        self._recent = {}
        self._last_frame = None
        self._prev_frame = None

    def update(
        self,
        frame_index: int,
        timestamp: float,
        readings: list[Reading],
        frame_size: tuple[int, int] | None = None,
    ) -> TrackUpdate:
        """Feed the readings of one frame.

        Args:
            frame_index: the frame's index; must not go backwards (equal is allowed).
            timestamp: the frame's time in seconds.
            readings: the house numbers read in the frame (may be empty).
            frame_size: ``(width, height)`` of the frame in pixels. When given, a reading that
                may be cut by the frame's border (a plate entering or leaving the view; see
                ``TrackConfig.edge_digits``) votes with ``config.edge_weight`` of its weight.

        Returns:
            The :class:`TrackUpdate` for this frame.

        Raises:
            ValueError: when ``frame_index`` is smaller than the previous one.
        """
        cfg = self.config
        if self._last_frame is not None and frame_index < self._last_frame:
            raise ValueError(
                f"frame_index {frame_index} goes backwards (previous {self._last_frame}); "
                "call reset() when the source restarts"
            )
        self._prev_frame, self._last_frame = self._last_frame, frame_index
        boxes = [as_box(r.box) for r in readings]
        matches = self._associate(frame_index, boxes)

        assignments: list[int] = []
        seen_ids: set[int] = set()
        confirmed: list[ConfirmedEvent] = []
        for r_idx, reading in enumerate(readings):
            track = matches.get(r_idx)
            if track is None:
                track = _Track(
                    track_id=self._next_id,
                    box=boxes[r_idx],
                    first_frame=frame_index,
                    first_time=timestamp,
                    last_frame=frame_index,
                    last_time=timestamp,
                )
                self._next_id += 1
                self._tracks.append(track)
            else:
                self._move(track, boxes[r_idx], frame_index)
            track.last_frame, track.last_time = frame_index, timestamp
            track.hits += 1
            near = frame_size is not None and _near_border(reading, boxes[r_idx], frame_size, cfg.edge_margin, cfg.edge_digits)
            scale = cfg.edge_weight if near else 1.0
            track.vote(reading, cfg.decay, scale)
            self._update_stable(track)
            track.note_view(reading, boxes[r_idx], frame_index, timestamp, scale)
            event = self._maybe_confirm(track, frame_index, timestamp)
            if event is not None:
                confirmed.append(event)
            assignments.append(track.track_id)
            seen_ids.add(track.track_id)

        ended: list[TrackEnded] = []
        alive: list[_Track] = []
        for track in self._tracks:
            gap_frames = frame_index - track.last_frame
            gap_time = timestamp - track.last_time
            if track.track_id not in seen_ids and gap_frames > cfg.max_gap_frames and gap_time > cfg.max_gap_seconds:
                ended.append(_ended(track))
            else:
                alive.append(track)
        self._tracks = alive
        # Forget old confirmations so the dedupe table stays small on long runs.
        horizon = timestamp - cfg.dedupe_seconds
        self._recent = {t: ts for t, ts in self._recent.items() if ts >= horizon}

        states = tuple(self._snapshot(t, t.track_id in seen_ids) for t in self._tracks)
        return TrackUpdate(
            frame_index=frame_index,
            timestamp=timestamp,
            tracks=states,
            assignments=tuple(assignments),
            confirmed=tuple(confirmed),
            ended=tuple(ended),
        )

    def text_vote(self, track_id: int, digits: str, score: float, *, letters: bool = False) -> bool:
        """Enter one read of the text reader (:mod:`recognizer.live.textworker`) into a live track.

        A number (``digits``) votes like a frame of the digit models, with ``config.text_weight``
        x ``score`` of weight and without decaying the earlier votes; letters (``letters``)
        add ``score`` to the track's letters evidence, and a track with ``config.letters_block``
        of it is never confirmed. Returns False when the track has ended since.
        """
        track = next((t for t in self._tracks if t.track_id == track_id), None)
        if track is None:
            return False
        track.text_reads += 1
        score = min(max(float(score), 0.0), 1.0)
        if letters:
            track.letters += score
            return True
        if digits and digits.isdigit():
            weight = self.config.text_weight * score
            n = len(digits)
            track.length_votes[n] = track.length_votes.get(n, 0.0) + weight
            arr = track.digit_votes.setdefault(n, np.zeros((n, 10), dtype=np.float64))
            for i, ch in enumerate(digits):
                arr[i, int(ch)] += weight
            self._update_stable(track)
        return True

    # -- internals -------------------------------------------------------------------------

    def _associate(self, frame_index: int, boxes: list[Box]) -> dict[int, _Track]:
        """Greedy one-to-one matching of readings to tracks, best score first."""
        cfg = self.config
        candidates: list[tuple[float, int, int]] = []
        for t_idx, track in enumerate(self._tracks):
            pred = track.predicted_box(frame_index)
            pcx, pcy = _center(pred)
            diag = math.hypot(pred[2] - pred[0], pred[3] - pred[1]) or 1.0
            for r_idx, box in enumerate(boxes):
                iou = box_iou(pred, box)
                if iou >= cfg.iou_threshold:
                    score = 1.0 + iou  # overlap always beats distance
                else:
                    cx, cy = _center(box)
                    dist = math.hypot(cx - pcx, cy - pcy) / diag
                    if dist > cfg.max_center_distance:
                        continue
                    score = 1.0 - dist / (cfg.max_center_distance + 1e-9)
                candidates.append((score, t_idx, r_idx))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        used_tracks: set[int] = set()
        matches: dict[int, _Track] = {}
        for _, t_idx, r_idx in candidates:
            if t_idx in used_tracks or r_idx in matches:
                continue
            used_tracks.add(t_idx)
            matches[r_idx] = self._tracks[t_idx]
        return matches

    def _move(self, track: _Track, box: Box, frame_index: int) -> None:
        steps = frame_index - track.last_frame
        if steps > 0:
            (ocx, ocy), (ncx, ncy) = _center(track.box), _center(box)
            vx, vy = (ncx - ocx) / steps, (ncy - ocy) / steps
            a = self.config.velocity_smoothing
            track.velocity = (a * vx + (1 - a) * track.velocity[0], a * vy + (1 - a) * track.velocity[1])
        track.box = box

    def _update_stable(self, track: _Track) -> None:
        cand = track.candidate()
        if not cand or cand == track.stable:
            return
        if not track.stable:
            track.stable = cand
            return
        if track.support(cand) >= self.config.switch_ratio * track.support(track.stable):
            track.stable = cand

    def _maybe_confirm(self, track: _Track, frame_index: int, timestamp: float) -> ConfirmedEvent | None:
        cfg = self.config
        text = track.stable
        if not text or text in track.confirmed_texts or track.hits < cfg.confirm_min_hits:
            return None
        if track.letters >= cfg.letters_block:  # the text reader sees letters here, not a number
            return None
        support = track.support(text)
        total = track.total_weight()
        share = support / total if total > 0 else 0.0
        if support < cfg.confirm_min_support or share < cfg.confirm_min_share:
            return None
        earlier = [other for other in track.confirmed_texts if other != text]
        track.confirmed_texts.add(text)
        if any(_is_subsequence(text, other) for other in earlier):
            # Part of a number this track already announced ("4" or "47" of "437" as the plate
            # leaves the view or a digit is lost to blur): the same house, not a new one.
            return None
        if any(len(other) == len(text) for other in earlier) and share < cfg.reannounce_share:
            # The same plate read differently ("764", then "164"): announce the new reading only
            # when it clearly dominates the track's vote, not on a passing majority.
            return None
        last = self._recent.get(text)
        self._recent[text] = timestamp
        if last is not None and timestamp - last <= cfg.dedupe_seconds and not self._confirmed_elsewhere(track, text):
            # The same number, lost and found again: already announced.
            return None
        return ConfirmedEvent(
            track_id=track.track_id,
            text=text,
            confidence=share,
            frame=frame_index,
            timestamp=timestamp,
            first_frame=track.first_frame,
            last_frame=track.last_frame,
            first_time=track.first_time,
            last_time=track.last_time,
            best=track.best,
            tally=track.tally(),
        )

    def _confirmed_elsewhere(self, track: _Track, text: str) -> bool:
        """True when another track shows the same confirmed text right now (two plates alike).

        "Right now" means seen in this frame or the previous one; a track that has not been
        seen since is more likely the same plate, lost and found again under a new id.
        """
        since = self._prev_frame if self._prev_frame is not None else self._last_frame
        return any(
            t is not track and t.stable == text and text in t.confirmed_texts and t.last_frame >= since
            for t in self._tracks
        )

    def _snapshot(self, track: _Track, seen: bool) -> TrackState:
        total = track.total_weight()
        return TrackState(
            track_id=track.track_id,
            box=track.box,
            stable_text=track.stable,
            support=track.support(track.stable) / total if total > 0 else 0.0,
            hits=track.hits,
            first_frame=track.first_frame,
            last_frame=track.last_frame,
            first_time=track.first_time,
            last_time=track.last_time,
            seen=seen,
            confirmed=bool(track.stable) and track.stable in track.confirmed_texts,
            best=track.best,
        )
