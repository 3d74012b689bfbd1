"""Dead feeds put to rest: 410 at once, failing every poll for ``disable_after``; ``enable``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from aggregator.cli import EXIT_SOURCE_FAILED, main
from aggregator.config import load_config
from aggregator.model import Outcome, SourceResult, SourceState
from aggregator.publish import render_status_page
from aggregator.status.deadfeeds import failing_since, laid_to_rest
from aggregator.update import Context, open_context, read_status, update_source

T0 = datetime(2026, 11, 1, tzinfo=UTC)

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<link>http://example.org/</link><description>d</description>"
    b"<item><guid>a</guid><title>Alive again</title><link>http://example.org/a</link>"
    b"</item></channel></rss>"
)


# -- the decision (pure) ---------------------------------------------------------


def test_a_410_is_put_to_rest_at_once() -> None:
    state = SourceState(name="x", location="https://x.example/", gone=True, failing_since=T0)
    rested = laid_to_rest(state, now=T0, disable_after=timedelta(days=30))
    assert rested.disabled_at == T0
    assert rested.disabled_reason == "gone: the server answered 410 Gone"
    # Even when the operator never wants failing sources disabled.
    assert laid_to_rest(state, now=T0, disable_after=None).disabled_at == T0


def test_failing_every_poll_for_disable_after_puts_it_to_rest() -> None:
    state = SourceState(
        name="x", location="https://x.example/", failing_since=T0, last_error="x: HTTP 500"
    )
    day29 = laid_to_rest(state, now=T0 + timedelta(days=29), disable_after=timedelta(days=30))
    assert day29 is state
    day30 = laid_to_rest(state, now=T0 + timedelta(days=30), disable_after=timedelta(days=30))
    assert day30.disabled_at == T0 + timedelta(days=30)
    assert day30.disabled_reason == "failed every poll for 30 days; last error: x: HTTP 500"
    never = laid_to_rest(state, now=T0 + timedelta(days=900), disable_after=None)
    assert never.disabled_at is None
    # Put to rest before: the first date and reason stay.
    assert laid_to_rest(day30, now=T0 + timedelta(days=40), disable_after=timedelta(1)) is day30


def test_failing_since_starts_at_the_first_failure_and_ends_at_a_success() -> None:
    fresh = SourceState(name="x", location="u")
    assert failing_since(fresh, Outcome.ERROR, T0) == T0
    failing = SourceState(name="x", location="u", failing_since=T0)
    assert failing_since(failing, Outcome.ERROR, T0 + timedelta(days=3)) == T0
    assert failing_since(failing, Outcome.NOT_MODIFIED, T0 + timedelta(days=3)) is None
    assert failing_since(failing, Outcome.OK, T0 + timedelta(days=3)) is None


# -- through the updater, on a clock ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def opened() -> Iterator[list[Context]]:
    contexts: list[Context] = []
    yield contexts
    for ctx in contexts:
        ctx.close()


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\nallow_networks: ['127.0.0.0/8']\n{extra}"
        f"sources:\n  - {{name: flaky, url: '{url}'}}\n"
        "topics:\n  - {name: all, query: alive}\n"
    )
    return path


def test_a_source_failing_every_poll_for_disable_after_is_no_longer_polled(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_request("/flaky").respond_with_data("down", status=500)
    config = load_config(
        write_config(tmp_path, httpserver.url_for("/flaky"), "defaults: {disable_after: 10d}\n")
    )
    clock = Clock()
    ctx = open_context(config, clock=clock)
    opened.append(ctx)
    spec = config.sources[0]
    for day in (0, 4, 9):
        clock.now = T0 + timedelta(days=day)
        assert asyncio.run(update_source(spec, ctx)).outcome is Outcome.ERROR
        state = ctx.store.get_state("flaky")
        assert state is not None and state.disabled_at is None, day
        assert state.failing_since == T0
    clock.now = T0 + timedelta(days=10)
    asyncio.run(update_source(spec, ctx))
    state = ctx.store.get_state("flaky")
    assert state is not None
    assert state.disabled_at == T0 + timedelta(days=10)
    assert state.disabled_reason is not None
    assert state.disabled_reason.startswith("failed every poll for 10 days; last error: ")
    far = T0 + timedelta(days=3650)
    assert ctx.store.due_sources(far) == []
    assert ctx.store.claim_due(far, owner="t", lease=timedelta(minutes=1)) == []
    status = read_status(config, ctx.store, now=clock.now)
    assert status.sources[0].health.value == "disabled"
    assert status.sources[0].next_due is None
    page = render_status_page(status, title="t").decode()
    assert "put to rest: failed every poll for 10 days" in page
    assert 'data-state="disabled"' in page
    # enable: due at once, the run of failures forgotten.
    assert ctx.store.enable_source("flaky")
    assert ctx.store.due_sources(far) == ["flaky"]
    state = ctx.store.get_state("flaky")
    assert state is not None and state.failing_since is None and state.disabled_at is None


def test_a_success_starts_the_count_again(
    httpserver: HTTPServer, tmp_path: Path, opened: list[Context]
) -> None:
    httpserver.expect_ordered_request("/flaky").respond_with_data("down", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_data(
        RSS, content_type="application/rss+xml"
    )
    httpserver.expect_ordered_request("/flaky").respond_with_data("down", status=503)
    config = load_config(write_config(tmp_path, httpserver.url_for("/flaky")))
    clock = Clock()
    ctx = open_context(config, clock=clock)
    opened.append(ctx)
    spec = config.sources[0]
    for day, outcome in ((0, Outcome.ERROR), (20, Outcome.OK), (40, Outcome.ERROR)):
        clock.now = T0 + timedelta(days=day)
        assert asyncio.run(update_source(spec, ctx)).outcome is outcome
    state = ctx.store.get_state("flaky")
    assert state is not None
    assert state.failing_since == T0 + timedelta(days=40)
    assert state.disabled_at is None


# -- from the command line ---------------------------------------------------------


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_a_gone_feed_is_put_to_rest_shown_everywhere_and_enabled_again(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_oneshot_request("/flaky").respond_with_data("gone", status=410)
    config = write_config(tmp_path, httpserver.url_for("/flaky"))
    first = cli(config, "update")
    assert first.exit_code == EXIT_SOURCE_FAILED
    rows = json.loads(cli(config, "sources", "--json").stdout)
    assert rows[0]["disabled"] == "put to rest: gone: the server answered 410 Gone"
    assert rows[0]["disabled_at"] is not None
    assert rows[0]["next_due_at"] is None
    table = cli(config, "sources").stdout
    assert "disabled: flaky since " in table and "gone: the server answered 410 Gone" in table
    status = json.loads(cli(config, "status", "--json").stdout)["sources"][0]
    assert status["state"] == "gone"  # put to rest, and the health says why
    assert status["disabled"] == "put to rest: gone: the server answered 410 Gone"
    assert "disabled: flaky since" in cli(config, "status").stdout

    # Not polled again: update skips it and says why.
    requests = len(httpserver.log)
    again = cli(config, "update")
    assert again.exit_code == 0
    assert "skipped: flaky: put to rest: gone" in again.stderr
    assert len(httpserver.log) == requests

    # The feed is back: enable (the config does not change) and poll.
    httpserver.expect_request("/flaky").respond_with_data(RSS, content_type="application/rss+xml")
    before = config.read_bytes()
    enabled = cli(config, "enable", "flaky")
    assert enabled.exit_code == 0, enabled.output
    assert "flaky is no longer put to rest (gone: the server answered 410 Gone)" in enabled.stdout
    assert config.read_bytes() == before
    polled = cli(config, "update", "--json")
    assert polled.exit_code == 0, polled.output
    assert json.loads(polled.stdout)[0]["outcome"] == "ok"
    assert json.loads(cli(config, "sources", "--json").stdout)[0]["disabled"] is None


def test_a_source_put_to_rest_leaves_the_healthz_failing_list(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    from aggregator.runtime.health import Health
    from aggregator.runtime.metrics import Metrics

    httpserver.expect_request("/flaky").respond_with_data("gone", status=410)
    config = write_config(tmp_path, httpserver.url_for("/flaky"))
    health = Health(Metrics(), tick_interval=60.0)
    ctx = open_context(load_config(config))
    try:
        spec = ctx.config.sources[0]
        health.record(replace_result_failing(spec.name))
        failing = health.body(in_flight=0, documents=0)["failing"]
        assert [f["source"] for f in failing] == ["flaky"]
        result = asyncio.run(update_source(spec, ctx))
        assert result.put_to_rest == "gone: the server answered 410 Gone"
        health.record(result)
        assert health.body(in_flight=0, documents=0)["failing"] == []
        # a daemon started later does not count it either
        later = Health(Metrics(), tick_interval=60.0)
        later.load(ctx.store.states(), 1)
        assert later.body(in_flight=0, documents=0)["failing"] == []
    finally:
        ctx.close()


def replace_result_failing(name: str) -> SourceResult:
    return SourceResult(source=name, outcome=Outcome.ERROR, error="HTTP 500", http_status=500)
