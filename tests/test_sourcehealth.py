"""Source health from state and poll history: one table of cases, each a history in shorthand."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from aggregator.model import Outcome, Poll, SourceState
from aggregator.status.sourcehealth import Health, classify, entries_per_day, usual_gap

from .factories import T0

URL = "https://example.org/feed"
_OUTCOMES = {
    "ok": Outcome.OK,
    "nm": Outcome.NOT_MODIFIED,
    "err": Outcome.ERROR,
    "gone": Outcome.GONE,
}


def polls(shorthand: str, *, every: int = 60) -> list[Poll]:
    """``"ok+3 nm err"``: one poll per word, ``every`` minutes apart from T0; ``+n`` new entries."""
    found = []
    for i, word in enumerate(shorthand.split()):
        outcome, _, new = word.partition("+")
        at = T0 + timedelta(minutes=every * i)
        found.append(Poll("feed", at, _OUTCOMES[outcome], new=int(new or 0)))
    return found


def state(**kw: object) -> SourceState:
    return replace(SourceState(name="feed", location=URL, last_attempt_at=T0), **kw)  # type: ignore[arg-type]


def _end(history: list[Poll]) -> object:
    return history[-1].at + timedelta(minutes=1) if history else T0


# (id, state overrides, history, expected)
CASES = [
    ("never polled", None, "", Health.NEW),
    ("polled fine", {}, "ok+2 nm ok+1", Health.OK),
    ("one failure backs off", {}, "ok+1 ok err", Health.BACKING_OFF),
    ("two failures back off", {}, "ok err err", Health.BACKING_OFF),
    ("three failures fail", {}, "ok err err err", Health.FAILING),
    ("failures counted by the state too", {"consecutive_failures": 4}, "err", Health.FAILING),
    ("a success ends the failing", {}, "err err err err ok", Health.OK),
    ("410 is gone", {}, "ok err gone", Health.GONE),
    ("gone in the state", {"gone": True}, "ok", Health.GONE),
    ("gone beats failing", {"gone": True, "consecutive_failures": 5}, "err err err", Health.GONE),
    (
        "retry-after ahead backs off",
        {"retry_after": T0 + timedelta(days=30)},
        "ok",
        Health.BACKING_OFF,
    ),
    ("confirmed move", {"location": "https://new.example.org/feed"}, "ok ok", Health.MOVED),
    ("move being seen", {"moved_to": "https://new.example.org/feed"}, "ok", Health.MOVED),
    (
        "failing beats moved",
        {"location": "https://new.example.org/"},
        "err err err",
        Health.FAILING,
    ),
    (
        "rhythm stopped is silent",
        {},
        "ok+1 nm ok+1 nm ok+1 nm ok+1 nm nm nm nm nm nm nm",
        Health.SILENT,
    ),
    ("rhythm still within 3 gaps", {}, "ok+1 nm ok+1 nm ok+1 nm ok+1 nm nm nm nm", Health.OK),
    ("too few gaps for a rhythm", {}, "ok+1 nm ok+1 nm ok+1 nm nm nm nm nm nm nm nm", Health.OK),
    ("every poll new, then quiet", {}, "ok+2 ok+1 ok+3 ok+1 ok nm ok nm", Health.SILENT),
    (
        "silence while failing is failing",
        {},
        "ok+1 ok+1 ok+1 ok+1 nm nm nm nm err err err",
        Health.FAILING,
    ),
]


@pytest.mark.parametrize(
    ("overrides", "shorthand", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_classify(overrides: dict[str, object] | None, shorthand: str, expected: Health) -> None:
    history = polls(shorthand)
    st = None if overrides is None else state(**overrides)
    assert classify(st, URL, history, now=_end(history)) is expected  # type: ignore[arg-type]


def test_silence_is_measured_by_polls_not_by_the_clock() -> None:
    # The daemon was down for a month: no poll looked, so nothing is known to be silent.
    history = polls("ok+1 ok+1 ok+1 ok+1")
    month_later = history[-1].at + timedelta(days=30)
    assert classify(state(), URL, history, now=month_later) is Health.OK


def test_usual_gap_is_the_median_gap_between_new_entries() -> None:
    assert usual_gap(polls("ok+1 nm ok+1 ok+1 nm nm ok+1")) == timedelta(hours=2)
    assert usual_gap(polls("ok+1 ok+1 ok+1")) is None


def test_entries_per_day_over_the_last_week() -> None:
    history = polls("ok+4 ok+4 ok+4 ok+4", every=60 * 24 * 2)  # 16 entries over 6 days
    now = history[-1].at
    assert entries_per_day(history, now=now) == pytest.approx(16 / 6)
    # A week later only the last poll is inside the window, spread over a day at least.
    assert entries_per_day(history, now=now + timedelta(days=6)) == pytest.approx(4 / 6)
    assert entries_per_day([], now=now) == 0.0


def test_disabled_sources_say_so_and_gone_says_more() -> None:
    at = T0
    resting = SourceState(name="x", location=URL, disabled_at=at, last_attempt_at=at)
    assert classify(resting, URL, [], now=at) is Health.DISABLED
    assert classify(None, URL, [], now=at, enabled=False) is Health.DISABLED
    gone = SourceState(name="x", location=URL, gone=True, disabled_at=at, last_attempt_at=at)
    assert classify(gone, URL, [], now=at) is Health.GONE
