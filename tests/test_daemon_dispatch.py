"""Dispatch fetches every source exactly once per period, ticks and reloads notwithstanding.

The real daemon runs as a subprocess against a loopback server that counts
requests per path and answers each one late, so updates finish while the
dispatch tick is under way (the race that fetched sources twice).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from .daemonkit import (
    CountingServer,
    QuietHandler,
    free_port,
    get,
    running,
    wait_for,
    wait_progress,
)

SOURCES = 200


class DelayedFeeds(CountingServer):
    """One-item feeds at ``/fN.xml``; each answer is delayed 0.1 to 1.0 s, varied per path."""

    def __init__(self, cache_control: str | None) -> None:
        super().__init__()
        self.cache_control = cache_control

    def answer(self, handler: QuietHandler) -> None:
        n = int(handler.path.strip("/f.xml") or 0)
        # Varied per path: updates end all through a tick.
        time.sleep(0.1 + (n * 37 % 10) / 10)
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>https://news.example/{n}</link><description>d</description>"
            f"<item><guid>g{n}</guid><title>Karabakh item {n}</title>"
            f"<link>https://news.example/{n}/1</link>"
            f"<description>Karabakh report {n} words w{n}a w{n}b.</description>"
            "</item></channel></rss>"
        ).encode()
        extra = {"cache_control": self.cache_control} if self.cache_control else {}
        handler.send_rss(body, **extra)


def write_config(path: Path, *, port: int, feeds: str, extra_topic: bool = False) -> None:
    sources = "\n".join(
        f"  - {{name: f{i:03d}, url: '{feeds}/f{i:03d}.xml'}}" for i in range(SOURCES)
    )
    topics = "  - {name: karabakh, query: Karabakh}\n"
    if extra_topic:
        topics += "  - {name: report, query: report}\n"
    path.write_text(
        f"""
data_dir: var
server: {{host: 127.0.0.1, port: {port}}}
allow_networks: ['127.0.0.0/8']
defaults: {{interval: 30m}}
fetch: {{max_connections: 100, max_per_host: 100}}
sources:
{sources}
topics:
{topics}""",
        encoding="utf-8",
    )


def quiet(base: str, ticks: int = 3) -> None:
    """Wait until nothing is in flight while ``ticks`` dispatch ticks pass."""
    seen: list[str] = []

    def settled() -> bool:
        status, body = get(f"{base}healthz")
        if status != 200:
            return False
        health = json.loads(body)
        if health["in_flight"]:
            seen.clear()
        elif health["last_tick"] not in seen:
            seen.append(health["last_tick"])
        return len(seen) > ticks

    wait_for(settled, 60, f"{ticks} ticks with nothing in flight", step=0.2)


@pytest.mark.parametrize("cache_control", [None, "max-age=300"])
def test_each_source_fetched_once_per_period(tmp_path: Path, cache_control: str | None) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    config = tmp_path / "aggregator.yaml"
    with DelayedFeeds(cache_control) as server:
        write_config(config, port=port, feeds=server.base)
        with running(config) as daemon:
            wait_progress(lambda: len(server.snapshot()), SOURCES, 60, "sources fetched")
            quiet(base)
            counts = server.snapshot()
            twice = {path: n for path, n in counts.items() if n != 1}
            assert not twice, f"{len(twice)} of {SOURCES} fetched more than once: {twice}"

            # A reload that changes no source fetches nothing again.
            write_config(config, port=port, feeds=server.base, extra_topic=True)
            daemon.signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in daemon.log(), 30, "the reload")
            quiet(base)
            assert server.snapshot() == counts
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, daemon.log()[-2000:]
