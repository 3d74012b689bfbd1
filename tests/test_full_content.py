"""``full_content`` against a loopback site: a summary-only feed and cluttered article pages.

A threaded HTTP server on 127.0.0.1 serves the feed and the pages; the real
pipeline (fetcher, worker processes, writer, SQLite) updates the source; the
published Atom is read back with feedparser.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import Config, load_config
from aggregator.errors import BackoffError
from aggregator.model import Outcome, SourceResult
from aggregator.publish.paths import PathKind, topic_path
from aggregator.update import Context, make_fetcher, open_context, render_all, update_all

from ._aserver import Request as RawRequest
from ._aserver import ScriptedServer, respond
from .atomcheck import check_atom
from .conftest import run_cli

#: words that appear only in a page's clutter: none may reach the content
CLUTTER = (
    "navclutter",
    "adclutter",
    "sidebarclutter",
    "commentclutter",
    "scriptclutter",
    "footerclutter",
    "shareclutter",
    "styleclutter",
)

_TEXT = (
    "rangers counted foals near the northern waterhole while drought tightened its grip "
    "across plains where lions stalked weary herds and vultures circled patiently above "
    "dry riverbeds farmers argued about fences tourists photographed migrating wildebeest "
    "scientists fitted collars measuring grazing distances rainfall forecasts promised "
    "little relief before october elders recalled similar seasons decades earlier"
)
_WORDS = _TEXT.split()


def article_page(n: int, *, marked: bool = True) -> bytes:
    """A news page: the article's paragraphs amid every kind of clutter.

    ``marked`` pages wrap the text in ``<article>`` (our extractor takes it);
    the others are div soup, which goes to trafilatura.
    """
    # Each page tells its own story in its own words, so no two merge as near duplicates.
    words = random.Random(n).sample(_WORDS, len(_WORDS))
    paragraphs = "".join(
        f"<p>Zebra paragraph {n}.{k}: " + " ".join(words[k * 7 + j] for j in range(9)) + ".</p>"
        for k in range(1, 5)
    )
    body = (
        f"{paragraphs}<p>See the <a href='/maps/{n}.html'>route map</a>.</p>"
        f"<figure><img src='../img/zebra{n}.jpg' alt='herd'></figure>"
        "<div class='share-tools'>shareclutter tweet this</div>"
    )
    main = (
        f"<article><h1>Zebra story {n}</h1>{body}</article>"
        if marked
        else f"<div class='c'><div class='text'><h2>Zebra story {n}</h2>{body}</div></div>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Zebra story {n} | Savanna News</title>
<style>.styleclutter {{ color: red }}</style>
<script>var scriptclutter = 1;</script></head>
<body>
<header><nav><a href="/">navclutter home</a> <a href="/world">navclutter world</a></nav></header>
<div class="ad-banner">adclutter buy zebra stripes today</div>
<aside class="sidebar"><h3>Trending</h3><p>sidebarclutter most read lions story</p></aside>
{main}
<section id="comments" class="comments"><p>commentclutter first!</p></section>
<script>document.write("scriptclutter")</script>
<footer><p>footerclutter copyright Savanna News</p></footer>
</body></html>""".encode()


