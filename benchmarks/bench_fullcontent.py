"""What ``full_content`` adds per new entry: the same summary-only feed with and without it.

A loopback server in a child process serves one summary-only RSS feed of N
entries and, for each entry, a cluttered news page (navigation, ads, a
sidebar, comments, scripts, a footer around ~500 words of article). Each
round opens a fresh store, warms the worker processes as a running daemon's
are (a feed polled; trafilatura imported and the sketch's first call: ~0.4 s
once per worker, which the first long article or div-soup page triggers and
a teaser does not), then
times one update of the feed through the real pipeline (fetcher, CPU stage,
writer, SQLite):

* ``plain``: the feed without ``full_content`` (N new entries, teasers);
* ``full``: the same feed with ``full_content: true`` (N pages fetched,
  extracted and sanitised; pages with ``<article>`` markup, our extractor);
* ``full-soup``: pages without article markup (trafilatura extracts them);
* ``repoll``: the feed changed again (one new entry) on a store that already
  holds the N entries: what an ordinary later poll of a full_content source
  costs against the same poll without it.

Printed: the median wall time of each, the added time per new entry
``(full - plain) / N``, and the pieces alone (a page fetched through the
fetcher, a page extracted on one core). ``--latency`` makes each page answer after that many
milliseconds (a remote site's response time); the default 0 measures our own
cost on loopback.

Run: ``python benchmarks/bench_fullcontent.py [--entries 50] [--rounds 3] [--latency 0]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.config import load_config
from aggregator.engine.articles import Page, extract_page
from aggregator.sources.http import Fetcher
from aggregator.stories.neardup import NearDupSettings, sketch_text
from aggregator.update import open_context, update_all

_VOCAB_TEXT = (
    "river herd ranger foal drought waterhole plain lion vulture farmer fence tourist "
    "wildebeest scientist collar grazing rainfall forecast relief elder season decade "
    "migration corridor permit council budget survey census satellite camera poacher "
    "patrol village school clinic harvest maize cattle market price export border road "
    "bridge flood storm wind heat record study report minister agency court ruling"
)
_VOCAB = _VOCAB_TEXT.split()

#: the server stops by itself after this long, whatever happens to the benchmark
LIFETIME = 900.0


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_VOCAB) for _ in range(n))


def page(n: int, *, marked: bool) -> bytes:
    rng = random.Random(n)
    paragraphs = "".join(f"<p>{_words(rng, 60)}.</p>" for _ in range(8))
    nav = "".join(f"<li><a href='/section/{i}'>Section {i}</a></li>" for i in range(40))
    sidebar = "".join(f"<li><a href='/news/t{i}.html'>{_words(rng, 8)}</a></li>" for i in range(20))
    comments = "".join(f"<div class='comment'><p>{_words(rng, 25)}</p></div>" for _ in range(10))
    body = f"<h1>Story {n}</h1>{paragraphs}<figure><img src='/img/{n}.jpg'></figure>"
    main = f"<article>{body}</article>" if marked else f"<div class='c'><div>{body}</div></div>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Story {n} | Savanna News</title>"
        + "<script>var tracking = {};</script>"
        * 5
        + "<style>body { margin: 0 }</style></head><body>"
        f"<header><nav><ul>{nav}</ul></nav></header>"
        "<div class='ad-banner'>Advertisement</div>"
        f"<aside class='sidebar'><ul>{sidebar}</ul></aside>{main}"
        f"<section class='comments'>{comments}</section>"
        "<footer><p>Copyright Savanna News</p></footer></body></html>"
    ).encode()


def feed(base: str, count: int, *, marked: bool, version: int) -> bytes:
    kind = "m" if marked else "s"
    items = "".join(
        f"<item><title>Story {kind}{n}</title><link>{base}/{kind}/{n}.html</link>"
        f"<guid>{kind}{n}</guid><pubDate>Mon, 02 Mar 2026 10:{n % 60:02d}:00 GMT</pubDate>"
        f"<description>Teaser of story {n}, the herd crossed the river&#8230;</description></item>"
        for n in range(count + version)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Savanna</title><link>{base}/</link><description>d</description>{items}"
        "</channel></rss>"
    ).encode()


def _serve(count: int, latency: float, pipe: Connection) -> None:
    versions = {"m": 0, "s": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            parts = self.path.strip("/").split("/")
            if parts[0] == "bump":  # /bump/m: the feed gains an entry
                versions[parts[1]] += 1
                self._send(b"ok", "text/plain")
            elif parts[0] == "warm.xml":
                self._send(feed(base, 1, marked=True, version=0), "application/rss+xml")
            elif parts[0] in ("m.xml", "s.xml"):
                kind = parts[0][0]
                body = feed(base, count, marked=kind == "m", version=versions[kind])
                self._send(body, "application/rss+xml")
            elif parts[0] in ("m", "s") and len(parts) == 2:
                if latency:
                    time.sleep(latency)
                n = int(parts[1].split(".")[0])
                self._send(page(n, marked=parts[0] == "m"), "text/html; charset=utf-8")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    pipe.send(server.server_address[1])
    deadline = time.monotonic() + LIFETIME
    server.timeout = 0.5
    while time.monotonic() < deadline and not pipe.poll():
        server.handle_request()
    server.server_close()


def _config(folder: Path, port: int, kind: str, full: bool) -> Path:
    path = folder / "aggregator.yaml"
    path.write_text(
        f"data_dir: {folder / 'var'}\n"
        "allow_networks: ['127.0.0.1/32']\n"
        "sources:\n"
        f"  - {{name: warm, url: 'http://127.0.0.1:{port}/warm.xml'}}\n"
        f"  - {{name: savanna, url: 'http://127.0.0.1:{port}/{kind}.xml', "
        f"full_content: {'true' if full else 'false'}}}\n"
        "topics:\n  - {name: all, query: 'river OR herd'}\n"
    )
    return path


async def _warm(ctx: Any) -> None:
    """Warm every worker: a long text sketched (MinHash), a div-soup page read (trafilatura)."""
    pool = ctx.stages.pool
    text = " ".join(_VOCAB * 3)
    soup = Page("http://127.0.0.1/warm.html", page(0, marked=False), {"content-type": "text/html"})
    await asyncio.gather(
        *(pool.run("warm", sketch_text, text, NearDupSettings()) for _ in range(2 * pool.workers)),
        *(pool.run("warm", extract_page, soup, source="warm") for _ in range(2 * pool.workers)),
    )
    await _timed(ctx, "warm")


async def _timed(ctx: Any, name: str) -> tuple[float, int]:
    spec = next(s for s in ctx.config.sources if s.name == name)
    started = time.perf_counter()
    [result] = await update_all(ctx, [spec])
    if result.problems or result.error:
        raise SystemExit(f"{name}: {result.error or result.problems}")
    return time.perf_counter() - started, result.new


def one_round(port: int, kind: str, full: bool) -> tuple[float, float, int]:
    """(first update, re-poll after one new entry, entries) on a fresh store."""
    import urllib.request

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(_config(Path(tmp), port, kind, full))
        ctx = open_context(config)
        try:
            asyncio.run(_warm(ctx))
            first, new = asyncio.run(_timed(ctx, "savanna"))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bump/{kind}") as r:
                r.read()
            repoll, _ = asyncio.run(_timed(ctx, "savanna"))
        finally:
            ctx.close()
    return first, repoll, new


def parts(port: int, count: int) -> dict[str, float]:
    """The pieces of a page's cost on their own: fetching it, and extracting it (one core)."""

    async def fetch_all(kind: str) -> float:
        async with Fetcher(allow_networks=["127.0.0.1/32"]) as fetcher:
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    fetcher.fetch(f"http://127.0.0.1:{port}/{kind}/{n}.html", source="bench")
                    for n in range(count)
                )
            )
            return (time.perf_counter() - started) / count

    def extract_all(marked: bool) -> float:
        pages = [
            Page(
                f"http://127.0.0.1/{n}.html", page(n, marked=marked), {"content-type": "text/html"}
            )
            for n in range(count)
        ]
        extract_page(pages[0], source="bench")  # imports
        started = time.perf_counter()
        for p in pages:
            extract_page(p, source="bench")
        return (time.perf_counter() - started) / count

    return {
        "fetch (max_per_host 2)": asyncio.run(fetch_all("m")),
        "extract, article markup": extract_all(True),
        "extract, div soup (trafilatura)": extract_all(False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0, help="ms before each page answers")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve, args=(args.entries, args.latency / 1000, theirs), daemon=True
    )
    server.start()
    port = ours.recv()
    try:
        pieces = parts(port, args.entries)
        runs: dict[str, list[tuple[float, float, int]]] = {}
        for _ in range(args.rounds):
            for label, kind, full in (
                ("plain", "m", False),
                ("full", "m", True),
                ("full-soup", "s", True),
            ):
                runs.setdefault(label, []).append(one_round(port, kind, full))
    finally:
        ours.send("stop")
        server.join(5)
        if server.is_alive():
            server.terminate()

    def med(label: str, at: int) -> float:
        return statistics.median(r[at] for r in runs[label])

    n = runs["plain"][0][2]
    print(
        f"full_content benchmark: {n} new entries, {args.rounds} rounds (median), "
        f"page latency {args.latency:g} ms, page {len(page(0, marked=True)):,} bytes"
    )
    print(f"{'run':<10} {'first update':>14} {'per entry':>11} {'re-poll (+1 new)':>18}")
    for label in runs:
        first, repoll = med(label, 0), med(label, 1)
        print(
            f"{label:<10} {first * 1000:>12.0f}ms {first / n * 1000:>9.1f}ms "
            f"{repoll * 1000:>16.0f}ms"
        )
    plain_first, plain_repoll = med("plain", 0), med("plain", 1)
    for label in ("full", "full-soup"):
        added = (med(label, 0) - plain_first) / n
        print(
            f"{label}: added per new entry {added * 1000:.1f} ms "
            f"({med(label, 0) / plain_first:.1f}x the plain update); "
            f"re-poll {med(label, 1) / plain_repoll:.2f}x the plain re-poll"
        )
    print("per page, alone: " + "; ".join(f"{k} {v * 1000:.1f} ms" for k, v in pieces.items()))


if __name__ == "__main__":
    main()
