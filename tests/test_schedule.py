"""The next-due policy and its header parsers: plain data in, times out."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aggregator.model import Outcome
from aggregator.sources.redirects import MoveDecision, decide_move
from aggregator.sources.schedule import (
    NEVER,
    catch_up_allowance,
    next_due,
    parse_cache_control,
    parse_expires,
    parse_http_date,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


@dataclass(frozen=True)
class Row:
    name: str
    outcome: Outcome
    expected: timedelta | None  # delay after NOW; None means NEVER
    interval: timedelta = 30 * M
    failures: int = 0
    options: dict[str, Any] = field(default_factory=dict)


# jitter=0 in the table so each row states the exact delay; jitter has its own tests.
ROWS = [
    Row("ok uses the interval", Outcome.OK, 30 * M),
    Row("not modified uses the interval", Outcome.NOT_MODIFIED, 30 * M),
    Row("gone stops polling", Outcome.GONE, None, failures=3),
    Row("first error waits one interval", Outcome.ERROR, 30 * M, failures=1),
    Row("zero failures on error reads as one", Outcome.ERROR, 30 * M, failures=0),
    Row("second error doubles", Outcome.ERROR, 60 * M, failures=2),
    Row("fourth error is eight intervals", Outcome.ERROR, 240 * M, failures=4),
    Row("backoff is capped", Outcome.ERROR, 24 * H, failures=7),
    Row("huge failure counts do not overflow", Outcome.ERROR, 24 * H, failures=10_000),
    # 30 minutes x 2**36 is past timedelta's range: the 37th failure in a row raised
    Row("a month of daily failures does not overflow", Outcome.ERROR, 24 * H, failures=40),
    Row(
        "custom backoff cap",
        Outcome.ERROR,
        2 * H,
        failures=6,
        options={"max_backoff": 2 * H},
    ),
    Row(
        "backoff never shorter than an interval above the cap",
        Outcome.ERROR,
        48 * H,
        interval=48 * H,
        failures=3,
        options={"max_interval": 72 * H},
    ),
    Row("max-age lengthens", Outcome.OK, 2 * H, options={"cache_max_age": 2 * H}),
    Row("max-age never shortens", Outcome.OK, 30 * M, options={"cache_max_age": 10 * M}),
    Row(
        "max-age clamped to max_interval", Outcome.OK, 24 * H, options={"cache_max_age": 7 * 24 * H}
    ),
    Row("ttl lengthens", Outcome.OK, 60 * M, options={"ttl": 60 * M}),
    Row("expires lengthens", Outcome.OK, 3 * H, options={"expires": NOW + 3 * H}),
    Row("expires in the past is no hint", Outcome.OK, 30 * M, options={"expires": NOW - H}),
    Row(
        "the longest hint wins",
        Outcome.NOT_MODIFIED,
        5 * H,
        options={"cache_max_age": H, "ttl": 5 * H, "expires": NOW + 2 * H},
    ),
    Row("hints are ignored on errors", Outcome.ERROR, 30 * M, failures=1, options={"ttl": 5 * H}),
    Row("interval below min_interval is raised", Outcome.OK, 5 * M, interval=M),
    Row(
        "custom min_interval",
        Outcome.OK,
        15 * M,
        interval=M,
        options={"min_interval": 15 * M},
    ),
    Row(
        "configured interval above max_interval is kept",
        Outcome.OK,
        48 * H,
        interval=48 * H,
    ),
    Row(
        "retry-after later than the backoff wins",
        Outcome.ERROR,
        3 * H,
        failures=1,
        options={"retry_after": NOW + 3 * H},
    ),
    Row(
        "retry-after earlier than the backoff does not shorten it",
        Outcome.ERROR,
        60 * M,
        failures=2,
        options={"retry_after": NOW + 5 * M},
    ),
    Row(
        "retry-after is capped at max_backoff",
        Outcome.ERROR,
        24 * H,
        failures=1,
        options={"retry_after": NOW + 30 * 24 * H},
    ),
    Row(
        "retry-after also holds after a success",
        Outcome.OK,
        2 * H,
        options={"retry_after": NOW + 2 * H},
    ),
    Row(
        "retry-after in the past changes nothing",
        Outcome.ERROR,
        30 * M,
        failures=1,
        options={"retry_after": NOW - H},
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_next_due(row: Row) -> None:
    due = next_due(
        now=NOW,
        interval=row.interval,
        outcome=row.outcome,
        consecutive_failures=row.failures,
        jitter=0.0,
        **row.options,
    )

    assert due == (NEVER if row.expected is None else NOW + row.expected)
    assert due.tzinfo is not None


@pytest.mark.parametrize("interval", [timedelta(seconds=1), 30 * M, 48 * H])
def test_the_backoff_grows_to_its_cap_and_stays_there(interval: timedelta) -> None:
    """Every failure count, up to far past the cap, gives a delay: never shorter than the last."""
    delays = [
        next_due(
            now=NOW,
            interval=interval,
            outcome=Outcome.ERROR,
            consecutive_failures=failures,
            jitter=0.0,
            min_interval=timedelta(seconds=1),
        )
        - NOW
        for failures in range(1, 200)
    ]
    cap = max(24 * H, interval)
    assert delays == sorted(delays)
    assert delays[-1] == cap
    assert delays[0] == interval


def test_jitter_only_lengthens_and_is_reproducible() -> None:
    dues = [
        next_due(
            now=NOW,
            interval=H,
            outcome=Outcome.OK,
            consecutive_failures=0,
            jitter=0.1,
            seed=f"source-{i}",
        )
        for i in range(50)
    ]
    again = next_due(
        now=NOW, interval=H, outcome=Outcome.OK, consecutive_failures=0, jitter=0.1, seed="source-0"
    )

    assert again == dues[0]
    assert all(NOW + H <= d < NOW + H * 1.1 for d in dues)
    assert len(set(dues)) == 50  # sources with one interval spread out


def test_jitter_never_undercuts_retry_after() -> None:
    due = next_due(
        now=NOW,
        interval=H,
        outcome=Outcome.ERROR,
        consecutive_failures=1,
        retry_after=NOW + 2 * H,
        seed="x",
    )
    assert due == NOW + 2 * H


def test_non_utc_now_gives_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    due = next_due(
        now=NOW.astimezone(plus_two),
        interval=H,
        outcome=Outcome.OK,
        consecutive_failures=0,
        jitter=0,
    )
    assert due == NOW + H
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    "kwargs",
    [
        {"now": datetime(2024, 5, 1)},
        {"interval": timedelta(0)},
        {"jitter": 1.5},
        {"retry_after": datetime(2024, 5, 1)},
    ],
    ids=["naive now", "zero interval", "jitter above 1", "naive retry-after"],
)
def test_next_due_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "now": NOW,
        "interval": H,
        "outcome": Outcome.ERROR,
        "consecutive_failures": 1,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        next_due(**args)


# --- header parsers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cache-Control": "max-age=3600"}, timedelta(hours=1)),
        ({"cache-control": "public, max-age=600, must-revalidate"}, timedelta(minutes=10)),
        ({"CACHE-CONTROL": 'max-age="120"'}, timedelta(minutes=2)),
        ({"Cache-Control": "max-age=0"}, timedelta(0)),
        ({"Cache-Control": "s-maxage=600"}, None),
        ({"Cache-Control": "no-store, max-age=600"}, None),
        ({"Cache-Control": "no-cache"}, None),
        ({"Cache-Control": "max-age=soon"}, None),
        ({"Cache-Control": "max-age=99999999999999999999"}, timedelta(days=3650)),
        ({}, None),
    ],
)
def test_parse_cache_control(headers: dict[str, str], expected: timedelta | None) -> None:
    assert parse_cache_control(headers) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 01 May 2024 14:00:00 GMT", 2 * H),
        ("Wed, 01 May 2024 11:00:00 GMT", None),
        ("0", None),
        ("-1", None),
        ("", None),
    ],
)
def test_parse_expires(value: str, expected: timedelta | None) -> None:
    assert parse_expires({"Expires": value}, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + 2 * M),
        (" 0 ", NOW),
        ("Wed, 01 May 2024 13:00:00 GMT", NOW + H),
        ("Wednesday, 01-May-24 13:00:00 GMT", NOW + H),
        ("Wed May  1 13:00:00 2024", NOW + H),
        ("Wed, 01 May 2024 15:00:00 +0200", NOW + H),
        ("Wed, 01 May 2024 11:00:00 GMT", NOW - H),
        ("-5", None),
        ("1.5", None),
        ("²", None),
        ("soon", None),
        ("", None),
        ("9" * 40, NOW + timedelta(days=3650)),
    ],
)
def test_parse_retry_after(value: str, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_http_date_is_utc() -> None:
    parsed = parse_http_date("Wed, 01 May 2024 14:00:00 +0200")
    assert parsed == NOW
    assert parsed is not None and parsed.tzinfo is UTC


# --- permanent redirects ---------------------------------------------------------------

A, B = "https://new.example/feed", "https://other.example/feed"


@pytest.mark.parametrize(
    ("state", "observed", "required", "expected"),
    [
        ((None, 0), None, 3, (None, None, 0)),
        ((None, 0), A, 3, (None, A, 1)),
        ((A, 1), A, 3, (None, A, 2)),
        ((A, 2), A, 3, (A, None, 0)),
        ((A, 2), B, 3, (None, B, 1)),
        ((A, 2), None, 3, (None, None, 0)),  # a 200 or a 302/307 chain resets
        ((None, 0), A, 1, (A, None, 0)),
        ((A, 4), A, 5, (A, None, 0)),
        ((A, 1), A, 5, (None, A, 2)),
    ],
)
def test_decide_move(
    state: tuple[str | None, int],
    observed: str | None,
    required: int,
    expected: tuple[str | None, str | None, int],
) -> None:
    decision = decide_move(*state, observed, required=required)
    assert decision == expected
    assert isinstance(decision, MoveDecision)


def test_three_consistent_polls_move_the_url_and_302_never_does() -> None:
    """Replays polls the way the pipeline would, with FetchResponse.permanent_redirect."""
    location, moved_to, seen = "https://old.example/feed", None, 0
    history: list[str] = []
    # Two 301s, a 302 (no permanent redirect observed), then three 301s.
    for observed in (A, A, None, A, A, A):
        new, moved_to, seen = decide_move(moved_to, seen, observed)
        if new is not None:
            history.append(location)
            location = new
        if observed is None:
            assert location == "https://old.example/feed"
    assert location == A
    assert history == ["https://old.example/feed"]
    assert (moved_to, seen) == (None, 0)


def test_decide_move_needs_a_positive_requirement() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        decide_move(None, 0, A, required=0)


# -- pacing the sources overdue at start ---------------------------------------------


def allowance(overdue: int, seconds: float) -> int:
    return catch_up_allowance(
        overdue, elapsed=timedelta(seconds=seconds), rate=50, longest=timedelta(minutes=5)
    )


def test_catch_up_starts_a_few_overdue_sources_at_once() -> None:
    assert allowance(3, 0) == 3
    assert allowance(50, 0) == 50
    assert allowance(0, 10) == 0


def test_catch_up_paces_ten_thousand_overdue_sources() -> None:
    starts = [allowance(10_000, t) for t in range(400)]
    assert starts[0] == 50
    # Never more than 50 in a second, and all started after 200 s.
    assert max(b - a for a, b in itertools.pairwise(starts)) == 50
    assert starts.index(10_000) == 199
    assert starts[-1] == 10_000


def test_catch_up_never_takes_longer_than_the_longest() -> None:
    assert allowance(100_000, 299) == 100_000
    assert allowance(100_000, 150) < 100_000
    assert allowance(100_000, 0) == 334  # the pace is raised to 100,000 / 300 s
