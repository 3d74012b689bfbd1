"""The ``full_content`` hint: which entries look like teasers, and when a source gets the hint."""

from __future__ import annotations

import pytest

from aggregator.text.teasers import MIN_SAMPLE, looks_like_teaser, teaser_hint

LONG = "<p>" + " ".join(f"word{i}" for i in range(120)) + "</p>"

TEASERS = [
    "<p>The herd crossed the river at dawn\u2026</p>",
    "<p>The herd crossed the river at dawn...</p>",
    "<p>The herd crossed the river at dawn [\u2026]</p>",
    '<p>The herd crossed the river. <a href="https://x.org/1">Read more</a></p>',
    '<p>The herd crossed.</p><p><a href="https://x.org/1">Continue reading \u2192</a></p>',
    '<p>The herd crossed the river. <a href="https://x.org/1">Full story</a></p>',
    "<p>The herd crossed the river. Read the full article on our site</p>",
]

NOT_TEASERS = [
    # Long, whatever its ending.
    LONG[:-4] + "\u2026</p>",
    LONG[:-4] + ' <a href="https://x.org/1">Read more</a></p>',
    # Short but complete.
    "<p>Rangers counted twelve foals at the waterhole this morning.</p>",
    '<p>Photos from <a href="https://x.org/gallery">the gallery</a></p>',
    "",
]


@pytest.mark.parametrize("html", TEASERS)
def test_teasers_are_recognised(html: str) -> None:
    assert looks_like_teaser(html)


@pytest.mark.parametrize("html", NOT_TEASERS)
def test_full_or_complete_texts_are_not_teasers(html: str) -> None:
    assert not looks_like_teaser(html)


def test_hint_needs_enough_entries_and_mostly_teasers() -> None:
    assert teaser_hint(TEASERS[: MIN_SAMPLE - 1]) is None
    hint = teaser_hint([*TEASERS[:4], LONG])
    assert hint is not None and (hint.teasers, hint.sampled) == (4, 5)
    assert str(hint).startswith("4 of its last 5 entries look like teasers")
    assert "full_content: true" in str(hint)
    assert teaser_hint([TEASERS[0], LONG, LONG, NOT_TEASERS[2]]) is None
