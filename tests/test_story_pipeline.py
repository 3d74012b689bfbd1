"""Story ids and published ``updated`` through the real pipeline, read back by feedparser.

A loopback HTTP server serves successive versions of a feed; the pipeline
polls it with an injected clock, and the rendered Atom feeds of a
``updates: replace`` and a ``updates: resurface`` topic are parsed by
feedparser, as a subscriber would read them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import load_config
from aggregator.model import Outcome
from aggregator.update import Context, open_context, render_all, update_all

from .conftest import run_cli

T1 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
STRIKE = (
    "Zebra keepers at the city zoo walked out on Monday over pay, the union said, "
    "closing the savanna house to visitors for the first time in its history."
)
GRANT = "The zebra foundation awarded its annual research grant to a team studying stripes."


def _rss(*, strike: str, link_query: str = "", spacing: str = " ") -> bytes:
    """Two items: a dated one with a link, and one with no date (its date is the fetch time)."""
    body = strike.replace(" ", spacing)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Zebra Times</title><link>http://example.org/</link><description>d</description>
<item><title>Zebra keepers strike</title><guid>strike-1</guid>
<link>http://example.org/news/strike{link_query}</link>
<pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate><description>{body}</description></item>
<item><title>Zebra grant awarded</title><guid>grant-1</guid>
<link>http://example.org/news/grant</link><description>{GRANT}</description></item>
</channel></rss>
""".encode()


@pytest.fixture
def served(httpserver: HTTPServer) -> Iterator[dict[str, bytes]]:
    """The feed the server answers with now (``served["body"]``); replace it to publish anew."""
    current = {"body": _rss(strike=STRIKE)}

    def handler(request: Request) -> Response:
        return Response(current["body"], content_type="application/rss+xml")

    httpserver.expect_request("/zebra.rss").respond_with_handler(handler)
    yield current
    httpserver.clear()


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        "server: {base_url: 'http://127.0.0.1:8080/'}\n"
        "allow_networks: ['127.0.0.0/8']\n"
        f"sources:\n  - {{name: zebra, url: '{url}'}}\n"
        "topics:\n"
        "  - {name: quiet, query: zebra, updates: replace}\n"
        "  - {name: loud, query: zebra, updates: resurface}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def zebra(
    served: dict[str, bytes], httpserver: HTTPServer, tmp_path: Path
) -> Iterator[tuple[Context, list[datetime]]]:
    """A pipeline context over the served feed, and its clock (``now[0]``, set by the test)."""
    now = [T1]
    config = load_config(_config(tmp_path, httpserver.url_for("/zebra.rss")))
    ctx = open_context(config, clock=lambda: now[0])
    yield ctx, now
    ctx.close()


def _poll(ctx: Context) -> None:
    async def go() -> None:
        (result,) = await update_all(ctx, list(ctx.config.sources))
        # NOT_MODIFIED: a 200 body identical to the last one parsed is not parsed again.
        assert result.outcome in (Outcome.OK, Outcome.NOT_MODIFIED), result.error

    asyncio.run(go())


def _published(ctx: Context) -> dict[str, list[tuple[str, str]]]:
    """Topic -> [(entry title, atom:updated)] in feed order, as feedparser reads them."""
    docs = render_all(ctx)
    out = {}
    for topic in ("quiet", "loud"):
        body = next(d.body for path, d in docs.items() if path.endswith(f"{topic}.atom"))
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.bozo_exception
        out[topic] = [(e.title, e.updated) for e in parsed.entries]
    return out


