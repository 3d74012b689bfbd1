"""Remote sources through the real pipeline: config -> store -> fetcher -> local servers.

Every test runs a real HTTP server on 127.0.0.1 and admits loopback with
``allow_networks`` (except the SSRF test, which checks the refusal).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config import Config, load_config
from aggregator.model import Outcome, SourceResult, SourceSpec
from aggregator.update import Context, open_context, runner, update_all

from ._aserver import Request as RawRequest
from ._aserver import ScriptedServer, respond, second_loopback
from .conftest import run_cli

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Zebra Times</title><link>http://example.org/</link><description>d</description>
<item><title>Zebra one</title><link>http://example.org/1</link><guid>z1</guid>
<pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate><description>First zebra story.</description></item>
<item><title>Zebra two</title><link>http://example.org/2</link><guid>z2</guid>
<pubDate>Tue, 03 Mar 2026 11:00:00 GMT</pubDate>
<description>Second zebra story.</description></item>
</channel></rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Zebra Atom</title><id>urn:zebra:atom</id><updated>2026-03-04T09:00:00Z</updated>
<link href="http://example.org/atom-site"/>
<entry><title>Zebra atom entry</title><id>urn:zebra:a1</id>
<link href="http://example.org/a1"/><updated>2026-03-04T09:00:00Z</updated>
<summary>An atom zebra.</summary></entry>
</feed>
"""

HTML_PAGE = b"""<!doctype html>
<html><head><title>Zebra site</title>
<link rel="alternate" type="application/atom+xml" title="Zebra Atom" href="/feeds/atom.xml">
</head><body><p>Welcome</p></body></html>
"""


def json_feed(version: str) -> bytes:
    """A JSON Feed document; 1.0 uses ``author``, 1.1 ``authors`` and ``language``."""
    doc: dict[str, object] = {
        "version": f"https://jsonfeed.org/version/{version}",
        "title": f"Zebra JSON {version}",
        "home_page_url": "http://example.org/json",
        "items": [
            {
                "id": f"j{version}-1",
                "url": f"http://example.org/json/{version}/1",
                "title": f"Zebra json {version} first",
                "content_html": "<p>Zebra content one.</p>",
                "date_published": "2026-03-05T08:00:00Z",
            },
            {
                "id": f"j{version}-2",
                "url": f"http://example.org/json/{version}/2",
                "title": f"Zebra json {version} second",
                "content_text": "Zebra content two.",
                "date_published": "2026-03-06T08:30:00+02:00",
            },
        ],
    }
    if version == "1":
        doc["author"] = {"name": "Old Author"}
    else:
        doc["authors"] = [{"name": "New Author"}]
        doc["language"] = "en"
    return json.dumps(doc).encode()


def write_config(
    tmp_path: Path,
    sources: list[str],
    *,
    allow: bool = True,
    extra: str = "",
) -> Path:
    lines = [
        f"data_dir: {tmp_path / 'var'}",
        "server: {base_url: 'http://127.0.0.1:8080/'}",
    ]
    if allow:
        lines.append("allow_networks: ['127.0.0.0/8']")
    lines.append(extra)
    lines.append("sources:")
    lines.extend(f"  - {s}" for s in sources)
    lines.append("topics:\n  - {name: zebra, query: zebra}")
    path = tmp_path / "aggregator.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def served(tmp_path: Path, httpserver: HTTPServer, sources: dict[str, str]) -> Config:
    """The config of sources named as the keys, at the server's paths as the values."""
    return load_config(
        write_config(
            tmp_path,
            [
                f"{{name: {name}, url: '{httpserver.url_for(path)}'}}"
                for name, path in sources.items()
            ],
        )
    )


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[Context]]:
    """Contexts opened by a test, closed after it."""
    contexts: list[Context] = []
    yield contexts
    for ctx in contexts:
        ctx.close()


def context(config: Config, opened: list[Context]) -> Context:
    ctx = open_context(config)
    opened.append(ctx)
    return ctx


