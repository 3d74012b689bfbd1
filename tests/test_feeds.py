"""RSS/Atom through feedparser, JSON Feed through our reader; the shared corpus."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.parse import parse_feed
from aggregator.parse.jsonfeed import parse_json_feed

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feedparser"
_HEADER = re.compile(rb"^Header:\s*([^:\r\n]+):\s*(.*?)\s*$", re.M)


def _corpus() -> Path:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"feedparser corpus missing at {CORPUS}")
        pytest.skip(f"feedparser corpus not present at {CORPUS}")
    return CORPUS


def _headers(data: bytes) -> dict[str, str]:
    comment = data[: data.find(b"-->") + 3] if b"-->" in data[:4096] else b""
    return {
        m.group(1).decode("latin-1").strip(): m.group(2).decode("latin-1")
        for m in _HEADER.finditer(comment)
    }


def test_whole_feedparser_corpus_parses_or_raises_parse_error() -> None:
    files = sorted(p for p in _corpus().rglob("*") if p.is_file())
    assert len(files) >= 2000
    with_entries = 0
    rejected = 0
    for path in files:
        data = path.read_bytes()
        try:
            doc = parse_feed(
                data, url="http://example.org/feed", headers=_headers(data), source=path.name
            )
        except ParseError:
            rejected += 1
            continue
        if doc.entries:
            with_entries += 1
        for entry in doc.entries:
            for value in (entry.published, entry.updated):
                assert value is None or value.utcoffset() is not None, path
    # Measured: 2,107 files, 962 yield entries, 7 rejected as not a feed.
    assert with_entries >= 950
    assert rejected <= 10


def test_corpus_json_feed() -> None:
    doc = parse_feed(
        (_corpus() / "json" / "example.json").read_bytes(), url=None, headers=None, source="j"
    )
    assert doc.feed.title == "My Example Feed"
    assert [e.identity for e in doc.entries] == ["2", "1"]
    assert doc.entries[0].content == "This is a second item."
    assert not doc.entries[0].content_is_html
    assert doc.entries[0].tags == ("test", "JSON")
    assert doc.entries[1].authors == ("you",)
    assert doc.entries[0].authors == ("me",)  # JSON Feed 1.0 feed-level author


def test_json_feed_rejects_other_versions_and_shapes() -> None:
    for doc in (
        {"version": "https://example.com/v1", "items": []},
        {"version": "https://jsonfeed.org/version/1"},
        [],
    ):
        with pytest.raises(ParseError):
            parse_json_feed(json.dumps(doc).encode(), source="j")


def test_json_feed_bad_dates_are_dropped_with_a_warning() -> None:
    data = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {
                    "id": "a",
                    "title": "T",
                    "date_published": "yesterday",
                    "date_modified": "2026-01-02T03:04:05",
                }
            ],
        }
    ).encode("utf-16")
    doc = parse_json_feed(data, source="j")
    assert doc.entries[0].published is None
    assert doc.entries[0].updated is not None and doc.entries[0].updated.utcoffset() is not None
    assert doc.warnings == ("item 1: date_published 'yesterday' is not an RFC 3339 date; ignored",)


def test_rss_headers_give_charset_base_and_ttl() -> None:
    data = (
        b"<rss version='2.0'><channel><title>W</title><link>/home</link><ttl>30</ttl>"
        b"<item><title>Caf\xe9</title><link>a/1</link><description>x</description></item>"
        b"<item></item></channel></rss>"
    )
    doc = parse_feed(
        data,
        url="https://wire.example.com/feeds/main.rss",
        headers={"Content-Type": "application/rss+xml; charset=iso-8859-1"},
        source="wire",
    )
    assert doc.entries[0].title == "Café"
    assert doc.entries[0].link == "https://wire.example.com/feeds/a/1"
    assert doc.feed.ttl is not None and doc.feed.ttl.total_seconds() == 1800
    assert len(doc.entries) == 1
    assert doc.warnings == ("entry 2 skipped: no title, link, id or content",)


def test_surrogate_character_reference_does_not_escape_as_another_error() -> None:
    data = b"<rss version='2.0'><channel><item><title>&#xD800;</title></item></channel></rss>"
    try:
        parse_feed(data, url=None, headers=None, source="s")
    except ParseError as exc:
        assert str(exc).startswith("s: ")