def rss(base: str, entries: list[tuple[str, str]]) -> bytes:
    """A summary-only RSS feed: each entry a one-line teaser and a link."""
    items = "".join(
        f"<item><title>Zebra story {guid}</title><link>{base}{path}</link><guid>{guid}</guid>"
        f"<pubDate>Mon, 02 Mar 2026 1{i}:00:00 GMT</pubDate>"
        f"<description>The herd of story {guid} crossed the river&#8230; "
        f"&lt;a href='{base}{path}'&gt;Read more&lt;/a&gt;</description></item>"
        for i, (guid, path) in enumerate(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Savanna News</title><link>{base}/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


@pytest.fixture
def site() -> Iterator[HTTPServer]:
    """A threaded loopback server: a page that stalls must not stall the others."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def opened() -> Iterator[list[Context]]:
    contexts: list[Context] = []
    yield contexts
    for ctx in contexts:
        ctx.close()


def write_config(
    tmp_path: Path,
    feed_url: str,
    *,
    full_content: str = "true",
    extra: str = "",
    source_extra: str = "",
) -> Config:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        "server: {base_url: 'http://127.0.0.1:8080/'}\n"
        # Loopback 127.0.0.1 only: 127.0.0.2 stays a refused address.
        "allow_networks: ['127.0.0.1/32']\n"
        f"{extra}"
        "sources:\n"
        f"  - {{name: savanna, url: '{feed_url}', full_content: {full_content}{source_extra}}}\n"
        "topics:\n  - {name: zebra, query: zebra}\n"
    )
    return load_config(path)


def update(ctx: Context) -> SourceResult:
    return asyncio.run(update_all(ctx))[0]


def published(ctx: Context) -> dict[str, feedparser.FeedParserDict]:
    """The topic's published Atom feed (valid RFC 4287), read by feedparser: title -> entry."""
    docs = render_all(ctx)
    body = docs[topic_path("zebra", PathKind.ATOM)].body
    check_atom(body, name="zebra.atom")
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    return {e.title: e for e in parsed.entries}


def content_of(entry: feedparser.FeedParserDict) -> str:
    return str(entry.content[0].value)


def requests_to(server: HTTPServer) -> Counter[str]:
    return Counter(request.path for request, _ in server.log)


def serve_site(server: HTTPServer, guids: list[str], *, marked: bool = True) -> str:
    """Serve a feed of ``guids`` and their pages; return the feed's URL."""
    base = server.url_for("").rstrip("/")
    entries = [(g, f"/news/{g}.html") for g in guids]
    server.expect_request("/feed.xml").respond_with_data(
        rss(base, entries), content_type="application/rss+xml"
    )
    for n, (_, path) in enumerate(entries):
        server.expect_request(path).respond_with_data(
            article_page(n, marked=marked), content_type="text/html; charset=utf-8"
        )
    return server.url_for("/feed.xml")


@pytest.mark.parametrize("marked", [True, False], ids=["article-markup", "div-soup"])
def test_articles_replace_teasers_without_clutter(
    marked: bool, site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    feed_url = serve_site(site, ["a", "b", "c"], marked=marked)
    ctx = open_context(write_config(tmp_path, feed_url))
    opened.append(ctx)

    result = update(ctx)

    assert result.outcome is Outcome.OK, result.error
    assert (result.new, result.problems) == (3, ())
    entries = published(ctx)
    assert set(entries) == {"Zebra story a", "Zebra story b", "Zebra story c"}
    base = site.url_for("").rstrip("/")
    for n, guid in enumerate(["a", "b", "c"]):
        entry = entries[f"Zebra story {guid}"]
        content = content_of(entry)
        for k in range(1, 5):
            assert f"Zebra paragraph {n}.{k}" in content
        for word in CLUTTER:
            assert word not in content, (word, content)
        # Relative links and images became absolute against the page.
        assert f'href="{base}/maps/{n}.html"' in content
        assert f'src="{base}/img/zebra{n}.jpg"' in content
        # The feed's teaser is the summary.
        assert entry.summary.startswith(f"The herd of story {guid} crossed the river")


def test_each_page_is_fetched_once_across_updates_and_restarts(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    base = site.url_for("").rstrip("/")
    versions = [
        rss(base, [("a", "/news/a.html"), ("b", "/news/b.html")]),
        # Next poll: a new entry, and the old ones' teasers edited.
        rss(base, [("a", "/news/a.html"), ("b", "/news/b.html"), ("c", "/news/c.html")]).replace(
            b"crossed the river", b"crossed the wide river"
        ),
    ]
    served = {"feed": versions[0]}
    site.expect_request("/feed.xml").respond_with_handler(
        lambda _r: Response(served["feed"], content_type="application/rss+xml")
    )
    for n, guid in enumerate(["a", "b", "c"]):
        site.expect_request(f"/news/{guid}.html").respond_with_data(
            article_page(n), content_type="text/html"
        )
    config = write_config(tmp_path, f"{base}/feed.xml")
    ctx = open_context(config)
    opened.append(ctx)

    assert update(ctx).new == 2
    assert update(ctx).outcome is Outcome.NOT_MODIFIED  # same bytes: not even parsed
    served["feed"] = versions[1]
    third = update(ctx)
    assert (third.new, third.problems) == (1, ())
    ctx.close()
    opened.remove(ctx)
    # A restart: a new context on the same store, and the feed changes again.
    served["feed"] = versions[1].replace(b"wide river", b"wide cold river")
    again = open_context(config)
    opened.append(again)
    fourth = update(again)
    assert fourth.outcome is Outcome.OK and fourth.new == 0

    hits = requests_to(site)
    assert hits["/feed.xml"] == 4
    assert [hits[f"/news/{g}.html"] for g in "abc"] == [1, 1, 1]
    entries = published(again)
    # Entries kept their articles; the edited teaser is their new summary.
    for n, guid in enumerate("abc"):
        entry = entries[f"Zebra story {guid}"]
        assert f"Zebra paragraph {n}.1" in content_of(entry)
        assert "wide cold river" in entry.summary


@pytest.fixture
def stall() -> Iterator[threading.Event]:
    """Released when the test is done: a stalled handler never outlives it."""
    event = threading.Event()
    yield event
    event.set()


def test_failures_keep_the_teaser_and_record_a_problem(
    site: HTTPServer, tmp_path: Path, opened: list[Context], stall: threading.Event
) -> None:
    base = site.url_for("").rstrip("/")
    port = site.port
    entries = [
        ("ok", "/news/ok.html"),
        ("missing", "/news/missing.html"),
        ("slow", "/news/slow.html"),
        ("huge", "/news/huge.html"),
    ]
    feed = rss(base, entries).replace(
        b"</channel>",
        # A page on a refused address (loopback outside allow_networks).
        f"<item><title>Zebra story refused</title><link>http://127.0.0.2:{port}/news/r.html"
        "</link><guid>refused</guid><description>The herd of story refused crossed the "
        "river&#8230;</description></item></channel>".encode(),
    )
    served = {"feed": feed}
    site.expect_request("/feed.xml").respond_with_handler(
        lambda _r: Response(served["feed"], content_type="application/rss+xml")
    )
    site.expect_request("/news/ok.html").respond_with_data(
        article_page(0), content_type="text/html"
    )
    site.expect_request("/news/missing.html").respond_with_data("gone", status=404)

    def slow(_request: Request) -> Response:
        # Holds the page past the source's deadline: released when the test ends.
        stall.wait(60)
        return Response(article_page(1), content_type="text/html")

    site.expect_request("/news/slow.html").respond_with_handler(slow)
    site.expect_request("/news/huge.html").respond_with_data(
        article_page(2) + b"<!--" + b"x" * 300_000 + b"-->", content_type="text/html"
    )
    config = write_config(
        tmp_path, f"{base}/feed.xml", source_extra=", timeout: 5s, max_bytes: 200KiB"
    )
    ctx = open_context(config)
    opened.append(ctx)

    result = update(ctx)
    stall.set()

    assert result.outcome is Outcome.OK, result.error
    assert result.new == 5
    # One line per page, in the feed's order, each naming the source and the page.
    assert len(result.problems) == 4, result.problems
    assert all(p.startswith("savanna: full_content: ") for p in result.problems)
    assert all(p.endswith("; kept the feed's text") for p in result.problems)
    missing, slow, huge, refused = result.problems
    assert "missing.html: HTTP 404" in missing
    assert "slow.html: no complete response within 5 s" in slow
    assert "huge.html: body larger than 204800 bytes" in huge
    assert "127.0.0.2" in refused and "loopback address 127.0.0.2, refused" in refused
    # Nothing was sent to the refused address.
    assert all(request.host.split(":")[0] == "127.0.0.1" for request, _ in site.log)

    entries = published(ctx)
    assert "Zebra paragraph 0.1" in content_of(entries["Zebra story ok"])
    for guid in ("missing", "slow", "huge", "refused"):
        content = content_of(entries[f"Zebra story {guid}"])
        assert "Zebra paragraph" not in content
        assert f"The herd of story {guid} crossed the river" in content

    # A failed page is not tried again; the next new entry is.
    served["feed"] = feed.replace(
        b"</channel>",
        f"<item><title>Zebra story next</title><link>{base}/news/next.html</link>"
        "<guid>next</guid><description>Next teaser&#8230;</description></item>"
        "</channel>".encode(),
    )
    site.expect_request("/news/next.html").respond_with_data(
        article_page(7), content_type="text/html"
    )
    second = update(ctx)
    assert (second.new, second.unchanged, second.problems) == (1, 5, ())
    after = published(ctx)
    assert "Zebra paragraph 7.1" in content_of(after["Zebra story next"])
    # The entries held before are unchanged, still published with the bodies they had.
    assert len(after) == 6
    assert "Zebra paragraph 0.1" in content_of(after["Zebra story ok"])
    assert "The herd of story huge" in content_of(after["Zebra story huge"])
    hits = requests_to(site)
    assert [hits[f"/news/{g}.html"] for g in ("missing", "slow", "huge", "next")] == [1, 1, 1, 1]


def test_selector_overrides_the_extractor(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    base = site.url_for("").rstrip("/")
    site.expect_request("/feed.xml").respond_with_data(
        rss(base, [("s", "/news/s.html")]), content_type="application/rss+xml"
    )
    # The <article> holds a promo; the story is in .story-body, outside it.
    page = article_page(0).replace(
        b"<article>",
        b"<article><p>Zebra promo text that the extractor would pick: subscribe now to "
        b"read every savanna story first, with offers and more offers.</p></article>"
        b"<div class='story-body'><p>Zebra chosen body text.</p>"
        b"<p>Its second paragraph, <a href='rel.html'>linked</a>.</p>"
        b"<div class='share'>shareclutter</div></div><article>",
    )
    site.expect_request("/news/s.html").respond_with_data(page, content_type="text/html")
    config = write_config(tmp_path, f"{base}/feed.xml", full_content="{selector: 'div.story-body'}")
    ctx = open_context(config)
    opened.append(ctx)

    result = update(ctx)

    assert (result.outcome, result.problems) == (Outcome.OK, ())
    content = content_of(published(ctx)["Zebra story s"])
    assert "Zebra chosen body text." in content
    assert f'href="{base}/news/rel.html"' in content
    assert "promo" not in content
    assert "Zebra paragraph" not in content
    assert "shareclutter" not in content


def test_selector_that_matches_nothing_keeps_the_teaser(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    base = site.url_for("").rstrip("/")
    serve_site(site, ["n"])
    config = write_config(tmp_path, f"{base}/feed.xml", full_content="{selector: '#nowhere'}")
    ctx = open_context(config)
    opened.append(ctx)

    result = update(ctx)

    assert result.problems == (
        f"savanna: full_content: {base}/news/n.html: nothing matches the selector '#nowhere'; "
        "kept the feed's text",
    )
    assert "The herd of story n" in content_of(published(ctx)["Zebra story n"])


def test_429_on_a_page_backs_the_whole_host_off(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    base = site.url_for("").rstrip("/")
    feed_url = serve_site(site, ["p", "q", "r"])
    # Replace the first page's answer: too many requests, come back in 2 minutes.
    site.clear()
    site.expect_request("/feed.xml").respond_with_data(
        rss(base, [(g, f"/news/{g}.html") for g in "pqr"]), content_type="application/rss+xml"
    )
    site.expect_request("/news/p.html").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    for n, g in enumerate("qr", start=1):
        site.expect_request(f"/news/{g}.html").respond_with_data(
            article_page(n), content_type="text/html"
        )
    site.expect_request("/other.xml").respond_with_data(
        rss(base, []), content_type="application/rss+xml"
    )
    # One request at a time to the host: the pages go in feed order.
    config = write_config(tmp_path, feed_url, extra="fetch: {max_per_host: 1}\n")
    ctx = open_context(config)
    opened.append(ctx)
    started = datetime.now(UTC)

    async def go() -> tuple[SourceResult, BaseException | None]:
        async with make_fetcher(config) as fetcher:
            shared = replace(ctx, fetcher=fetcher)
            result = (await update_all(shared))[0]
            try:
                # Any other fetch from that host now waits too, feeds included.
                await fetcher.fetch(f"{base}/other.xml", source="other")
            except BackoffError as exc:
                return result, exc
            return result, None

    result, refused = asyncio.run(go())

    assert result.outcome is Outcome.OK, result.error
    assert result.problems == (
        f"savanna: full_content: {base}/news/p.html: HTTP 429 TOO MANY REQUESTS; "
        "kept the feed's text",
    )
    # p failed (teaser kept); q and r were not tried: held for the next poll.
    assert result.new == 1
    assert isinstance(refused, BackoffError) and refused.retry_after >= started
    hits = requests_to(site)
    assert (hits["/news/q.html"], hits["/news/r.html"], hits["/other.xml"]) == (0, 0, 0)
    state = ctx.store.get_state("savanna")
    assert state is not None and state.next_due_at is not None
    assert state.next_due_at >= started + timedelta(seconds=110)
    # The body is parsed again next time, for the held entries.
    assert state.body_hash is None

    # The host's wait is over (a new fetcher): the held entries get their pages.
    later = update(ctx)
    assert (later.new, later.problems) == (2, ())
    entries = published(ctx)
    assert "Zebra paragraph 1.1" in content_of(entries["Zebra story q"])
    assert "Zebra paragraph 2.1" in content_of(entries["Zebra story r"])
    assert requests_to(site)["/news/p.html"] == 1


def test_without_full_content_no_page_is_fetched(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    feed_url = serve_site(site, ["x"])
    ctx = open_context(write_config(tmp_path, feed_url, full_content="false"))
    opened.append(ctx)

    assert update(ctx).new == 1

    assert requests_to(site) == Counter({"/feed.xml": 1})
    assert "The herd of story x" in content_of(published(ctx)["Zebra story x"])


def test_sources_suggests_full_content_for_a_teaser_feed(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    feed_url = serve_site(site, ["a", "b", "c", "d"])
    config = write_config(tmp_path, feed_url, full_content="false")
    ctx = open_context(config)
    opened.append(ctx)
    assert update(ctx).new == 4
    ctx.close()
    opened.remove(ctx)

    proc = run_cli(config.path, "sources", "--json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["full_content"] is False
    assert row["hint"].startswith("4 of its last 4 entries look like teasers")
    table = run_cli(config.path, "sources")
    assert "hint: savanna: 4 of its last 4 entries look like teasers" in table.stdout

    # With full_content set (and the articles fetched), no hint.
    enabled = write_config(tmp_path, feed_url)
    proc = run_cli(enabled.path, "sources", "--json")
    [row] = json.loads(proc.stdout)
    assert (row["full_content"], row["hint"]) == (True, None)


def test_pages_share_the_hosts_limit_with_its_feeds(tmp_path: Path, opened: list[Context]) -> None:
    async def handler(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.002)  # keeps requests overlapping so the limit is exercised
        base = f"http://127.0.0.1:{writer.get_extra_info('sockname')[1]}"
        if request.path.endswith(".xml"):
            kind = request.path.strip("/")[0]
            entries = [(f"{kind}{n}", f"/news/{kind}{n}.html") for n in range(6)]
            await respond(writer, 200, rss(base, entries), {"Content-Type": "application/rss+xml"})
        else:
            n = int(request.path.rsplit("/", 1)[1][1:].split(".")[0])
            await respond(writer, 200, article_page(n), {"Content-Type": "text/html"})

    async def main() -> list[SourceResult]:
        async with ScriptedServer(handler) as server:
            path = tmp_path / "aggregator.yaml"
            path.write_text(
                f"data_dir: {tmp_path / 'var'}\n"
                "allow_networks: ['127.0.0.1/32']\n"
                "fetch: {max_per_host: 1}\n"
                "dedup: {enabled: false}\n"
                "sources:\n"
                f"  - {{name: a, url: '{server.url('/a.xml')}', full_content: true}}\n"
                f"  - {{name: b, url: '{server.url('/b.xml')}', full_content: true}}\n"
                "topics:\n  - {name: zebra, query: zebra}\n"
            )
            ctx = open_context(load_config(path))
            opened.append(ctx)
            results = await update_all(ctx)
            assert server.requests == 2 + 12
            assert server.peak == 1
            return results

    results = asyncio.run(main())
    assert [(r.outcome, r.new, r.problems) for r in results] == [(Outcome.OK, 6, ())] * 2


def test_an_update_fetches_at_most_max_pages_and_the_rest_wait(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    feed_url = serve_site(site, ["m", "n", "o"])
    ctx = open_context(write_config(tmp_path, feed_url, full_content="{max_pages: 2}"))
    opened.append(ctx)

    first = update(ctx)
    # The feed's first two new entries got their pages; the third waits, unpublished.
    assert (first.new, first.problems) == (2, ())
    assert set(published(ctx)) == {"Zebra story m", "Zebra story n"}
    state = ctx.store.get_state("savanna")
    assert state is not None and state.body_hash is None

    second = update(ctx)  # the same bytes: parsed again for the entry that waits
    assert (second.new, second.unchanged, second.problems) == (1, 2, ())
    assert "Zebra paragraph 2.1" in content_of(published(ctx)["Zebra story o"])
    hits = requests_to(site)
    assert [hits[f"/news/{g}.html"] for g in "mno"] == [1, 1, 1]


def test_the_poll_history_counts_the_pages_bytes_with_the_feeds(
    site: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    guids = ["a", "b", "c"]
    feed_url = serve_site(site, guids)
    ctx = open_context(write_config(tmp_path, feed_url))
    opened.append(ctx)

    result = update(ctx)

    assert result.outcome is Outcome.OK, result.error
    feed_bytes = len(rss(site.url_for("").rstrip("/"), [(g, f"/news/{g}.html") for g in guids]))
    page_bytes = sum(len(article_page(n)) for n in range(len(guids)))
    assert result.received == feed_bytes + page_bytes
    [poll] = ctx.store.poll_history(["savanna"])["savanna"]
    assert poll.received == feed_bytes + page_bytes
