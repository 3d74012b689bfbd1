"""Push both ways through ``aggregator run``: a loopback WebSub hub in, a loopback webhook out.

The hub serves the source's feed (naming itself and the feed's own URL),
takes our subscription, verifies it, and distributes new entries signed
with the secret we gave it. A webhook receiver gets each new story of the
topic. Forged distributions and verifications change nothing and are logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from .conftest import pg_database
from .daemonkit import (
    DaemonProcess,
    LoopbackServed,
    QuietHandler,
    free_port,
    get,
    running,
    wait_for,
)
from .test_workers import workers


class Hub(LoopbackServed):
    """A loopback WebSub hub and publisher: one RSS feed, its subscribers, distributions."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = [("g0", "Opening story of the wire")]
        self.feed_gets = 0
        self.subscriptions: dict[str, dict[str, str]] = {}  # callback -> form
        self.verified: dict[str, bool] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.feed_gets += 1
                self.send_rss(owner.feed().encode())

            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()
                threading.Thread(target=owner.verify, args=(form,), daemon=True).start()

        self._serve(Handler)
        self.topic = f"{self.base}/feed.xml"

    def feed(self, only: list[tuple[str, str]] | None = None) -> str:
        with self.lock:
            items = list(self.items) if only is None else only
        t0 = datetime(2026, 12, 1, tzinfo=UTC)
        body = "".join(
            f"<item><guid>{g}</guid><title>{t}</title><link>https://wire.example/{g}</link>"
            f"<description>{t}, in full.</description>"
            f"<pubDate>{format_datetime(t0)}</pubDate></item>"
            for g, t in items
        )
        return (
            '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
            f"<channel><title>Wire</title><link>https://wire.example/</link>"
            f'<atom:link rel="hub" href="{self.base}/hub"/>'
            f'<atom:link rel="self" href="{self.topic}"/>'
            f"<description>wire</description>{body}</channel></rss>"
        )

    def verify(self, form: dict[str, str]) -> None:
        """The hub's verification of a (un)subscription request, as WebSub says."""
        query = urllib.parse.urlencode(
            {
                "hub.mode": form["hub.mode"],
                "hub.topic": form["hub.topic"],
                "hub.challenge": "challenge-" + form["hub.callback"][-6:],
                "hub.lease_seconds": "3600",
            }
        )
        status, body = get(f"{form['hub.callback']}?{query}")
        ok = status == 200 and body.decode() == "challenge-" + form["hub.callback"][-6:]
        with self.lock:
            self.subscriptions[form["hub.callback"]] = form
            self.verified[form["hub.callback"]] = ok and form["hub.mode"] == "subscribe"

    def subscriber(self) -> dict[str, str] | None:
        with self.lock:
            found = [self.subscriptions[c] for c, ok in self.verified.items() if ok]
        return found[-1] if found else None

    def publish(self, guid: str, title: str) -> None:
        with self.lock:
            self.items.append((guid, title))


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def signed(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}=" + hmac.new(secret.encode(), body, algorithm).hexdigest()


class Hooks(LoopbackServed):
    """A loopback webhook receiver."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with owner.lock:
                    owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self._serve(Handler)
        base = self.base
        self.url = f"{base}/hook"

    def titles(self) -> list[str]:
        with self.lock:
            return [json.loads(b)["item"]["title"] for _, b in self.received]


@pytest.fixture
def servers() -> Iterator[tuple[Hub, Hooks]]:
    with Hub() as hub, Hooks() as hooks:
        yield hub, hooks


HOOK_SECRET = "webhook-secret-0123456789abcdef"


def _config(tmp_path: Path, port: int, hub: Hub, hooks: Hooks, *, extra: str = "") -> Path:
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"""{extra}
data_dir: var
server: {{host: 127.0.0.1, port: {port}, base_url: "http://127.0.0.1:{port}/"}}
allow_networks: ['127.0.0.0/8']
defaults: {{interval: 1h}}
ingest: {{workers: 0}}
sources:
  - {{name: wire, url: "{hub.topic}"}}
topics:
  - name: wire
    query: story
    notify: [{{url: "{hooks.url}", secret: "{HOOK_SECRET}"}}]
