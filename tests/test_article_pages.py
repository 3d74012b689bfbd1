"""The pieces of ``full_content`` on plain values: which pages to fetch, and reading a page."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from aggregator.engine.articles import Page, extract_page
from aggregator.engine.pages import plan_pages
from aggregator.errors import BackoffError, ParseError
from aggregator.parse import parse_page
from aggregator.sources.http import MAX_HOST_BACKOFF, Fetcher
from aggregator.store import SQLStore, open_store
from aggregator.text.selector import SelectorError, check_selector, select_html

from .factories import T0, later, make_item


def test_plan_fetches_new_entries_once_and_keeps_stored_articles() -> None:
    items = [
        make_item("new", link="https://x.org/new", body="teaser new"),
        make_item("fetched", link="https://x.org/f", body="teaser f"),
        make_item("failed", link="https://x.org/g", body="teaser g"),
        make_item("pruned", link="https://x.org/p", body="teaser p"),
        make_item("unlinked", link=None, body="teaser u"),
        make_item("new", link="https://x.org/new", body="teaser new"),
    ]
    known = {
        "fetched": ("<p>the whole article</p>", "hash-f"),
        "failed": ("<p>teaser g</p>", "hash-g"),
        "pruned": None,
    }

    plan = plan_pages(items, known)

    # The repeated entry gets the page fetched for its first occurrence.
    assert plan.fetch == {0: (0, 5)}
    # Only the entry whose stored body differs from the feed's keeps it.
    assert plan.keep == {1: "<p>the whole article</p>"}
    assert plan.hashes == {1: "hash-f", 2: "hash-g"}
    assert plan.later == ()


def test_plan_leaves_new_entries_over_the_budget_for_later() -> None:
    items = [make_item(f"e{i}", link=f"https://x.org/{i}") for i in range(5)]
    items.append(make_item("e1", link="https://x.org/1"))

    plan = plan_pages(items, {"e0": ("<p>stored</p>", "h")}, max_pages=2)

    # e0 is held already; e1 (twice) and e2 take the budget; e3 and e4 wait.
    assert plan.fetch == {1: (1, 5), 2: (2,)}
    assert plan.later == (3, 4)


def test_selector_matches_are_not_repeated_inside_each_other() -> None:
    page = (
        "<div class='a'><p>one</p><div class='a'><p>two</p></div></div>"
        "<div class='a'><p>three</p></div>"
    )
    found = select_html(page, "div.a")
    assert len(found) == 2
    assert "two" in found[0] and "three" in found[1]


@pytest.mark.parametrize("selector", ["", "   ", "div[", "p:unknown-pseudo", "x" * 501])
def test_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorError) as info:
        check_selector(selector)
    assert "\n" not in str(info.value)


def test_page_charset_comes_from_the_header() -> None:
    page = (
        "<html><body><article><p>Caf\u00e9 cr\u00e8me at the waterhole.</p></article></body></html>"
    )
    article = parse_page(
        page.encode("latin-1"),
        url="https://x.org/a",
        headers={"content-type": "text/html; charset=ISO-8859-1"},
        source="s",
    )
    assert "Caf\u00e9 cr\u00e8me" in article


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"%PDF-1.7 binary", "application/pdf", "not an HTML page (application/pdf)"),
        (b'{"json": true}', "", "not an HTML page"),
        (b"<html><body><nav>menu</nav></body></html>", "text/html", "no article text"),
    ],
)
def test_pages_without_an_article_are_parse_errors(
    body: bytes, content_type: str, expected: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with pytest.raises(ParseError) as info:
        parse_page(body, url="https://x.org/a", headers=headers, source="s")
    assert str(info.value) == f"s: https://x.org/a: {expected}"


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    yield s
    s.close()


def test_store_tells_which_entries_it_holds(store: SQLStore) -> None:
    kept = make_item("kept", body="the whole article of kept, long enough to be itself")
    store.ingest(
        [
            kept,
            make_item("gone", link="https://x.org/gone", body="another text entirely here"),
            make_item("kept", source="other", body="the other source's own entry"),
        ],
        now=T0,
        matchers={},
    )
    store.remove_entries("wire", ["gone"], now=later(1), reason="pruned")

    known = store.entry_contents("wire", ["kept", "gone", "never", "kept"])

    assert known == {
        "kept": (kept.content_html, kept.content_hash),
        "gone": None,
    }
    assert store.recent_contents("wire") == [
        "<p>the whole article of kept, long enough to be itself</p>"
    ]
    assert store.recent_contents("nobody") == []


def test_a_host_backing_off_gets_nothing_until_its_time() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, text="<rss/>")

    async def main() -> None:
        async with Fetcher(
            allow_networks=["127.0.0.0/8"], transport=httpx.MockTransport(answer)
        ) as fetcher:
            now = datetime.now(UTC)
            until = fetcher.back_off("http://127.0.0.1:9/page.html", now + timedelta(days=365))
            # Capped: a page cannot keep its host's feeds away for a year.
            assert now + MAX_HOST_BACKOFF - timedelta(seconds=5) <= until
            assert until <= datetime.now(UTC) + MAX_HOST_BACKOFF
            # An earlier time does not shorten the wait.
            assert fetcher.back_off("http://127.0.0.1/x", now + timedelta(minutes=1)) == until
            with pytest.raises(BackoffError) as info:
                await fetcher.fetch("http://127.0.0.1:8080/feed.xml", source="feed")
            assert info.value.retry_after == until
            assert str(info.value).startswith(
                "feed: http://127.0.0.1:8080/feed.xml: 127.0.0.1 asked to wait until "
            )
            # Another host is not held back.
            await fetcher.fetch("http://127.0.0.2/feed.xml", source="other")

    asyncio.run(main())
    assert sent == ["http://127.0.0.2/feed.xml"]


def test_a_page_whose_article_is_all_unsafe_markup_is_a_parse_error() -> None:
    page = Page(
        "https://x.org/a",
        # Markup the extractor keeps but nh3 drops with its content.
        b"<html><body><div class='story'><object data='x.swf'>Flash needed</object>"
        b"<p><applet code='x.class'>Run the applet</applet></p>"
        b"<noembed>no embed</noembed></div></body></html>",
        {"content-type": "text/html"},
    )
    with pytest.raises(ParseError) as info:
        extract_page(page, source="s", selector="div.story")
    assert str(info.value) == "s: https://x.org/a: no article text left after sanitising"


def test_loading_a_config_without_selectors_loads_no_selector_engine(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "sources:\n  - {name: news, url: 'https://news.example.org/rss', full_content: true}\n"
    )
    probe = (
        "import sys\nfrom aggregator.config import load_config\n"
        f"load_config({str(config)!r})\n"
        "print([m for m in ('bs4', 'soupsieve') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
