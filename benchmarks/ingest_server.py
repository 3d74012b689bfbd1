"""A loopback feed server for the ingest benchmark, run in a child process.

It serves the corpus ``ingest_corpus.generate`` wrote, on several loopback
addresses (127.0.0.1, 127.0.0.2, ...: many hosts with a few feeds each, as in
real life, so per-host limits behave as they do there), with plain asyncio
and HTTP/1.1 keep-alive:

* ``ETag`` and/or ``Last-Modified`` per feed; ``If-None-Match`` /
  ``If-Modified-Since`` that match get ``304 Not Modified``;
* gzip (precompressed) when the client accepts it and the feed's server "does";
* slow feeds answer after their delay; failing feeds answer 404 or 500, or
  hold the request without answering for ``hang`` seconds and then close;
* ``/__stats`` counts requests by status and bytes sent; ``/__reset`` zeroes it.

``FeedServer`` starts it, gives each feed's URL, and stops it (``stop()`` or
the context manager; the child also stops by itself after ``lifetime``
seconds, so nothing outlives the benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import multiprocessing
import socket
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

import ingest_corpus


def usable_hosts(count: int) -> list[str]:
    """Loopback addresses this machine lets us bind, up to ``count``."""
    hosts = []
    for i in range(1, count + 1):
        host = f"127.0.0.{i}"
        with socket.socket() as sock:
            try:
                sock.bind((host, 0))
            except OSError:
                continue
        hosts.append(host)
    return hosts or ["127.0.0.1"]


def _serve(folder: str, hosts: list[str], hang: float, lifetime: float, pipe: Connection) -> None:
    feeds = ingest_corpus.load(Path(folder))
    bodies: dict[str, tuple[ingest_corpus.FeedFile, bytes, bytes | None]] = {}
    for feed in feeds:
        body = (Path(folder) / feed.file).read_bytes()
        bodies[feed.path] = (feed, body, gzip.compress(body, 6) if feed.gzip else None)
    statuses: Counter[str] = Counter()
    sent = [0]

    def response(status: str, headers: dict[str, str], body: bytes, head_only: bool) -> bytes:
        headers["Content-Length"] = str(len(body))
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return f"HTTP/1.1 {status}\r\n{lines}\r\n".encode() + (b"" if head_only else body)

    async def answer(method: str, path: str, request: dict[str, str]) -> bytes | None:
        if path == "/__stats":
            return response(
                "200 OK", {}, json.dumps({**statuses, "bytes": sent[0]}).encode(), False
            )
        if path == "/__reset":
            statuses.clear()
            sent[0] = 0
            return response("200 OK", {}, b"", False)
        found = bodies.get(path)
        if found is None:
            statuses["404"] += 1
            return response("404 Not Found", {"Content-Type": "text/plain"}, b"no such feed", False)
        feed, body, zipped = found
        if feed.behaviour == "hang":
            statuses["hang"] += 1
            await asyncio.sleep(hang)
            return None
        if feed.delay:
            await asyncio.sleep(feed.delay)
        if feed.behaviour in ("404", "500"):
            statuses[feed.behaviour] += 1
            status = "404 Not Found" if feed.behaviour == "404" else "500 Internal Server Error"
            return response(status, {"Content-Type": "text/html"}, b"<h1>error</h1>", False)
        headers = {"Content-Type": feed.content_type, "Vary": "Accept-Encoding"}
        if feed.etag:
            headers["ETag"] = feed.etag
        if feed.last_modified:
            headers["Last-Modified"] = feed.last_modified
        inm, ims = request.get("if-none-match"), request.get("if-modified-since")
        if (feed.etag and inm is not None and feed.etag in inm) or (
            not (feed.etag and inm is not None) and ims is not None and ims == feed.last_modified
        ):
            statuses["304"] += 1
            return response("304 Not Modified", headers, b"", True)
        statuses["200"] += 1
        if zipped is not None and "gzip" in request.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            body = zipped
        sent[0] += len(body)
        return response("200 OK", headers, body, method == "HEAD")

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                request = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        request[key.strip().lower()] = value.strip()
                data = await answer(method, target.split("?")[0], request)
                if data is None:
                    return
                writer.write(data)
                await writer.drain()
                if request.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the server is stopping (held requests are cancelled)
        finally:
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(client, host, 0, backlog=2048) for host in hosts]
        pipe.send([s.sockets[0].getsockname()[:2] for s in servers])
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def wait_for_stop() -> None:
            with contextlib.suppress(EOFError, OSError):
                pipe.recv()  # "stop" from the benchmark, or its end
            loop.call_soon_threadsafe(stop.set)

        # A daemon thread, not the executor: at ``lifetime`` it may still be blocked.
        threading.Thread(target=wait_for_stop, daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), lifetime)
        for server in servers:
            server.close()

    asyncio.run(main())


class FeedServer:
    """The corpus in ``folder`` served on loopback by a child process."""

    def __init__(
        self, folder: Path, hosts: int = 10, hang: float = 8.0, lifetime: float = 4 * 3600
    ) -> None:
        self.feeds = ingest_corpus.load(folder)
        parent, child = multiprocessing.Pipe()
        self._pipe = parent
        self._process = multiprocessing.Process(
            target=_serve,
            args=(str(folder), usable_hosts(hosts), hang, lifetime, child),
            daemon=True,
        )
        self._process.start()
        if not parent.poll(120):
            self.stop()
            raise RuntimeError("feed server did not start within 120 s")
        self.addresses: list[tuple[str, int]] = parent.recv()
        #: one URL per feed, in corpus order, spread over the addresses
        self.urls = [
            "http://{}:{}{}".format(*self.addresses[i % len(self.addresses)], feed.path)
            for i, feed in enumerate(self.feeds)
        ]
        self.control = "http://{}:{}".format(*self.addresses[0])

    def _get(self, path: str) -> bytes:
        import urllib.request

        with urllib.request.urlopen(self.control + path, timeout=10) as reply:
            body: bytes = reply.read()
            return body

    def stats(self) -> dict[str, int]:
        """Requests by status (``200``, ``304``, ``404``, ``500``, ``hang``) and body bytes."""
        result: dict[str, int] = json.loads(self._get("/__stats"))
        return result

    def reset(self) -> None:
        """Zero the counters."""
        self._get("/__reset")

    def stop(self) -> None:
        """Stop the child (politely, then by force)."""
        with contextlib.suppress(OSError, BrokenPipeError):
            self._pipe.send("stop")
        deadline = time.monotonic() + 10
        self._process.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
