"""Published paths: ``publish.paths`` builds them and parses them back."""

from __future__ import annotations

import pytest

from aggregator.publish import Site, TopicFeed, render_site
from aggregator.publish.paths import (
    PathKind,
    PublishedPath,
    parse_path,
    private_prefix,
    topic_of,
    topic_path,
)
from tests.publish_helpers import make_story, make_topic

TOKEN = "s3cret-token_0123456789"

BUILT = [
    (PublishedPath(PathKind.INDEX), ""),
    (PublishedPath(PathKind.OPML), "topics.opml"),
    (PublishedPath(PathKind.PAGE, "caucasus"), "topics/caucasus"),
    (PublishedPath(PathKind.ATOM, "caucasus"), "topics/caucasus.atom"),
    (PublishedPath(PathKind.RSS, "caucasus"), "topics/caucasus.rss"),
    (PublishedPath(PathKind.JSON, "caucasus"), "topics/caucasus.json"),
    (PublishedPath(PathKind.ARCHIVE, "caucasus", number=1), "topics/caucasus/archive/1.atom"),
    (PublishedPath(PathKind.ARCHIVE, "a.b-c_d", number=12), "topics/a.b-c_d/archive/12.atom"),
    (PublishedPath(PathKind.PAGE, "iran", TOKEN), f"private/{TOKEN}/topics/iran"),
    (PublishedPath(PathKind.ATOM, "iran", TOKEN), f"private/{TOKEN}/topics/iran.atom"),
    (
        PublishedPath(PathKind.ARCHIVE, "iran", TOKEN, 3),
        f"private/{TOKEN}/topics/iran/archive/3.atom",
    ),
]


@pytest.mark.parametrize(("parsed", "path"), BUILT, ids=[p or "index" for _, p in BUILT])
def test_build_and_parse_are_inverses(parsed: PublishedPath, path: str) -> None:
    assert parsed.path == path
    assert parse_path(path) == parsed
    assert topic_of(path) == parsed.topic


@pytest.mark.parametrize(
    "path",
    [
        "/topics/x.atom",  # a URL path, not a document path
        "topics/",
        "topics/.atom",
        "topics/X",  # names are lower case
        "topics/x/",
        "topics/x/archive/0.atom",
        "topics/x/archive/01.atom",
        "topics/x/archive/1.rss",
        "topics/x/other/1.atom",
        "private/",
        "private/tok",
        "private/../topics/x.atom",
        "private/to%2Fk/topics/x.atom",
        f"private/{TOKEN}/topics.opml",
        f"private/{TOKEN}/",
        "index.html",
        "feeds/x.atom",
    ],
)
def test_other_paths_are_not_published_ones(path: str) -> None:
    assert parse_path(path) is None
    assert topic_of(path) is None


def test_topic_path_rejects_what_is_not_a_topic_document() -> None:
    with pytest.raises(ValueError, match="archive"):
        topic_path("x", PathKind.ARCHIVE)
    with pytest.raises(ValueError, match="archive"):
        topic_path("x", PathKind.ATOM, number=1)
    with pytest.raises(ValueError, match="not a topic's document"):
        topic_path("x", PathKind.OPML)


def test_every_document_the_site_publishes_round_trips() -> None:
    site = Site(base_url="https://news.example/", title="News")
    stories = tuple(make_story(n) for n in range(7))
    feeds = [
        TopicFeed(make_topic("caucasus", max_items=2), stories),
        TopicFeed(make_topic("climate.energy", max_items=50), stories[:1]),
        TopicFeed(make_topic("iran", private=True, tokens=(TOKEN,), max_items=3), stories),
    ]
    docs = render_site(site, feeds)
    kinds = set()
    for path in docs:
        parsed = parse_path(path)
        assert parsed is not None, path
        assert parsed.path == path
        kinds.add(parsed.kind)
        if parsed.token is not None:
            assert path.startswith(private_prefix(parsed.token))
            assert parsed.topic == "iran"
    assert kinds == set(PathKind)
    # private copies only under their token; archives of the 7 stories, 2 a page
    assert not any(p.startswith("topics/iran") for p in docs)
    assert {p for p in docs if "caucasus/archive" in p} == {
        topic_path("caucasus", PathKind.ARCHIVE, number=n) for n in (1, 2, 3)
    }
