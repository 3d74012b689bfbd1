"""A feed's 429 with Retry-After pauses its whole host: the host's other feeds send nothing."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.model import Outcome
from aggregator.update import update_all
from aggregator.update.context import Context

from .test_remote_pipeline import (  # noqa: F401  (fixtures)
    RSS,
    context,
    opened,
    write_config,
)


def test_a_429_with_retry_after_pauses_every_feed_of_the_host(
    tmp_path: Path,
    httpserver: HTTPServer,
    opened: list[Context],  # noqa: F811  (the imported fixture)
) -> None:
    names = [f"feed{i}" for i in range(4)]
    for name in names:
        # Whichever feed is asked first answers 429; none of the others may be asked.
        httpserver.expect_request(f"/{name}.rss").respond_with_data(
            "slow down", status=429, headers={"Retry-After": "600"}
        )
    sources = [f"{{name: {n}, url: '{httpserver.url_for(f'/{n}.rss')}'}}" for n in names]
    # One request at a time to the host: the feeds queue behind the first.
    config = load_config(
        write_config(tmp_path, sources, extra="fetch: {max_connections: 4, max_per_host: 1}")
    )
    ctx = context(config, opened)
    before = datetime.now(UTC)

    results = asyncio.run(update_all(ctx))

    asked = [request.path for request, _ in httpserver.log]
    assert len(asked) == 1, asked
    first = asked[0].strip("/").removesuffix(".rss")
    by_name = {r.source: r for r in results}
    assert by_name[first].http_status == 429
    for name in names:
        assert by_name[name].outcome is Outcome.ERROR
        state = ctx.store.get_state(name)
        assert state is not None and state.next_due_at is not None
        # Every feed of the host is scheduled after the host's Retry-After, not before.
        assert state.next_due_at >= before + timedelta(seconds=590), name
        if name != first:
            assert by_name[name].error_class == "BackoffError"
            assert by_name[name].http_status is None


def test_a_429_elsewhere_leaves_other_hosts_alone(
    tmp_path: Path,
    httpserver: HTTPServer,
    opened: list[Context],  # noqa: F811  (the imported fixture)
) -> None:
    httpserver.expect_request("/busy.rss").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "600"}
    )
    httpserver.expect_request("/fine.rss").respond_with_data(
        RSS, content_type="application/rss+xml"
    )
    # The same server under another host name, if "localhost" is 127.0.0.1 here.
    if socket.gethostbyname("localhost") != "127.0.0.1":
        pytest.skip("localhost does not resolve to 127.0.0.1 here")
    fine = httpserver.url_for("/fine.rss").replace("127.0.0.1", "localhost")
    sources = [
        f"{{name: busy, url: '{httpserver.url_for('/busy.rss')}'}}",
        f"{{name: fine, url: '{fine}'}}",
    ]
    config = load_config(write_config(tmp_path, sources))
    ctx = context(config, opened)

    results = {r.source: r for r in asyncio.run(update_all(ctx))}

    assert results["busy"].http_status == 429
    assert results["fine"].outcome is Outcome.OK
