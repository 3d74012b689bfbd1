"""The WebSub subscriber against a loopback hub: guards, lease, renewal, unsubscribing, cadence.

The subscriber's passes and the hub's verifications are driven by the test
on a store's state (no daemon, no sleeps); the hub is a real loopback server
that records each request and answers 202.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.push.subscriber import Subscriber
from aggregator.sources.http import Fetcher
from aggregator.update import open_context
from aggregator.update.cadence import cadence_of

from .daemonkit import LoopbackServed, QuietHandler

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


class HubRequests(LoopbackServed):
    """A loopback hub that records each (un)subscription request."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                with owner.lock:
                    owner.forms.append(form)
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

        self._serve(Handler)


@pytest.fixture
def hub() -> Iterator[HubRequests]:
    with HubRequests() as h:
        yield h


def _config(tmp_path: Path, *, allow: bool, sources: str = "") -> Config:
    path = tmp_path / "c.yaml"
    networks = "allow_networks: ['127.0.0.0/8']\n" if allow else ""
    path.write_text(
        f"""
data_dir: var
server: {{base_url: "https://feeds.example/"}}
{networks}sources:
  - {{name: wire, url: "https://wire.example/feed", interval: 20m}}
{sources}""",
        encoding="utf-8",
    )
    return load_config(path)


class Harness:
    """A context on a real store, a clock the test moves, and a subscriber."""

    def __init__(self, config: Config, hub: HubRequests) -> None:
        self.now = NOW
        self.ctx = open_context(config, clock=lambda: self.now)
        self.hub = hub
        state = self.ctx.store.get_state("wire")
        assert state is not None
        self.ctx.store.save_state(replace(state, hub=f"{hub.base}/hub", self_url=state.location))
        self.polls_requested: list[str] = []
        self.subscriber = Subscriber(
            lambda: self.ctx, lambda result: None, self.polls_requested.append
        )

    def sync(self) -> None:
        async def run() -> None:
            async with Fetcher(allow_networks=self.ctx.config.allow_networks) as fetcher:
                self.ctx = replace(self.ctx, fetcher=fetcher)
                await self.subscriber.sync()
            self.ctx = replace(self.ctx, fetcher=None)

        asyncio.run(run())

    def verify(self, form: dict[str, str], **extra: str) -> str | None:
        callback = form["hub.callback"].rsplit("/", 1)[1]
        params = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": "c-123",
            **extra,
        }
        return asyncio.run(self.subscriber.verify(callback, params))

    def interval(self) -> timedelta:
        spec = self.ctx.config.sources[0]
        return cadence_of(spec, self.ctx.config, self.ctx.store, self.now).interval


def test_a_hub_on_a_refused_address_fails_and_the_source_polls_as_before(
    tmp_path: Path, hub: HubRequests
) -> None:
    h = Harness(_config(tmp_path, allow=False), hub)
    try:
        h.sync()
        assert hub.forms == []  # nothing was sent to the loopback hub
        [sub] = h.ctx.store.push.subscriptions()
        assert sub.state == "failed" and "127.0.0.1" in (sub.last_error or "")
        assert h.interval() == timedelta(minutes=20)
    finally:
        h.ctx.close()


def test_subscribe_verify_renew_and_unsubscribe_when_the_source_goes(
    tmp_path: Path, hub: HubRequests
) -> None:
    h = Harness(_config(tmp_path, allow=True), hub)
    try:
        h.sync()
        [form] = hub.forms
        assert form["hub.mode"] == "subscribe"
        assert form["hub.topic"] == "https://wire.example/feed"
        assert form["hub.callback"].startswith("https://feeds.example/websub/")
        assert form["hub.lease_seconds"] == str(10 * 86400)
        assert h.interval() == timedelta(minutes=20)  # requested, not yet verified

        # Only the mode and topic we asked for are verified.
        assert h.verify(form, **{"hub.topic": "https://other.example/"}) is None
        assert h.verify(form, **{"hub.mode": "unsubscribe"}) is None
        assert h.verify(form, **{"hub.lease_seconds": "86400"}) == "c-123"
        [sub] = h.ctx.store.push.subscriptions()
        assert sub.state == "active" and sub.lease_until == NOW + timedelta(days=1)
        assert h.interval() == timedelta(hours=6)  # the fallback while the hub pushes

        h.sync()
        assert len(hub.forms) == 1  # nothing to renew yet
        h.now = NOW + timedelta(hours=20)  # a fifth of the lease left: renew
        h.sync()
        renewal = hub.forms[-1]
        assert renewal["hub.mode"] == "subscribe"
        assert renewal["hub.callback"] == form["hub.callback"]
        assert renewal["hub.secret"] == form["hub.secret"]
        h.now = NOW + timedelta(days=2)  # the lease lapsed unrenewed: polling as before
        assert h.interval() == timedelta(minutes=20)
        assert h.polls_requested == []
        h.sync()
        assert h.polls_requested == ["wire"]  # its next poll was 6 hours out: now
        assert h.ctx.store.push.subscriptions()[0].state == "failed"
        h.sync()
        assert h.polls_requested == ["wire"]  # once

        # The source leaves the config: the hub is told, and the row goes on verification.
        h.ctx = replace(h.ctx, config=replace(h.ctx.config, sources=()))
        h.sync()
        bye = hub.forms[-1]
        assert bye["hub.mode"] == "unsubscribe" and bye["hub.callback"] == form["hub.callback"]
        assert h.verify(bye) == "c-123"
        assert h.ctx.store.push.subscriptions() == []
    finally:
        h.ctx.close()


def test_a_daemon_left_without_remote_sources_still_unsubscribes(
    tmp_path: Path, hub: HubRequests
) -> None:
    """Its context has no HTTP client (seed folders alone): the unsubscribe makes its own."""
    h = Harness(_config(tmp_path, allow=True), hub)
    try:
        h.sync()
        [form] = hub.forms
        assert h.verify(form) == "c-123"
        h.ctx = replace(h.ctx, config=replace(h.ctx.config, sources=()), fetcher=None)
        asyncio.run(h.subscriber.sync())
        bye = hub.forms[-1]
        assert bye["hub.mode"] == "unsubscribe" and bye["hub.callback"] == form["hub.callback"]
    finally:
        h.ctx.close()
