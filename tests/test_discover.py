"""Feed autodiscovery: HTML pages beside the feeds expected from them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from aggregator.sources.discover import (
    COMMON_FEED_PATHS,
    DiscoveredFeed,
    discover_feeds,
    looks_like_html,
)

DATA = Path(__file__).parent / "data" / "discover"
PAGES = sorted(DATA.glob("*.html"))


def test_there_are_pages() -> None:
    assert len(PAGES) >= 5


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_discover_feeds(page: Path) -> None:
    expected = json.loads(page.with_suffix(".expected.json").read_text(encoding="utf-8"))

    feeds = discover_feeds(page.read_bytes(), base_url=expected["base_url"])

    assert [asdict(f) for f in feeds] == expected["feeds"]


def test_common_paths_are_the_documented_ones() -> None:
    assert COMMON_FEED_PATHS == (
        "/feed",
        "/rss",
        "/atom.xml",
        "/feed.xml",
        "/index.xml",
        "/rss.xml",
        "/feed.json",
    )


@pytest.mark.parametrize(
    "html",
    [b"", b"\xff\xfe\x00garbage<<<>>>", b"<html><link rel=alternate type=application/rss+xml>"],
    ids=["empty", "binary", "link without href"],
)
def test_unusable_pages_give_only_guesses(html: bytes) -> None:
    feeds = discover_feeds(html, base_url="https://example.com/a/b")

    assert {f.via for f in feeds} == {"guess"}
    assert feeds[0] == DiscoveredFeed("https://example.com/feed", None, None, "guess")


def test_an_xml_feed_given_as_a_page_does_not_warn() -> None:
    # filterwarnings=error would turn bs4's XMLParsedAsHTMLWarning into a failure.
    feed = b'<?xml version="1.0"?><rss version="2.0"><channel><link>/x</link></channel></rss>'
    assert discover_feeds(feed, base_url="https://example.com/")[0].via == "guess"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<!DOCTYPE html><html><head>", "text/html; charset=utf-8", True),
        (b"<!doctype html>", None, True),
        (b"\xef\xbb\xbf  <html lang=en>", "application/octet-stream", True),
        (b"<html>", "text/xml", True),
        (b"<p>fragment</p>", "text/html", True),
        (b"<p>fragment</p>", "text/plain", False),
        (b'<?xml version="1.0"?>\n<rss version="2.0">', "text/html", False),
        (b'<?xml version="1.0"?><!-- generator --><feed xmlns="x">', "text/html", False),
        (b"<rdf:RDF xmlns:rdf='x'>", None, False),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "text/html", False),
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">', None, True),
        (b"", "application/xhtml+xml", True),
        (b"", None, False),
    ],
)
def test_looks_like_html(body: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_html(body, content_type) is expected