""",
        encoding="utf-8",
    )
    return config


def _topic_feed(port: int) -> str:
    return get(f"http://127.0.0.1:{port}/topics/wire.atom")[1].decode(errors="replace")


def test_websub_in_and_webhooks_out_through_the_daemon(
    tmp_path: Path, servers: tuple[Hub, Hooks]
) -> None:
    hub, hooks = servers
    port = free_port()
    with running(_config(tmp_path, port, hub, hooks)) as daemon, daemon.diagnosed():
        # The first poll reads the feed, finds the hub, subscribes; the hub verifies.
        sub = wait_for(hub.subscriber, 60, "a verified subscription")
        assert sub["hub.topic"] == hub.topic
        assert sub["hub.callback"].startswith(f"http://127.0.0.1:{port}/websub/")
        assert int(sub["hub.lease_seconds"]) > 0 and len(sub["hub.secret"]) >= 32
        wait_for(lambda: "Opening story" in _topic_feed(port), 60, "the first poll published")
        # Let the daemon record the subscription as active before the push.
        wait_for(lambda: "subscribed to" in daemon.log(), 30, "the verification logged")
        polls_before = hub.feed_gets

        # A new entry published at the hub reaches our topic feed with no poll between.
        hub.publish("g1", "Pushed story from the hub")
        body = hub.feed().encode()
        started = time.monotonic()
        status = post(
            sub["hub.callback"],
            body,
            {
                "content-type": "application/rss+xml",
                "x-hub-signature": signed(sub["hub.secret"], body),
            },
        )
        assert status == 202
        wait_for(lambda: "Pushed story" in _topic_feed(port), 60, "the pushed story published")
        elapsed = time.monotonic() - started
        print(f"hub distribution to topic feed: {elapsed:.2f} s")
        assert hub.feed_gets == polls_before  # no poll of the source in between

        # Forgeries: no signature, a bad one, an unknown callback, a topic we did not ask for.
        forged = hub.feed([("f1", "Forged story one"), ("f2", "Forged story two")]).encode()
        rss = {"content-type": "application/rss+xml"}
        assert post(sub["hub.callback"], forged, rss) == 202
        bad = {**rss, "x-hub-signature": signed("not-the-secret", forged)}
        assert post(sub["hub.callback"], forged, bad) == 202
        sha1_wrong = {**rss, "x-hub-signature": "sha1=" + "0" * 40}
        assert post(sub["hub.callback"], forged, sha1_wrong) == 202
        unknown = f"http://127.0.0.1:{port}/websub/not-a-callback-we-gave"
        good_sig = {**rss, "x-hub-signature": signed(sub["hub.secret"], forged)}
        assert post(unknown, forged, good_sig) == 404
        other = urllib.parse.urlencode(
            {"hub.mode": "subscribe", "hub.topic": "http://evil.example/", "hub.challenge": "x"}
        )
        assert get(f"{sub['hub.callback']}?{other}")[0] == 404
        wrong_mode = urllib.parse.urlencode(
            {"hub.mode": "unsubscribe", "hub.topic": hub.topic, "hub.challenge": "x"}
        )
        assert get(f"{sub['hub.callback']}?{wrong_mode}")[0] == 404
        # A genuine distribution after them: once it is published, the forgeries had their turn.
        hub.publish("g2", "Marker story after the forgeries")
        body = hub.feed().encode()
        sha512 = {**rss, "x-hub-signature": signed(sub["hub.secret"], body, "sha512")}
        assert post(sub["hub.callback"], body, sha512) == 202
        wait_for(lambda: "Marker story" in _topic_feed(port), 60, "the marker published")
        assert "Forged story" not in _topic_feed(port)
        log = daemon.log()
        assert "distribution ignored: no X-Hub-Signature" in log
        assert "distribution ignored: a bad X-Hub-Signature" in log
        assert "distribution ignored: unknown callback" in log
        assert "verification refused" in log

        # Webhooks: each new story of the topic, signed, once.
        wait_for(
            lambda: (
                {"Pushed story from the hub", "Marker story after the forgeries"}
                <= set(hooks.titles())
            ),
            60,
            "the webhook deliveries",
        )
        with hooks.lock:
            received = list(hooks.received)
        keys = [headers["idempotency-key"] for headers, _ in received]
        assert len(keys) == len(set(keys))
        for headers, raw in received:
            expected = hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["x-aggregator-signature"] == f"sha256={expected}"
            assert headers["content-type"] == "application/json"
            assert json.loads(raw)["topic"] == "wire"
        assert "Forged story one" not in hooks.titles()


@pytest.mark.postgres
def test_websub_in_and_webhooks_out_through_a_fleet(
    tmp_path: Path, servers: tuple[Hub, Hooks]
) -> None:
    """With workers.enabled, the publisher subscribes, ingests what hubs post, sends webhooks."""
    hub, hooks = servers
    port = free_port()
    with ExitStack() as stack:
        url = stack.enter_context(pg_database())
        fleet = f"store: {url}\nworkers: {{enabled: true, dispatch_every: 1s, stalled_after: 3s}}"
        config = _config(tmp_path, port, hub, hooks, extra=fleet)
        publisher = DaemonProcess(config, log=tmp_path / "publisher.log")
        stack.callback(publisher.kill)
        [worker] = stack.enter_context(workers(config, 1))
        with publisher.diagnosed(), worker.diagnosed():
            # A worker's poll finds the hub; the publisher subscribes and answers the hub.
            sub = wait_for(hub.subscriber, 90, "a verified subscription")
            assert sub["hub.callback"].startswith(f"http://127.0.0.1:{port}/websub/")
            wait_for(lambda: "Opening story" in _topic_feed(port), 60, "the first poll published")
            wait_for(lambda: "subscribed to" in publisher.log(), 30, "the verification logged")
            polls_before = hub.feed_gets
            hub.publish("g1", "Pushed story from the hub")
            body = hub.feed().encode()
            headers = {
                "content-type": "application/rss+xml",
                "x-hub-signature": signed(sub["hub.secret"], body),
            }
            assert post(sub["hub.callback"], body, headers) == 202
            wait_for(lambda: "Pushed story" in _topic_feed(port), 60, "the pushed story published")
            assert hub.feed_gets == polls_before  # no poll of the source in between
            wait_for(
                lambda: "Pushed story from the hub" in hooks.titles(), 60, "the webhook delivery"
            )
        with hooks.lock:
            received = list(hooks.received)
        for headers, raw in received:
            expected = hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["x-aggregator-signature"] == f"sha256={expected}"
        titles = hooks.titles()
        assert len(titles) == len(set(titles))  # each story once
        for proc in (publisher, worker):
            proc.signal(signal.SIGTERM)
        for proc in (publisher, worker):
            assert proc.wait(60) == 0, proc.log()[-2000:]
