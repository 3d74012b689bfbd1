"""Dedup decisions are pure: a table of situations and the action each one gets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aggregator.stories.dedup import Action, Decision, decide, link_key, mint_story_id, next_updated

from .factories import T0, make_item

ITEM = make_item("guid-1", link="https://news.example/a")
OWN = mint_story_id("wire", "guid-1")

CASES = [
    # (name, existing, tombstone, link_match, content_match, expected)
    ("brand new", None, None, None, None, Decision(Action.NEW, OWN)),
    (
        "seen, same content",
        ("S1", ITEM.content_hash),
        None,
        None,
        None,
        Decision(Action.UNCHANGED, "S1"),
    ),
    ("seen, new content", ("S1", "old-hash"), None, None, None, Decision(Action.UPDATE, "S1")),
    ("seen wins over link match", ("S1", "old"), None, "S2", None, Decision(Action.UPDATE, "S1")),
    ("same link elsewhere", None, None, "S2", None, Decision(Action.JOIN, "S2")),
    ("same text elsewhere", None, None, None, "S3", Decision(Action.JOIN, "S3")),
    ("link beats text", None, None, "S2", "S3", Decision(Action.JOIN, "S2")),
    (
        "deleted, returns with old id",
        None,
        ("S9", "deleted"),
        None,
        None,
        Decision(Action.NEW, "S9"),
    ),
    (
        "deleted, returns into live story",
        None,
        ("S9", "deleted"),
        "S2",
        None,
        Decision(Action.JOIN, "S2"),
    ),
    ("pruned stays out", None, ("S9", "pruned"), None, None, Decision(Action.SKIP, None)),
    (
        "pruned stays out despite match",
        None,
        ("S9", "pruned"),
        "S2",
        None,
        Decision(Action.SKIP, None),
    ),
]


@pytest.mark.parametrize(
    ("name", "existing", "tomb", "link", "content", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_decide(name, existing, tomb, link, content, expected) -> None:
    assert (
        decide(ITEM, existing=existing, tombstone=tomb, link_match=link, content_match=content)
        == expected
    )


def test_story_id_is_stable_and_distinct() -> None:
    assert mint_story_id("wire", "guid-1") == mint_story_id("wire", "guid-1")
    assert mint_story_id("wire", "guid-1") != mint_story_id("wire", "guid-2")
    assert mint_story_id("wire", "guid-1") != mint_story_id("other", "guid-1")
    assert mint_story_id("a", "b\nc") != mint_story_id("a\nb", "c")
    assert "urn:uuid:" + OWN.removeprefix("urn:uuid:") == OWN


@pytest.mark.parametrize(
    ("link", "key"),
    [
        ("https://news.example/a", "news.example/a"),
        ("http://www.news.example/a/", "news.example/a"),
        ("https://news.example/", "news.example/"),
        ("https://news.example/a?id=3", "news.example/a?id=3"),
        (None, None),
    ],
)
def test_link_key(link, key) -> None:
    assert link_key(make_item(link=link)) == key


@pytest.mark.parametrize(
    ("previous", "candidate", "now", "expected"),
    [
        (
            T0,
            T0 + timedelta(hours=1),
            T0 + timedelta(hours=2),
            T0 + timedelta(hours=1),
        ),  # entry date moved
        (
            T0,
            T0,
            T0 + timedelta(hours=2),
            T0 + timedelta(hours=2),
        ),  # entry date did not move: seen time
        (T0, T0 - timedelta(days=1), T0, T0 + timedelta(seconds=1)),  # never equal or earlier
    ],
)
def test_next_updated_always_moves_forward(previous, candidate, now, expected) -> None:
    assert next_updated(previous, candidate, now) == expected