def test_cosmetic_changes_keep_updated_a_text_change_moves_it(
    zebra: tuple[Context, list[datetime]], served: dict[str, bytes]
) -> None:
    ctx, now = zebra
    _poll(ctx)
    first = _published(ctx)
    ids = ctx.store.story_ids()
    # The undated item is dated by its fetch; the dated one is older.
    assert [t for t, _ in first["quiet"]] == ["Zebra grant awarded", "Zebra keepers strike"]
    assert first["loud"] == first["quiet"]

    # Cosmetic: whitespace runs in the text, tracking parameters on the link,
    # a later fetch time for the undated item. Nothing a subscriber sees moves.
    served["body"] = _rss(
        strike=STRIKE,
        link_query="?utm_source=rss&amp;utm_medium=feed&amp;utm_campaign=zoo",
        spacing=" \n   ",
    )
    now[0] = T1 + timedelta(hours=3)
    _poll(ctx)
    assert _published(ctx) == first
    assert ctx.store.story_ids() == ids

    # A real text change: the story's updated moves forward in both topics;
    # replace keeps its place, resurface lifts it to the top.
    served["body"] = _rss(strike=STRIKE.replace("on Monday", "on Monday and Tuesday"))
    now[0] = T1 + timedelta(hours=6)
    _poll(ctx)
    after = _published(ctx)
    assert ctx.store.story_ids() == ids
    before = dict(first["quiet"])
    for topic, order in (
        ("quiet", ["Zebra grant awarded", "Zebra keepers strike"]),
        ("loud", ["Zebra keepers strike", "Zebra grant awarded"]),
    ):
        assert [t for t, _ in after[topic]] == order
        updated = dict(after[topic])
        assert updated["Zebra grant awarded"] == before["Zebra grant awarded"]
        assert updated["Zebra keepers strike"] > before["Zebra keepers strike"]


def test_story_ids_survive_a_301_move_to_new_links(
    zebra: tuple[Context, list[datetime]], httpserver: HTTPServer
) -> None:
    ctx, now = zebra
    _poll(ctx)
    ids = ctx.store.story_ids()
    published = {e.id for e in feedparser.parse(_atom(ctx)).entries}
    assert len(ids) == len(published) == 2

    # The feed moves for good; its entries keep their guids, their links a new host.
    moved = _rss(strike=STRIKE).replace(b"http://example.org/news/", b"https://zebra.example/")
    httpserver.clear_all_handlers()
    httpserver.expect_request("/zebra.rss").respond_with_response(
        Response(status=301, headers={"Location": httpserver.url_for("/moved.rss")})
    )
    httpserver.expect_request("/moved.rss").respond_with_data(
        moved, content_type="application/rss+xml"
    )
    for hours in (1, 2, 3):
        now[0] = T1 + timedelta(hours=hours)
        _poll(ctx)
    state = ctx.store.get_state("zebra")
    assert state is not None and state.location == httpserver.url_for("/moved.rss")
    assert ctx.store.story_ids() == ids
    entries = feedparser.parse(_atom(ctx)).entries
    assert {e.id for e in entries} == published
    assert {e.link for e in entries} == {
        "https://zebra.example/strike",
        "https://zebra.example/grant",
    }


def _atom(ctx: Context) -> bytes:
    return next(d.body for path, d in render_all(ctx).items() if path.endswith("quiet.atom"))


def test_stories_json_lists_links_and_guids_as_published(
    zebra: tuple[Context, list[datetime]],
    served: dict[str, bytes],
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    ctx, _now = zebra
    served["body"] = _rss(strike=STRIKE, link_query="?utm_source=rss&amp;id=7").replace(
        b"<guid>strike-1</guid>", b"<guid isPermaLink='false'>  strike-1 </guid>"
    )
    _poll(ctx)
    proc = run_cli(tmp_path / "aggregator.yaml", "stories", "--json")
    assert proc.returncode == 0, proc.stderr
    entries = {e["title"]: e for story in json.loads(proc.stdout) for e in story["entries"]}
    strike = entries["Zebra keepers strike"]
    assert strike["guid"] == strike["identity"] == "strike-1"
    assert strike["link_as_published"] == "http://example.org/news/strike?utm_source=rss&id=7"
    assert strike["link"] == "http://example.org/news/strike?id=7"
    assert strike["path"] is None
    # A permalink guid (RSS's default) is read as a URL, relative to the feed.
    grant = entries["Zebra grant awarded"]
    assert grant["guid"] == grant["identity"] == httpserver.url_for("/grant-1")
