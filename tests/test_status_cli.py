"""``aggregator status`` and ``/status`` beside a running daemon: the store's history, read live."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from aggregator.store import open_store

from .conftest import run_cli
from .daemonkit import FeedServer, free_port, get, running, wait_moving

TOKEN = "operator-token-0123456789"


def _config(path: Path, *, port: int, feed_url: str, dead_url: str) -> None:
    path.write_text(
        f"""
data_dir: var
server: {{host: 127.0.0.1, port: {port}, admin_token: {TOKEN}}}
allow_networks: ['127.0.0.0/8']
defaults: {{interval: 1s, min_interval: 1s, timeout: 5s}}
sources:
  - name: wire
    url: {feed_url}
  - name: dead
    url: {dead_url}
topics:
  - name: karabakh
    query: Karabakh
""",
        encoding="utf-8",
    )


def test_status_json_while_the_daemon_runs(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.yaml"
    port = free_port()
    with FeedServer() as feed:
        feed.add("w1", "Karabakh ceasefire holds", "The Karabakh ceasefire held overnight.")
        dead = f"http://127.0.0.1:{free_port()}/gone.xml"  # nothing listens there
        _config(config, port=port, feed_url=feed.url, dead_url=dead)
        with running(config) as daemon, daemon.diagnosed():
            db = f"sqlite:///{tmp_path / 'var' / 'aggregator.db'}"

            def polls() -> dict[str, int]:
                if not (tmp_path / "var" / "aggregator.db").exists():
                    return {}
                store = open_store(db)
                try:
                    return {k: len(v) for k, v in store.poll_history().items()}
                finally:
                    store.close()

            # Two polls of the feed and three failures of the dead source, as long as polls come.
            wait_moving(
                lambda: polls().get("wire", 0) >= 2 and polls().get("dead", 0) >= 3,
                lambda: sum(polls().values()),
                60,
                "two polls of wire and three of dead",
            )
            run = run_cli(config, "status", "--json")
            assert run.returncode == 0, run.stderr
            status = json.loads(run.stdout)

            sources = {s["name"]: s for s in status["sources"]}
            assert set(sources) == {"wire", "dead"}
            wire = sources["wire"]
            assert wire["kind"] == "url" and wire["state"] == "ok" and wire["failures"] == 0
            assert wire["last_success"] and wire["next_due"]
            first = wire["history"][0]
            assert set(first) == {"at", "outcome", "status", "seconds", "bytes", "new", "updated"}
            assert (first["outcome"], first["status"], first["new"]) == ("ok", 200, 1)
            assert first["bytes"] == len(feed.render().encode())
            assert first["seconds"] > 0
            dead_source = sources["dead"]
            assert dead_source["state"] == "failing"
            assert dead_source["failures"] >= 3 and dead_source["error"]
            assert {p["outcome"] for p in dead_source["history"]} == {"error"}
            assert status["topics"] == [{"name": "karabakh", "stories": 1, "private": False}]

            # The table: one row per source with its sparkline.
            table = run_cli(config, "status")
            assert table.returncode == 0, table.stderr
            assert "failing" in table.stdout and "█" in table.stdout

            # The daemon's own page, behind the token.
            assert get(f"http://127.0.0.1:{port}/status")[0] == 401
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/status", headers={"authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                page = response.read().decode()
            assert 'data-source="dead" data-state="failing"' in page
            assert 'id="chart-publish"' in page  # the daemon's publishes are charted
