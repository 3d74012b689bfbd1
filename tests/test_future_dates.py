"""The one rule for dates ahead of now (``model.not_in_future``), and its users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.model import CLOCK_SKEW, RawEntry, not_in_future
from aggregator.normalise import normalise_entry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CASES = [
    # (label, the source's date, expected)
    ("missing", None, None),
    ("long past", NOW - timedelta(days=400), NOW - timedelta(days=400)),
    ("a second ago", NOW - timedelta(seconds=1), NOW - timedelta(seconds=1)),
    ("now", NOW, NOW),
    ("a minute ahead: skew, kept as now", NOW + timedelta(minutes=1), NOW),
    ("exactly the skew ahead", NOW + CLOCK_SKEW, NOW),
    ("just past the skew", NOW + CLOCK_SKEW + timedelta(seconds=1), None),
    ("a day ahead", NOW + timedelta(days=1), None),
    ("next year", NOW.replace(year=2027), None),
    (
        "ahead on the wall clock, past as an instant",
        datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=4))),
        datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
    ),
    (
        "past on the wall clock, ahead as an instant",
        datetime(2026, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=-4))),
        None,
    ),
]


@pytest.mark.parametrize(("label", "when", "expected"), CASES, ids=[c[0] for c in CASES])
def test_not_in_future(label: str, when: datetime | None, expected: datetime | None) -> None:
    assert not_in_future(when, NOW) == expected


@pytest.mark.parametrize(
    ("published", "updated", "want_published", "want_updated"),
    [
        (
            NOW - timedelta(days=1),
            NOW - timedelta(hours=1),
            NOW - timedelta(days=1),
            NOW - timedelta(hours=1),
        ),
        # a wrong published date falls back to the updated date
        (
            NOW + timedelta(days=3),
            NOW - timedelta(hours=2),
            NOW - timedelta(hours=2),
            NOW - timedelta(hours=2),
        ),
        # both wrong: now
        (NOW + timedelta(days=3), NOW + timedelta(days=3), NOW, NOW),
        # skew: kept, as now
        (NOW + timedelta(minutes=2), None, NOW, NOW),
        # a wrong updated date counts as missing: updated = published
        (
            NOW - timedelta(days=1),
            NOW + timedelta(days=1),
            NOW - timedelta(days=1),
            NOW - timedelta(days=1),
        ),
    ],
)
def test_feed_entries_follow_the_rule(
    published: datetime, updated: datetime | None, want_published: datetime, want_updated: datetime
) -> None:
    raw = RawEntry(
        identity="urn:x:1",
        title="A title",
        link="https://example.com/a",
        content="<p>Some text.</p>",
        content_is_html=True,
        published=published,
        updated=updated,
    )
    item = normalise_entry(raw, source="s", origin=None, now=NOW)
    assert (item.published, item.updated) == (want_published, want_updated)
