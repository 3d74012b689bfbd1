"""Caps before the sanitiser: nesting depth, field size, entries per document."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.model import Outcome, ParsedDocument, RawEntry
from aggregator.normalise import normalise_entry, sanitize_html
from aggregator.parse import parse_feed
from aggregator.text import bounds
from aggregator.text.bounds import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_FIELD_CHARS,
    bound_document,
    bound_html,
)
from aggregator.update import Context, update_all

# The loopback server, the config writer and the context fixture of the pipeline tests.
from .test_remote_pipeline import (  # noqa: F401  (fixtures)
    context,
    opened,
    write_config,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "feedparser"
BASE = "https://feed.example/"


class _Depth(HTMLParser):
    """Deepest element nesting of sanitised (well-formed) HTML."""

    VOID = frozenset({"br", "img", "hr", "wbr", "col"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = self.deepest = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in self.VOID:
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            self.depth -= 1


def _depth(html: str) -> int:
    parser = _Depth()
    parser.feed(html)
    parser.close()
    return parser.deepest


def _rss(items: list[str]) -> bytes:
    body = "".join(
        f"<item><title>Story {n}</title><link>https://site.example/{n}</link>"
        f"<guid>tag:site.example,2026:{n}</guid><description><![CDATA[{html}]]></description></item>"
        for n, html in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://site.example/</link>{body}</channel></rss>"
    ).encode()


def test_forty_thousand_nested_elements_in_three_entries_are_flattened_and_named() -> None:
    nested = "<div>" * 13_334 + "deep text" + "</div>" * 13_334
    doc = parse_feed(_rss([nested] * 3), url=BASE, headers=None, source="hostile")

    notes = [w for w in doc.warnings if "flattened" in w]
    assert len(notes) == 3
    for n, note in enumerate(notes):
        assert note.startswith(f"entry {n + 1} (tag:site.example,2026:{n}): summary nests 13,334")
        assert f"below depth {MAX_DEPTH} flattened" in note
    for raw in doc.entries:
        item = normalise_entry(raw, source="hostile", origin=None, now=NOW)
        assert "deep text" in item.content_html
        assert _depth(item.content_html) <= MAX_DEPTH
        assert item.content_html.count("<div>") == MAX_DEPTH


def test_a_2_3_megabyte_feed_of_nested_markup_comes_out_bounded() -> None:
    unit = "<blockquote><div><span>" * 300 + "text" + "</span></div></blockquote>" * 300
    field = unit * (2_300_000 // len(unit) + 1)
    data = _rss([field])
    assert len(data) > 2_300_000

    doc = parse_feed(data, url=BASE, headers=None, source="hostile")

    (note,) = [w for w in doc.warnings if w.startswith("entry")]
    assert note.startswith("entry 1 (tag:site.example,2026:0): summary is ")
    assert f"cut to {MAX_FIELD_CHARS:,}" in note
    assert "nests 900 elements deep" in note
    (raw,) = doc.entries
    assert raw.summary is not None and len(raw.summary) <= MAX_FIELD_CHARS
    item = normalise_entry(raw, source="hostile", origin=None, now=NOW)
    assert _depth(item.content_html) <= MAX_DEPTH
    assert len(item.content_html) <= MAX_FIELD_CHARS


@pytest.mark.parametrize(
    "trick",
    [
        '<div title="></div>">',  # an end tag inside a quoted attribute
        "<div><!-- </div> -->",  # an end tag inside a comment
        "<div><script></div></script>",  # inside raw text
        "<div a=\"></div>\"b='</div>'>",
        "<table><td>",  # implied tbody/tr
    ],
)
def test_markup_that_hides_its_depth_from_a_naive_scanner_is_still_bounded(trick: str) -> None:
    output = sanitize_html(trick * 20_000, base_url=BASE)
    # html5ever adds at most tbody and tr per table level.
    assert _depth(output) <= 2 * MAX_DEPTH


def test_entries_beyond_the_cap_are_dropped_with_a_note() -> None:
    entries = tuple(RawEntry(identity=f"e{n}", title="t") for n in range(MAX_ENTRIES + 5))
    doc = bound_document(ParsedDocument(entries=entries))
    assert len(doc.entries) == MAX_ENTRIES
    assert doc.entries[-1].identity == f"e{MAX_ENTRIES - 1}"
    assert doc.warnings == (
        f"document has {MAX_ENTRIES + 5:,} entries; the 5 after the first 1,000 were dropped",
    )


def test_a_long_title_is_cut_and_named() -> None:
    doc = bound_document(
        ParsedDocument(entries=(RawEntry(link="https://e.example/a", title="x" * 5000),))
    )
    assert doc.entries[0].title == "x" * bounds.MAX_SHORT_CHARS
    assert doc.warnings == (
        "entry 1 (https://e.example/a): title is 5,000 characters, cut to 4,096",
    )


def _corpus_html() -> list[str]:
    if not CORPUS.is_dir():
        pytest.skip(f"feedparser corpus not present at {CORPUS}")
    values = []
    for path in sorted(CORPUS.rglob("*.xml")):
        parsed = feedparser.parse(
            io.BytesIO(path.read_bytes()), sanitize_html=False, resolve_relative_uris=False
        )
        for entry in parsed.entries:
            values.extend(c.get("value") or "" for c in entry.get("content") or [])
            values.append(entry.get("summary") or "")
    return [v for v in values if "<" in v]


def test_normal_articles_are_untouched() -> None:
    article = (
        "".join(
            f"<h2>Part {n}</h2><p>Some <a href='/x'>text</a> and <em>more</em>.</p>"
            "<blockquote><p>quoted <q cite='/q'>inner</q></p></blockquote><ul><li>a</li></ul>"
            for n in range(60)
        )
        + "<div>" * 150
        + "a long comment thread"
        + "</div>" * 150
    )
    bounded = bound_html(article)
    assert (bounded.cut_from, bounded.flattened_from) == (None, None)
    assert bounded.html == article
    doc = ParsedDocument(entries=(RawEntry(title="t", content=article, summary=article),))
    assert bound_document(doc) is doc


def test_reserialising_changes_nothing_the_sanitiser_would_keep() -> None:
    """Our tokens are html5ever's: sanitising them gives the same bytes as sanitising the input."""
    for value in _corpus_html():
        reserialised, *_ = bounds._reserialise(value)
        assert sanitize_html(reserialised, base_url=BASE) == sanitize_html(value, base_url=BASE), (
            value
        )


def test_a_capped_entry_is_a_problem_line_on_the_source(
    httpserver: HTTPServer,
    tmp_path: Path,
    opened: list[Context],  # noqa: F811  (the imported fixture)
) -> None:
    """Through the real pipeline: a loopback server serves three deeply nested entries."""
    nested = "<div>" * 13_334 + "deep text" + "</div>" * 13_334
    httpserver.expect_request("/deep.rss").respond_with_data(
        _rss([nested, "<p>fine</p>", nested]), content_type="application/rss+xml"
    )
    config = load_config(
        write_config(tmp_path, [f"{{name: deep, url: '{httpserver.url_for('/deep.rss')}'}}"])
    )
    ctx = context(config, opened)

    (result,) = asyncio.run(update_all(ctx))

    assert result.outcome is Outcome.OK, result.error
    assert result.new == 3
    flattened = [p for p in result.problems if "flattened" in p]
    assert [p.split(": summary")[0] for p in flattened] == [
        "deep: entry 1 (tag:site.example,2026:0)",
        "deep: entry 3 (tag:site.example,2026:2)",
    ]
