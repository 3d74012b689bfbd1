"""Webhooks out: queued per new story of a topic, signed, retried, each delivered once.

Time is simulated through the deliveries' own state: the test moves its
clock to the next attempt the store holds, never sleeps. The receiver is a
real loopback HTTP server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aggregator.model import TopicSpec, WebhookTarget
from aggregator.push.webhooks import GIVE_UP_AFTER, deliver_due, queue_new, retry_at
from aggregator.sources.http import Fetcher
from aggregator.store import SQLStore, open_store
from aggregator.store.push import Delivery

from .daemonkit import LoopbackServed, QuietHandler
from .factories import T0, make_item

SECRET = "a-webhook-secret-0123456789"
MATCH = {"t": lambda item: True}


class Receiver(LoopbackServed):
    """A loopback webhook target that can be down; it records what it acknowledged."""

    def __init__(self) -> None:
        self.up = True
        self.acknowledged: list[dict[str, str]] = []
        self.refused = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with owner.lock:
                    if not owner.up:
                        owner.refused += 1
                        self.send_response(503)
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                    owner.acknowledged.append(
                        {
                            "key": self.headers["idempotency-key"],
                            "signature": self.headers["x-aggregator-signature"],
                            "topic": self.headers["x-aggregator-topic"],
                            "body": body.decode(),
                        }
                    )
                self.send_response(204)
                self.end_headers()

        self._serve(Handler)
        self.url = f"{self.base}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _topic(url: str) -> TopicSpec:
    return TopicSpec(
        name="t", title="T", query="*", notify=(WebhookTarget(url=url, secret=SECRET),)
    )


def _deliver(store: SQLStore, topic: TopicSpec, now: datetime) -> int:
    async def run() -> int:
        async with Fetcher(allow_networks=["127.0.0.0/8"]) as fetcher:
            return await deliver_due(store, (topic,), fetcher, now)

    return asyncio.run(run())


def _next_attempt(store: SQLStore) -> datetime | None:
    due = [d.next_attempt_at for d in store.push.deliveries() if d.next_attempt_at is not None]
    return min(due, default=None)


def test_a_target_down_for_30_minutes_gets_every_notification_once_back(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    topic = _topic(receiver.url)
    assert queue_new(store, (topic,), "http://127.0.0.1:1/", T0) == 0  # the cursor starts now
    items = [
        make_item(f"e{i}", title=f"Story {i}", link=f"https://w.example/{i}") for i in range(3)
    ]
    store.ingest(items, now=T0, matchers=MATCH)
    assert queue_new(store, (topic,), "http://127.0.0.1:1/", T0) == 3
    assert queue_new(store, (topic,), "http://127.0.0.1:1/", T0) == 0  # queued once

    receiver.up = False
    back_at = T0 + timedelta(minutes=30)
    now = T0
    attempts_while_down = 0
    while now < back_at:
        assert _deliver(store, topic, now) == 0
        attempts_while_down += 1
        if attempts_while_down == 3:
            # The daemon restarts: a new store on the same file loses nothing.
            store.close()
            store = open_store(url)
        next_at = _next_attempt(store)
        assert next_at is not None and next_at > now
        now = next_at
    receiver.up = True
    assert _deliver(store, topic, now) == 3
    # Acknowledged deliveries are never sent again, whatever the clock says.
    assert _next_attempt(store) is None
    assert _deliver(store, topic, now + timedelta(hours=2)) == 0
    store.close()

    keys = [a["key"] for a in receiver.acknowledged]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 3
    assert receiver.refused >= 3 * 4  # retried, with backoff, through the half hour
    for ack in receiver.acknowledged:
        expected = hmac.new(SECRET.encode(), ack["body"].encode(), hashlib.sha256).hexdigest()
        assert ack["signature"] == f"sha256={expected}"
        assert ack["topic"] == "t"
        payload = json.loads(ack["body"])
        assert payload["topic"] == "t"
        assert payload["item"]["id"] == ack["key"]
        assert payload["item"]["title"].startswith("Story ")


def test_retries_back_off_and_go_on_for_more_than_an_hour() -> None:
    delivery = Delivery(1, "t", "http://x/", "s", "{}", 0, T0, T0)
    waits = []
    now = T0
    while (later := retry_at(delivery, now)) is not None:
        waits.append(later - now)
        delivery = Delivery(1, "t", "http://x/", "s", "{}", delivery.attempts + 1, T0, later)
        now = later
    assert waits[0] == timedelta(seconds=30)
    assert waits[1] == timedelta(minutes=1)
    assert max(waits) == timedelta(minutes=10)
    assert now - T0 >= GIVE_UP_AFTER >= timedelta(hours=1)


def test_a_refused_address_is_an_attempt_that_fails(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    topic = _topic("http://127.0.0.1:9/hook")
    queue_new(store, (topic,), "http://127.0.0.1:1/", T0)
    store.ingest([make_item("e1")], now=T0, matchers=MATCH)
    queue_new(store, (topic,), "http://127.0.0.1:1/", T0)

    async def run() -> int:
        async with Fetcher() as fetcher:  # no allow_networks: loopback is refused
            return await deliver_due(store, (topic,), fetcher, T0)

    assert asyncio.run(run()) == 0
    [delivery] = store.push.deliveries()
    assert delivery.attempts == 1 and delivery.delivered_at is None
    assert delivery.last_error and "127.0.0.1" in delivery.last_error
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)
    store.close()
