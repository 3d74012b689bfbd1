"""`aggregator run` as a user runs it: a subprocess, a loopback feed server, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest

from .conftest import REPO
from .daemonkit import DaemonProcess, FeedServer, free_port, get, running, wait_for

INTERVAL = 2.0
#: how long a step may take on a busy 2-core machine before the test gives up; each
#: wait ends as soon as its change is seen (a bound, not a latency promise)
WAIT = 60.0


def seed_text(title: str, body_word: str) -> str:
    # Short body: the seed parser's summariser is only reached for leads over 300 characters.
    sentence = (
        f"The {body_word} negotiations continued on Tuesday with delegations from both sides. "
    )
    return f"{title}\n\n" + sentence * 2 + "\n"


def write_config(
    path: Path, *, port: int, feed_url: str, seeds: Path, extra_topics: str = ""
) -> None:
    path.write_text(
        f"""
data_dir: var
server: {{host: 127.0.0.1, port: {port}}}
allow_networks: ['127.0.0.0/8']
defaults: {{interval: {INTERVAL}s, min_interval: 1s}}
sources:
  - name: wire
    url: {feed_url}
  - name: seeds
    path: {seeds}
topics:
  - name: karabakh
    title: Karabakh
    query: Karabakh
{extra_topics}
""",
        encoding="utf-8",
    )


def feed_titles(base: str, topic: str) -> list[str]:
    status, body = get(f"{base}topics/{topic}.atom")
    if status != 200:
        return []
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    return [e.title for e in parsed.entries]


@pytest.fixture
def setup(tmp_path: Path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "first.txt").write_text(seed_text("Karabakh talks open", "Karabakh"), encoding="utf-8")
    port = free_port()
    with FeedServer() as feed:
        feed.add("w1", "Karabakh ceasefire holds", "The Karabakh ceasefire held overnight.")
        config = tmp_path / "aggregator.yaml"
        write_config(config, port=port, feed_url=feed.url, seeds=seeds)
        yield config, feed, seeds, f"http://127.0.0.1:{port}/"


def test_run_end_to_end(setup) -> None:
    config, feed, seeds, base = setup
    with running(config) as daemon:
        # Start-up (imports, the parse workers' fork server) is seconds on a loaded machine:
        # the bound only ends a daemon that never publishes.
        wait_for(lambda: feed_titles(base, "karabakh"), 120, "the first publish with both sources")
        wait_for(
            lambda: (
                {"Karabakh talks open", "Karabakh ceasefire holds"}
                <= set(feed_titles(base, "karabakh"))
            ),
            WAIT,
            "the seed and the feed entry in the topic",
        )

        # A new entry on the feed server appears at a later poll (no restart, no signal).
        feed.add("w2", "Karabakh border reopens", "The Karabakh border reopened at dawn.")
        wait_for(
            lambda: "Karabakh border reopens" in feed_titles(base, "karabakh"),
            WAIT,
            "the new feed entry",
        )

        # A new seed file appears (the folder is watched, and polled).
        (seeds / "second.txt").write_text(
            seed_text("Karabakh refugees return", "Karabakh"), encoding="utf-8"
        )
        wait_for(
            lambda: "Karabakh refugees return" in feed_titles(base, "karabakh"),
            WAIT,
            "the new seed",
        )

        # A deleted seed leaves the feed.
        (seeds / "first.txt").unlink()
        wait_for(
            lambda: "Karabakh talks open" not in feed_titles(base, "karabakh"),
            WAIT,
            "the seed's removal",
        )

        # SIGHUP with an added topic serves it.
        write_config(
            config,
            port=int(base.rsplit(":", 1)[1].strip("/")),
            feed_url=feed.url,
            seeds=seeds,
            extra_topics="  - name: border\n    title: Border\n    query: border\n",
        )
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: "Karabakh border reopens" in feed_titles(base, "border"),
            WAIT,
            "the added topic",
        )

        # SIGHUP with a broken config keeps serving and logs the error with its key path.
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("query: border", "query: 'border AND ('"), encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in daemon.log(), WAIT, "the refused reload in the log")
        line = next(x for x in daemon.log().splitlines() if "reload refused" in x)
        assert "topics[1].query" in line
        assert feed_titles(base, "border")
        assert daemon.proc.poll() is None

        # /healthz and /metrics
        status, body = get(f"{base}healthz")
        health = json.loads(body)
        assert status == 200, health
        assert health["status"] == "ok"
        assert health["failing"] == []
        assert health["last_tick"]
        status, body = get(f"{base}metrics")
        text_metrics = body.decode()
        assert status == 200
        assert 'aggregator_fetches_total{outcome="ok"}' in text_metrics
        # The feed server's feed went through the fast parser (declines are counted by reason).
        assert 'aggregator_feed_parses_total{declined="",reader="fast"}' in text_metrics
        for name in (
            "aggregator_entries_ingested_total",
            "aggregator_stories_merged",
            "aggregator_publish_duration_seconds_bucket",
            "aggregator_due_queue_depth",
            "aggregator_last_tick_timestamp_seconds",
            "aggregator_sources 2.0",
        ):
            assert name in text_metrics, name

        # Every update logged one line with its source and duration.
        assert "wire: ok," in daemon.log()
        assert "seeds: ok," in daemon.log()

        # SIGTERM: exit 0 within the deadline.
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0, daemon.log()
        assert time.monotonic() - started < 12
    # The static tree was written too.
    assert (config.parent / "var" / "public" / "topics" / "border.atom").is_file()


def test_second_run_is_refused_naming_the_pid(setup) -> None:
    config, _feed, _seeds, base = setup
    with running(config) as first:
        wait_for(lambda: get(f"{base}healthz")[0] == 200, 120, "the first daemon to serve")
        second = DaemonProcess(config, log=config.parent / "second.log")
        assert second.wait(30) == 3
        message = second.log().strip().splitlines()[-1]
        assert message == (
            f"aggregator: error: {config.parent / 'var'}: "
            "data folder is locked by a running daemon "
            f"(pid {first.pid})"
        )
        assert first.proc.poll() is None


def test_failing_source_is_reported_by_health_without_503_and_json_logs(tmp_path: Path) -> None:
    port = free_port()
    dead = free_port()  # nothing listens there
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"""
data_dir: var
server: {{host: 127.0.0.1, port: {port}}}
allow_networks: ['127.0.0.0/8']
defaults: {{interval: 1s, min_interval: 0.1s, timeout: 2s}}
sources:
  - name: dead
    url: http://127.0.0.1:{dead}/feed.xml
topics:
  - name: all
    query: the
""",
        encoding="utf-8",
    )
    base = f"http://127.0.0.1:{port}/"
    log = tmp_path / "json.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator",
                "--config",
                str(config),
                "--log-format",
                "json",
                "run",
            ],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:

            def degraded() -> dict[str, object] | None:
                status, body = get(f"{base}healthz")
                found = json.loads(body) if body else {}
                if found.get("sources") != "degraded":
                    return None
                # A dead upstream feed is not a reason to restart the daemon.
                assert status == 200, found
                return found

            health = wait_for(degraded, 30, "the source to degrade after three failures")
            assert health["status"] == "ok"
            [failing] = health["failing"]
            assert failing["source"] == "dead"
            assert failing["consecutive_failures"] >= 3
            assert "dead" in failing["error"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    updates = [x for x in lines if x.get("source") == "dead" and "duration" in x]
    assert updates, lines[:5]
    assert {"time", "level", "logger", "message", "outcome"} <= set(updates[0])
    assert updates[0]["outcome"] == "error"