def spec(config: Config, name: str) -> SourceSpec:
    return next(s for s in config.sources if s.name == name)


def poll(ctx: Context, name: str) -> SourceResult:
    """One update of one source with a fetcher made and closed for it."""

    async def go() -> SourceResult:
        results = await update_all(ctx, [spec(ctx.config, name)])
        return results[0]

    return asyncio.run(go())


def titles(ctx: Context) -> list[str]:
    return sorted(s.item.title for s in ctx.store.topic_stories("zebra"))


# -- formats and conditional GET -------------------------------------------------


def test_rss_ingests_then_304_sends_validators(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    seen: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(
            RSS,
            content_type="application/rss+xml",
            headers={"ETag": '"v1"', "Last-Modified": "Tue, 03 Mar 2026 11:00:00 GMT"},
        )

    httpserver.expect_request("/rss").respond_with_handler(handler)
    config = load_config(
        write_config(tmp_path, [f"{{name: rss, url: '{httpserver.url_for('/rss')}'}}"])
    )
    ctx = context(config, opened)

    first = asyncio.run(update_all(ctx))[0]
    assert first.outcome is Outcome.OK, first.error
    assert (first.new, first.http_status) == (2, 200)
    assert titles(ctx) == ["Zebra one", "Zebra two"]
    state = ctx.store.get_state("rss")
    assert state is not None
    assert state.etag == '"v1"'
    assert state.last_modified == "Tue, 03 Mar 2026 11:00:00 GMT"
    assert state.last_status == 200

    second = asyncio.run(update_all(ctx))[0]
    assert second.outcome is Outcome.NOT_MODIFIED
    assert (second.new, second.updated, second.http_status) == (0, 0, 304)
    assert seen[1].get("If-None-Match") == '"v1"'
    assert seen[1].get("If-Modified-Since") == "Tue, 03 Mar 2026 11:00:00 GMT"
    assert "If-None-Match" not in seen[0]
    state = ctx.store.get_state("rss")
    assert state is not None and state.etag == '"v1"'
    assert state.last_outcome is Outcome.NOT_MODIFIED
    assert titles(ctx) == ["Zebra one", "Zebra two"]


@pytest.mark.parametrize("version", ["1", "1.1"])
def test_json_feed_ingests(
    version: str, httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_request("/feed.json").respond_with_data(
        json_feed(version), content_type="application/feed+json"
    )
    url = httpserver.url_for("/feed.json")
    config = load_config(write_config(tmp_path, [f"{{name: jf, url: '{url}'}}"]))
    ctx = context(config, opened)
    result = poll(ctx, "jf")
    assert result.outcome is Outcome.OK, result.error
    assert result.new == 2
    stories = {s.item.title: s for s in ctx.store.topic_stories("zebra")}
    assert set(stories) == {f"Zebra json {version} first", f"Zebra json {version} second"}
    first = stories[f"Zebra json {version} first"].item
    second = stories[f"Zebra json {version} second"].item
    assert first.link == f"http://example.org/json/{version}/1"
    assert second.link == f"http://example.org/json/{version}/2"
    assert first.published == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert second.published == datetime(2026, 3, 6, 6, 30, tzinfo=UTC)
    assert "Zebra content one." in first.content_html
    assert "Zebra content two." in second.content_html
    assert first.origin is not None and first.origin.title == f"Zebra JSON {version}"
    assert first.authors == (("Old Author",) if version == "1" else ("New Author",))


# -- HTML discovery ----------------------------------------------------------------


def test_html_page_discovers_feed(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_request("/").respond_with_data(HTML_PAGE, content_type="text/html")
    httpserver.expect_request("/feeds/atom.xml").respond_with_data(
        ATOM, content_type="application/atom+xml"
    )
    page = httpserver.url_for("/")
    path = write_config(tmp_path, [f"{{name: site, url: '{page}'}}"])
    config = load_config(path)
    ctx = context(config, opened)
    result = poll(ctx, "site")
    assert result.outcome is Outcome.OK, result.error
    assert result.new == 1
    assert titles(ctx) == ["Zebra atom entry"]
    state = ctx.store.get_state("site")
    assert state is not None
    assert state.discovered_feed == httpserver.url_for("/feeds/atom.xml")
    assert state.location == page

    # The next poll goes straight to the discovered feed; the same bytes are not parsed again.
    before = len(httpserver.log)
    again = poll(ctx, "site")
    assert (again.outcome, again.http_status) == (Outcome.NOT_MODIFIED, 200), again.error
    assert [r.path for r, _ in httpserver.log[before:]] == ["/feeds/atom.xml"]
    ctx.close()
    opened.remove(ctx)

    proc = run_cli(path, "sources", "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["discovered_feed"] == httpserver.url_for("/feeds/atom.xml")
    assert row["last_outcome"] == "not-modified"
    assert row["items"] == 1
    assert row["location"] == page
    assert row["url_history"] == []


# -- redirects -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302])
def test_permanent_redirect_moves_after_n_polls(
    status: int, httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    new_url = httpserver.url_for("/new.rss")
    httpserver.expect_request("/old.rss").respond_with_response(
        Response(status=status, headers={"Location": new_url})
    )
    httpserver.expect_request("/new.rss").respond_with_data(RSS, content_type="application/rss+xml")
    old_url = httpserver.url_for("/old.rss")
    config = load_config(
        write_config(
            tmp_path,
            [f"{{name: moving, url: '{old_url}'}}"],
            extra="fetch: {permanent_redirect_polls: 2}",
        )
    )
    ctx = context(config, opened)

    first = poll(ctx, "moving")
    assert first.outcome is Outcome.OK, first.error
    state = ctx.store.get_state("moving")
    assert state is not None
    assert state.location == old_url
    assert state.url_history == ()
    if status == 301:
        assert (state.moved_to, state.moved_seen) == (new_url, 1)

    second = poll(ctx, "moving")
    assert second.outcome in (Outcome.OK, Outcome.NOT_MODIFIED), second.error
    state = ctx.store.get_state("moving")
    assert state is not None
    if status == 301:
        assert state.location == new_url
        assert state.url_history == (old_url,)
        assert (state.moved_to, state.moved_seen) == (None, 0)
        # The third poll asks the new URL directly.
        before = len(httpserver.log)
        poll(ctx, "moving")
        assert [r.path for r, _ in httpserver.log[before:]] == ["/new.rss"]
    else:
        for _ in range(3):
            poll(ctx, "moving")
        state = ctx.store.get_state("moving")
        assert state is not None
        assert state.location == old_url
        assert state.url_history == ()
        assert state.moved_to is None


# -- failures and backoff --------------------------------------------------------------


def test_gone_stops_polling(httpserver: HTTPServer, tmp_path: Path, opened: list[Context]) -> None:
    httpserver.expect_request("/gone").respond_with_data("gone", status=410)
    httpserver.expect_request("/ok").respond_with_data(RSS, content_type="application/rss+xml")
    config = served(tmp_path, httpserver, {"gone": "/gone", "fine": "/ok"})
    ctx = context(config, opened)
    gone, fine = asyncio.run(update_all(ctx))
    assert gone.outcome is Outcome.GONE
    assert gone.http_status == 410
    assert gone.error and "gone" in gone.error
    assert fine.outcome is Outcome.OK
    state = ctx.store.get_state("gone")
    assert state is not None
    assert state.gone is True
    assert state.last_status == 410
    far = datetime.now(UTC) + timedelta(days=3650)
    assert ctx.store.due_sources(far) == ["fine"]


def test_server_error_backs_off(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    config = load_config(
        write_config(
            tmp_path, [f"{{name: broken, url: '{httpserver.url_for('/broken')}', interval: 10m}}"]
        )
    )
    ctx = context(config, opened)
    delays: list[timedelta] = []
    for expected_failures in (1, 2, 3):
        started = datetime.now(UTC)
        result = poll(ctx, "broken")
        assert result.outcome is Outcome.ERROR
        assert result.http_status == 500
        assert result.error_class == "HTTPStatusError"
        state = ctx.store.get_state("broken")
        assert state is not None
        assert state.consecutive_failures == expected_failures
        assert state.last_error_class == "HTTPStatusError"
        assert state.next_due_at is not None
        assert state.next_due_at > started
        delays.append(state.next_due_at - started)
    # Exponential backoff (with jitter): the third wait is clearly longer than the first.
    assert delays[2] > delays[0]
    assert not ctx.store.due_sources(datetime.now(UTC))


def test_a_source_down_for_a_month_is_polled_and_the_others_go_on(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    """Its 41st failure in a row waits the backoff's cap (the 37th overflowed the
    delay's arithmetic and stopped the whole pass)."""
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    config = served(tmp_path, httpserver, {"broken": "/broken", "rss": "/rss"})
    ctx = context(config, opened)
    poll(ctx, "broken")
    state = ctx.store.get_state("broken")
    assert state is not None
    ctx.store.save_state(replace(state, consecutive_failures=40))
    started = datetime.now(UTC)

    results = asyncio.run(update_all(ctx))

    assert [r.outcome for r in results] == [Outcome.ERROR, Outcome.OK]
    assert results[0].error_class == "HTTPStatusError"
    assert results[1].new == 2
    state = ctx.store.get_state("broken")
    assert state is not None and state.next_due_at is not None
    assert state.consecutive_failures == 41
    # the cap (a day), lengthened by at most its jitter
    assert timedelta(hours=23) < state.next_due_at - started < timedelta(hours=36)


def test_a_bug_in_scheduling_one_source_fails_that_source_alone(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context], monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    httpserver.expect_request("/atom").respond_with_data(ATOM, content_type="application/atom+xml")
    config = served(tmp_path, httpserver, {"rss": "/rss", "atom": "/atom"})
    real = runner.next_due

    def next_due(**kwargs: Any) -> datetime:
        if kwargs["seed"] == "rss":
            raise OverflowError("a bug")
        return real(**kwargs)

    monkeypatch.setattr(runner, "next_due", next_due)
    ctx = context(config, opened)
    started = datetime.now(UTC)

    results = asyncio.run(update_all(ctx))

    assert [r.outcome for r in results] == [Outcome.ERROR, Outcome.OK]
    assert results[0].error_class == "OverflowError"
    assert "scheduling the next poll failed" in (results[0].error or "")
    # its entries were stored all the same, and it is due again after its interval
    assert titles(ctx) == ["Zebra atom entry", "Zebra one", "Zebra two"]
    state = ctx.store.get_state("rss")
    assert state is not None and state.next_due_at is not None
    assert state.consecutive_failures == 1
    assert timedelta(minutes=29) < state.next_due_at - started < timedelta(minutes=31)


def test_retry_after_is_honoured(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_request("/busy").respond_with_data(
        "busy", status=503, headers={"Retry-After": "120"}
    )
    config = load_config(
        write_config(
            tmp_path, [f"{{name: busy, url: '{httpserver.url_for('/busy')}', interval: 1m}}"]
        )
    )
    ctx = context(config, opened)
    before = datetime.now(UTC)
    result = poll(ctx, "busy")
    assert result.outcome is Outcome.ERROR
    assert result.http_status == 503
    state = ctx.store.get_state("busy")
    assert state is not None
    assert state.next_due_at is not None
    assert state.next_due_at >= before + timedelta(seconds=120)
    assert state.retry_after is not None
    assert state.retry_after >= before + timedelta(seconds=119)


# -- isolation -----------------------------------------------------------------------


def test_hanging_source_does_not_delay_others(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    """The slow source's server answers only once the fast source's update is saved.

    An engine that let the hanging fetch hold the others back would never save
    the fast source while the slow one hangs: the slow fetch would reach its
    deadline instead of an answer.
    """
    httpserver.expect_request("/ok").respond_with_data(RSS, content_type="application/rss+xml")
    ctx: Context | None = None

    def fast_saved() -> bool:
        assert ctx is not None
        return any(st.name == "fast" and st.last_attempt_at for st in ctx.store.states())

    async def hang_until_fast_saved(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        while not await asyncio.to_thread(fast_saved):
            await asyncio.sleep(0.05)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(RSS)
            + RSS
        )
        await writer.drain()

    async def go() -> list[SourceResult]:
        nonlocal ctx
        async with ScriptedServer(hang_until_fast_saved) as slow:
            config = load_config(
                write_config(
                    tmp_path,
                    [
                        f"{{name: slow, url: '{slow.url('/feed')}', timeout: 5m}}",
                        f"{{name: fast, url: '{httpserver.url_for('/ok')}'}}",
                    ],
                )
            )
            ctx = context(config, opened)
            return await update_all(ctx)

    slow_result, fast_result = asyncio.run(go())
    assert fast_result.outcome is Outcome.OK, fast_result.error
    assert slow_result.outcome is Outcome.OK, slow_result.error


def test_a_host_that_holds_its_requests_does_not_hold_back_another_hosts_sources(
    tmp_path: Path, opened: list[Context]
) -> None:
    """Sources queued behind a busy host leave the shared slots to other hosts' sources.

    120 sources on one host come first in the config; that host answers only
    once the other host's source is saved. An engine that let sources waiting
    for their host hold the shared slots (there are fewer than 120) would not
    start the other host's source until the first host answered.
    """
    other_host = second_loopback()
    ctx: Context | None = None
    waited_out = asyncio.Event()

    def fast_saved() -> bool:
        assert ctx is not None
        state = ctx.store.get_state("fast")
        return state is not None and state.last_attempt_at is not None

    async def busy_until_fast_saved(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        # Bounded only so that a failing engine fails in minutes, not hours:
        # every wait after the first gives up at once.
        deadline = asyncio.get_running_loop().time() + 120
        while not waited_out.is_set() and not await asyncio.to_thread(fast_saved):
            if asyncio.get_running_loop().time() > deadline:
                waited_out.set()
            await asyncio.sleep(0.02)
        await respond(writer, 304)

    async def fast(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, RSS, {"Content-Type": "application/rss+xml"})

    async def go() -> list[SourceResult]:
        nonlocal ctx
        async with (
            ScriptedServer(busy_until_fast_saved) as busy,
            ScriptedServer(fast, host=other_host) as other,
        ):
            sources = [f"{{name: busy{i}, url: '{busy.url(f'/{i}')}'}}" for i in range(120)]
            sources.append(f"{{name: fast, url: '{other.url('/feed')}'}}")
            config = load_config(
                write_config(
                    tmp_path, sources, extra="fetch: {max_connections: 2, max_per_host: 1}"
                )
            )
            ctx = context(config, opened)
            return await update_all(ctx)

    results = asyncio.run(go())
    assert not waited_out.is_set(), "the other host's source waited for the busy host"
    assert results[-1].outcome is Outcome.OK, results[-1].error
    assert {r.outcome for r in results[:-1]} == {Outcome.NOT_MODIFIED}


def test_hanging_source_fails_at_its_deadline(tmp_path: Path, opened: list[Context]) -> None:
    async def hang(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # until the client gives up and the server stops

    async def go() -> SourceResult:
        async with ScriptedServer(hang) as slow:
            config = load_config(
                write_config(tmp_path, [f"{{name: slow, url: '{slow.url('/feed')}', timeout: 1s}}"])
            )
            return (await update_all(context(config, opened)))[0]

    result = asyncio.run(go())
    assert result.outcome is Outcome.ERROR
    assert result.error_class == "DeadlineError"
    assert result.error and "slow" in result.error
    # The deadline is never cut short (a loaded machine may only make it later).
    assert result.duration >= 1.0


# -- SSRF ----------------------------------------------------------------------------


def test_loopback_refused_without_allow_networks(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    config = load_config(
        write_config(
            tmp_path, [f"{{name: inside, url: '{httpserver.url_for('/rss')}'}}"], allow=False
        )
    )
    ctx = context(config, opened)
    result = poll(ctx, "inside")
    assert result.outcome is Outcome.ERROR
    assert result.error_class == "BlockedAddressError"
    assert result.error is not None
    assert "\n" not in result.error
    assert "inside" in result.error
    assert httpserver.log == []
    state = ctx.store.get_state("inside")
    assert state is not None and state.last_error_class == "BlockedAddressError"


def _one_request_at_a_time(
    httpserver: HTTPServer,
    tmp_path: Path,
    opened: list[Context],
    names: str,
    handler: Callable[[Request], Response],
) -> Context:
    """A context over one source per letter of ``names``, all on ``httpserver`` (``/a``...),
    which takes one request at a time from us (``max_per_host: 1``)."""
    for name in names:
        httpserver.expect_request(f"/{name}").respond_with_handler(handler)
    sources = [f"{{name: {n}, url: '{httpserver.url_for('/' + n)}'}}" for n in names]
    config = load_config(write_config(tmp_path, sources, extra="fetch: {max_per_host: 1}"))
    return context(config, opened)


def test_an_updates_duration_leaves_out_its_wait_for_the_hosts_slot(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    """One request at a time to the host: the second source waits a whole answer for its slot.

    That wait is not the source's: its result's duration (the update table,
    its JSON, the daemon's log line and histogram) is its own time, as its
    poll's seconds are, plus only the save.
    """
    answer = 1.5

    def handler(request: Request) -> Response:
        time.sleep(answer)
        return Response(RSS, content_type="application/rss+xml")

    ctx = _one_request_at_a_time(httpserver, tmp_path, opened, "ab", handler)
    results = asyncio.run(update_all(ctx))
    seconds = ctx.store.last_poll_seconds()
    assert all(r.outcome is Outcome.OK for r in results), results
    assert all(seconds[r.source] >= answer for r in results), seconds
    # What a result adds to its poll's seconds is the save, never the other's answer.
    assert all(0 <= r.duration - seconds[r.source] < answer for r in results), (results, seconds)


#: seconds the slow feed of the longest-first test takes to answer
SLOW_ANSWER = 3.0


def test_the_sources_that_took_longest_start_first(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    """A pass starts the feed whose last poll was slow among the first, not in config order.

    One request per host at a time (``max_per_host: 1``) and two sources of a
    host in flight: in config order, ``d`` (the last) could only be among the
    last two requests.
    """
    seen: list[str] = []
    slow = threading.Event()

    def handler(request: Request) -> Response:
        seen.append(request.path)
        if request.path == "/d" and slow.is_set():
            # The server is slow to answer, once: slower than a first poll's own work
            # (the parse worker's first call) on a loaded machine, which reached 1.4 s.
            time.sleep(SLOW_ANSWER)
            slow.clear()
        return Response(RSS, content_type="application/rss+xml")

    ctx = _one_request_at_a_time(httpserver, tmp_path, opened, "abcd", handler)
    slow.set()
    first = asyncio.run(update_all(ctx))
    assert [r.source for r in first] == ["a", "b", "c", "d"]
    assert set(seen[2:]) == {"/c", "/d"}, "the first pass has no history: config order"
    seconds = ctx.store.last_poll_seconds()
    # Its own time: c waited for d's slot, a and b for the parse workers to start.
    assert seconds["d"] >= SLOW_ANSWER and max(seconds, key=seconds.__getitem__) == "d", seconds

    seen.clear()
    second = asyncio.run(update_all(ctx))
    assert [r.source for r in second] == ["a", "b", "c", "d"], "results stay in config order"
    assert all(r.outcome is Outcome.NOT_MODIFIED or r.outcome is Outcome.OK for r in second)
    assert "/d" in seen[:2]
