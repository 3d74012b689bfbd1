"""Soak: a daemon under steady churn for half an hour, then quiet; does its memory settle?

One run of ``aggregator run`` (through ``--daemon``, which only shortens the
retention job's period so retention bounds the store within the run) on:

* ``--feeds`` loopback feeds (200) on one server, each gaining an item every
  minute (an item's date is the minute it appeared; each feed lists its
  newest 20), polled every minute with ETags (304 between items);
* a seed folder that gains an article every 30 s;
* three topics, ``retention: {max_age: 10m}`` run every 2 minutes;
* a reload (SIGHUP) every 2 minutes.

After ``--minutes`` (30) of churn the feeds and seeds stop changing for
``--quiet`` minutes (5). Every 10 s: the main process's RSS and the tree's
PSS, open file descriptors and threads, and the time ``/healthz`` takes.
Reported: the main RSS's slope (least squares, MiB a minute) over the last 15
minutes of churn and over the quiet phase; the slowest ``/healthz``; fds
and threads at start and end; the store's size.

Everything binds 127.0.0.1; the feed server stops with the run (and by
itself after the run's length plus ten minutes).

Run: ``python benchmarks/bench_soak.py [--minutes 30] [--quiet 5] [--feeds 200]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_republish import WORDS  # noqa: E402
from installed import byte_compile  # noqa: E402
from proctree import tree_pss  # noqa: E402

#: made-up words: each feed item draws its own text from them, so no two items merge
VOCABULARY = [f"{a}{b}{c}" for a in "bcdfgklmnprst" for b in "aeiou" for c in ("n", "r", "s", "")]


class Churn:
    """What the feeds hold at a moment: an item a minute each, until ``frozen_at``."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.frozen_at: float | None = None

    def items(self) -> int:
        now = self.frozen_at or time.time()
        return 1 + int((now - self.started) // 60)


def _feed(feed: int, count: int, started: float) -> bytes:
    items = []
    for n in range(max(0, count - 20), count)[::-1]:
        when = datetime.fromtimestamp(started + 60 * n, UTC)
        # Distinct texts: each item is its own story (no near-duplicate merges).
        rng = random.Random(feed * 1_000_003 + n)
        words = " ".join(rng.choice(VOCABULARY) for _ in range(60))
        items.append(
            f"<item><title>Feed {feed} item {n}: {WORDS[(feed + n) % len(WORDS)]} talks</title>"
            f"<link>http://example.org/{feed}/{n}</link><guid>f{feed}-{n}</guid>"
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
            f"<description>&lt;p&gt;Feed {feed}, item {n}: {words} {feed * 1000 + n}&lt;/p&gt;"
            "</description></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>http://example.org/{feed}</link>"
        f"<description>d</description>{''.join(items)}</channel></rss>"
    ).encode()


def serve_feeds(churn: Churn, limit: float) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                feed = int(self.path.strip("/").split(".")[0])
            except ValueError:
                self.send_error(404)
                return
            count = churn.items()
            etag = f'"{count}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            body = _feed(feed, count, churn.started)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    timer = threading.Timer(limit, server.shutdown)
    timer.daemon = True
    timer.start()
    return server, server.server_address[1]


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _healthz(port: int) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    finally:
        conn.close()
    return time.perf_counter() - started


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, MiB) points."""
    if len(points) < 2:
        return float("nan")
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def run_daemon_child(config: str) -> None:
    """``aggregator run`` with a retention job every 2 minutes instead of daily."""
    from aggregator.config import load_config
    from aggregator.daemon import DaemonSettings
    from aggregator.daemon.entry import run_daemon
    from aggregator.daemon.logs import configure_logging

    configure_logging("info", "text")
    run_daemon(
        load_config(Path(config)), settings=DaemonSettings(retention_every=timedelta(minutes=2))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--daemon", help=argparse.SUPPRESS)
    args = parser.parse_args()
    byte_compile(REPO)
    if args.daemon:
        run_daemon_child(args.daemon)
        return
    churn = Churn(time.time())
    total = (args.minutes + args.quiet) * 60
    server, feed_port = serve_feeds(churn, total + 600)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seeds = folder / "seeds"
        seeds.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        lines = [
            "data_dir: var",
            f"server: {{port: {port}}}",
            "allow_networks: ['127.0.0.0/8']",
            "defaults: {interval: 1m, min_interval: 1m, timeout: 10s}",
            "retention: {max_age: 10m}",
            "sources:",
            "  - {name: seeds, path: seeds}",
        ]
        lines += [
            f"  - {{name: f{i:04d}, url: 'http://127.0.0.1:{feed_port}/{i}.xml'}}"
            for i in range(args.feeds)
        ]
        lines += [
            "topics:",
            "  - {name: talks, query: talks}",
            "  - {name: energy, query: energy OR grid}",
            "  - {name: courts, query: court, max_items: 20}",
        ]
        config = folder / "aggregator.yaml"
        config.write_text("\n".join(lines) + "\n")
        log = (folder / "daemon.log").open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, __file__, "--daemon", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        samples: list[dict[str, float]] = []
        started = time.monotonic()
        next_seed = next_reload = started
        seed_n = 0
        try:
            while time.monotonic() - started < total and proc.poll() is None:
                now = time.monotonic()
                minute = (now - started) / 60
                churning = minute < args.minutes
                if not churning and churn.frozen_at is None:
                    churn.frozen_at = time.time()
                if churning and now >= next_seed:
                    seed_n += 1
                    word = WORDS[seed_n % len(WORDS)]
                    (seeds / f"{seed_n:04d}_{seed_n:016x}.txt").write_text(
                        f"Minister {seed_n} holds {word} talks\n\n"
                        f"City (Wire): The minister held talks on {word} for the {seed_n}th "
                        f"time, officials said. {' '.join(WORDS)} {seed_n}.\n"
                    )
                    next_seed = now + 30
                if churning and now >= next_reload and now > started + 5:
                    proc.send_signal(signal.SIGHUP)
                    next_reload = now + 120
                try:
                    health = _healthz(port)
                except OSError:
                    health = float("nan")
                try:
                    samples.append(
                        {
                            "minute": minute,
                            "rss_mib": _status(proc.pid, "VmRSS") / 1024,
                            "pss_mib": tree_pss(proc.pid)[0],
                            "fds": len(os.listdir(f"/proc/{proc.pid}/fd")),
                            "threads": _status(proc.pid, "Threads"),
                            "healthz_ms": health * 1000,
                            "churning": float(churning),
                        }
                    )
                except OSError:
                    break
                time.sleep(10)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            log.close()
            server.shutdown()
        db = folder / "var" / "aggregator.db"
        with sqlite3.connect(db) as conn:
            entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
            stories = conn.execute("SELECT count(*) FROM stories").fetchone()[0]
        export = sum(
            p.stat().st_size for p in (folder / "var" / "public").rglob("*") if p.is_file()
        )
    last15 = [
        (s["minute"], s["rss_mib"])
        for s in samples
        if s["churning"] and s["minute"] >= args.minutes - 15
    ]
    quiet = [(s["minute"], s["rss_mib"]) for s in samples if not s["churning"]]
    health = [s["healthz_ms"] for s in samples if s["healthz_ms"] == s["healthz_ms"]]
    result = {
        "minutes": args.minutes,
        "quiet_minutes": args.quiet,
        "feeds": args.feeds,
        "seeds_added": seed_n,
        "rss_start_mib": samples[0]["rss_mib"] if samples else None,
        "rss_end_mib": samples[-1]["rss_mib"] if samples else None,
        "rss_max_mib": max(s["rss_mib"] for s in samples) if samples else None,
        "pss_max_mib": max(s["pss_mib"] for s in samples) if samples else None,
        "rss_slope_last15_mib_per_min": round(_slope(last15), 3),
        "rss_slope_quiet_mib_per_min": round(_slope(quiet), 3),
        "fds_start_end": (samples[1]["fds"], samples[-1]["fds"]) if len(samples) > 1 else None,
        "threads_start_end": (
            (samples[1]["threads"], samples[-1]["threads"]) if len(samples) > 1 else None
        ),
        "healthz_max_ms": round(max(health), 1) if health else None,
        "healthz_p50_ms": round(statistics.median(health), 1) if health else None,
        "entries": entries,
        "stories": stories,
        "export_mib": round(export / 2**20, 1),
    }
    print(json.dumps(result, indent=1))
    print("minute  rss_mib  pss_mib  fds  threads  healthz_ms")
    for s in samples[::6]:
        print(
            f"{s['minute']:6.1f} {s['rss_mib']:8.1f} {s['pss_mib']:8.1f} {s['fds']:4.0f} "
            f"{s['threads']:8.0f} {s['healthz_ms']:11.1f}"
        )


if __name__ == "__main__":
    main()
