"""Feed formats come from one table: a toy format registered here is published everywhere.

A new output format is one renderer and one row of ``publish.paths``' formats
table. The toy below (a plain-text list of headlines) is registered from this
test only, and then rendered, linked from the HTML pages, parsed back from its
path, pinged to a hub, written to the export and served by the real web server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aggregator.publish import Document, Site, TopicFeed, render_site, write_tree
from aggregator.publish import paths as publish_paths
from aggregator.publish._base import Page, TopicUrls, make_document, newest_updated
from aggregator.publish.export import Manifest
from aggregator.publish.paths import (
    FeedFormat,
    PathKind,
    feed_format,
    feed_formats,
    parse_path,
    register_format,
    topic_path,
)
from aggregator.publish.websub import changed_feeds
from aggregator.web import DocumentStore, create_app
from tests.publish_helpers import free_socket, make_story, make_topic, run_server

TOY = FeedFormat(PathKind("toy"), "text/plain", "Toy list", f"{__name__}:render_toy")
TOKEN = "s3cret-token"


def render_toy(
    site: Site,
    topic_title: str,
    description: str,
    urls: TopicUrls,
    page: Page,
    *,
    public: bool = True,
) -> Document:
    """The toy format: the topic's title, then one headline per line."""
    lines = [f"# {topic_title}", *(story.item.title for story in page.stories)]
    body = "\n".join(lines).encode("utf-8") + b"\n"
    return make_document(urls.feed_path(TOY), body, TOY.content_type, newest_updated(page.stories))


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedFormat]:
    # A copy of the table for this test: the toy row leaves with it.
    monkeypatch.setattr(publish_paths, "_FORMATS", dict(publish_paths._FORMATS))
    register_format(TOY)
    yield TOY


def _site(base_url: str = "https://news.example.org/") -> Site:
    return Site(base_url=base_url, title="Test", hub="https://hub.example.org/")


def _feeds(n: int = 4) -> list[TopicFeed]:
    stories = tuple(make_story(i) for i in range(n))
    return [
        TopicFeed(make_topic("caucasus", max_items=3), stories),
        TopicFeed(make_topic("secret", private=True, tokens=(TOKEN,)), stories[:1]),
    ]


def test_the_table_lists_the_three_formats_in_order() -> None:
    assert [row.name for row in feed_formats()] == ["atom", "rss", "json"]
    assert [row.label for row in feed_formats()] == ["Atom", "RSS", "JSON Feed"]
    assert feed_format(PathKind.RSS) == feed_formats()[1]
    assert feed_format(PathKind.PAGE) is None
    assert feed_format(PathKind.ARCHIVE) is None
    assert feed_format(PathKind("toy")) is None
    # unregistered, ".toy" is part of a topic's name, not a format
    parsed = parse_path("topics/caucasus.toy")
    assert parsed is not None and parsed.kind == PathKind.PAGE


def test_a_toy_format_is_rendered_public_and_private(toy: FeedFormat) -> None:
    docs = render_site(_site(), _feeds())
    doc = docs["topics/caucasus.toy"]
    assert doc.content_type == "text/plain; charset=utf-8"
    # the head feed: the newest max_items stories, newest first
    assert doc.body.decode("utf-8").splitlines() == [
        "# Caucasus",
        *(make_story(i).item.title for i in (3, 2, 1)),
    ]
    assert f"private/{TOKEN}/topics/secret.toy" in docs
    assert "topics/secret.toy" not in docs
    # archives stay Atom: the toy is a subscription feed only
    assert not any(p.endswith(".toy") and "archive" in p for p in docs)


def test_a_toy_format_has_a_path_kind_that_round_trips(toy: FeedFormat) -> None:
    assert toy.kind in set(PathKind)
    path = topic_path("caucasus", toy.kind)
    assert path == "topics/caucasus.toy"
    parsed = parse_path(path)
    assert parsed is not None
    assert (parsed.kind, parsed.topic, parsed.path) == (toy.kind, "caucasus", path)
    assert feed_format(parsed.kind) == toy


def test_the_html_pages_link_the_toy_format(toy: FeedFormat) -> None:
    docs = render_site(_site(), _feeds())
    url = "https://news.example.org/topics/caucasus.toy"
    for path in ("", "topics/caucasus"):
        html = docs[path].body.decode("utf-8")
        assert (
            f'<link rel="alternate" type="text/plain" title="Caucasus (Toy list)" href="{url}">'
            in html
        )
        assert f'<a class="feed" href="{url}" type="text/plain">Toy list</a>' in html


def test_a_changed_toy_feed_is_pinged_to_the_hub(toy: FeedFormat) -> None:
    before = render_site(_site(), _feeds(4))
    after = render_site(_site(), _feeds(5))
    changed = changed_feeds(before, after)
    assert "topics/caucasus.toy" in changed
    assert not any(p.startswith("private/") for p in changed)


def test_a_toy_feed_is_exported_and_served(toy: FeedFormat, tmp_path: Path) -> None:
    sock = free_socket()
    site = _site(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    docs = render_site(site, _feeds())
    out = tmp_path / "public"
    write_tree(out, docs)
    assert (out / "topics" / "caucasus.toy").read_bytes() == docs["topics/caucasus.toy"].body
    store = DocumentStore()
    store.replace_files(out, Manifest.read(out).documents)
    with run_server(create_app(store), sock) as running:
        response = httpx.get(running.base_url + "topics/caucasus.toy", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == docs["topics/caucasus.toy"].body


def test_register_format_refuses_a_taken_or_odd_name(toy: FeedFormat) -> None:
    for name in ("toy", "atom", "page", "archive", "Bad", "two words"):
        row = FeedFormat(PathKind(name), "text/plain", "x", f"{__name__}:render_toy")
        with pytest.raises(ValueError, match="feed format"):
            register_format(row)
