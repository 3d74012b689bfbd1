"""Fetch 1,000 feeds from a local server: a first pass (200s) and a 304 pass.

The server runs in a child process (plain asyncio, HTTP/1.1 keep-alive) on
several loopback addresses, so per-host politeness is exercised the way it is
in real life (many hosts, a few feeds each). It counts open TCP connections
and requests in flight, and reports the peaks.

Measured, per client and pass: wall time of the whole pass (network only: no
parsing), requests per second, peak concurrent connections and requests, and
TCP connections opened (keep-alive reuse). The
peer is a plain ``httpx.AsyncClient`` with the same total concurrency, without
our guard, deadline, bounded decoding or per-host limits; the ratio shows what
those cost.

Run: ``python benchmarks/bench_fetch.py [--feeds 1000] [--hosts 10] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest_server import usable_hosts

from aggregator.sources.http import Fetcher

FEED_TEMPLATE = (
    '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>Feed {n}</title><id>urn:feed:{n}</id><updated>2024-01-01T00:00:00Z</updated>"
    + "".join(
        f"<entry><title>Entry {i}</title><id>urn:feed:{{n}}:{i}</id>"
        f"<updated>2024-01-01T00:00:00Z</updated><summary>Some text for entry {i} "
        "of this feed, long enough to look like a real summary.</summary></entry>"
        for i in range(10)
    )
    + "</feed>"
)


# --- the server (child process) -------------------------------------------------


def _serve(hosts: list[str], pipe: Connection) -> None:
    stats = {
        "open": 0,
        "peak_connections": 0,
        "connections": 0,
        "in_flight": 0,
        "peak_requests": 0,
        "requests": 0,
    }

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["open"] += 1
        stats["connections"] += 1
        stats["peak_connections"] = max(stats["peak_connections"], stats["open"])
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                inm = next(
                    (
                        line.split(":", 1)[1].strip()
                        for line in lines[1:]
                        if line.lower().startswith("if-none-match:")
                    ),
                    None,
                )
                stats["requests"] += 1
                stats["in_flight"] += 1
                stats["peak_requests"] = max(stats["peak_requests"], stats["in_flight"])
                if path == "/__stats":
                    body = json.dumps(stats).encode()
                    status, extra = "200 OK", ""
                elif path == "/__reset":
                    for key in stats:
                        if key not in ("open", "in_flight"):
                            stats[key] = 0
                    stats["peak_connections"] = stats["open"]
                    body, status, extra = b"", "200 OK", ""
                else:
                    n = path.rsplit("/", 1)[-1]
                    etag = f'"v1-{n}"'
                    if inm == etag:
                        body, status = b"", "304 Not Modified"
                    else:
                        body, status = FEED_TEMPLATE.format(n=n).encode(), "200 OK"
                    extra = f"ETag: {etag}\r\nContent-Type: application/atom+xml\r\n"
                # A tiny service time, as a real server would have, so requests overlap.
                await asyncio.sleep(0.001)
                writer.write(
                    f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                stats["in_flight"] -= 1
        except ConnectionError:
            pass
        finally:
            stats["open"] -= 1
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(client, host, 0, backlog=1024) for host in hosts]
        pipe.send([s.sockets[0].getsockname()[:2] for s in servers])
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # wait for "stop"
        for server in servers:
            server.close()

    asyncio.run(main())


# --- the clients ------------------------------------------------------------------


async def ours_pass(urls: list[str], etags: dict[str, str], concurrency: int) -> dict[str, str]:
    async with Fetcher(
        allow_networks=["127.0.0.0/8"], max_connections=concurrency, max_per_host=2
    ) as fetcher:
        # One fetcher (one pool) for the whole pass, like the daemon's long-lived one.
        async def one(url: str) -> tuple[str, str | None, int]:
            r = await fetcher.fetch(url, source=url, etag=etags.get(url))
            return url, r.etag, r.status

        results = await asyncio.gather(*(one(u) for u in urls))
    _check(results, etags)
    return {u: e for u, e, _ in results if e}


async def peer_pass(urls: list[str], etags: dict[str, str], concurrency: int) -> dict[str, str]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # A semaphore in front of the pool: httpcore's pool gets slow with a
    # thousand requests queued inside it (its queue scan is quadratic).
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=20.0) as client:

        async def one(url: str) -> tuple[str, str | None, int]:
            headers = {"If-None-Match": etags[url]} if url in etags else {}
            async with gate:
                r = await client.get(url, headers=headers)
            return url, r.headers.get("etag"), r.status_code

        results = await asyncio.gather(*(one(u) for u in urls))
    _check(results, etags)
    return {u: e for u, e, _ in results if e}


def _check(results: list[tuple[str, str | None, int]], etags: dict[str, str]) -> None:
    expected = 304 if etags else 200
    bad = [(u, s) for u, _, s in results if s != expected]
    if bad:
        raise SystemExit(f"unexpected statuses: {bad[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=10, help="loopback addresses to serve on")
    parser.add_argument("--concurrency", type=int, default=20, help="global connection limit")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    hosts = usable_hosts(args.hosts)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(hosts, child), daemon=True)
    server.start()
    addresses = parent.recv()
    urls = [
        f"http://{addresses[i % len(addresses)][0]}:{addresses[i % len(addresses)][1]}/feed/{i}"
        for i in range(args.feeds)
    ]
    control = f"http://{addresses[0][0]}:{addresses[0][1]}"

    clients: dict[str, Callable[[list[str], dict[str, str], int], Awaitable[dict[str, str]]]] = {
        "aggregator Fetcher": ours_pass,
        "plain httpx.AsyncClient": peer_pass,
    }
    times: dict[tuple[str, str], list[float]] = {}
    peaks: dict[tuple[str, str], tuple[int, int, int]] = {}
    try:
        for _round in range(args.rounds):
            for name, run_pass in clients.items():
                etags: dict[str, str] = {}
                for label in ("first pass (200)", "304 pass"):
                    httpx.get(control + "/__reset", timeout=5)
                    started = time.perf_counter()
                    etags = asyncio.run(run_pass(urls, etags, args.concurrency))
                    elapsed = time.perf_counter() - started
                    stats = httpx.get(control + "/__stats", timeout=5).json()
                    times.setdefault((name, label), []).append(elapsed)
                    print(f"  {name}, {label}: {elapsed:.3f} s", file=sys.stderr)
                    old = peaks.get((name, label), (0, 0, 0))
                    peaks[(name, label)] = (
                        max(old[0], stats["peak_connections"]),
                        max(old[1], stats["peak_requests"] - 1),  # minus the /__stats request
                        max(old[2], stats["connections"] - 1),  # minus the control connection
                    )
    finally:
        parent.send("stop")
        server.join(timeout=5)
        with contextlib.suppress(Exception):
            server.terminate()

    print(
        f"{args.feeds} feeds on {len(hosts)} loopback hosts, global limit {args.concurrency}, "
        f"per-host limit 2 (ours), median of {args.rounds} rounds"
    )
    columns = ("seconds", "req/s", "peak conns", "peak reqs", "opened")
    print(f"{'client':26} {'pass':18} " + " ".join(f"{c:>10}" for c in columns))
    for (name, label), values in times.items():
        median = statistics.median(values)
        conns, reqs, opened = peaks[(name, label)]
        print(
            f"{name:26} {label:18} {median:10.3f} {args.feeds / median:10.0f} "
            f"{conns:10d} {reqs:10d} {opened:10d}"
        )
    for label in ("first pass (200)", "304 pass"):
        ours = statistics.median(times[("aggregator Fetcher", label)])
        peer = statistics.median(times[("plain httpx.AsyncClient", label)])
        print(f"ratio ours/peer, {label}: {ours / peer:.2f}x")


if __name__ == "__main__":
    main()
