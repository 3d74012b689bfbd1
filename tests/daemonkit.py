"""Helpers for the daemon tests: a daemon subprocess, a changeable feed server, polling."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self, TypeVar

from .conftest import REPO

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], T], timeout: float, what: str, step: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def wait_progress(count: Callable[[], int], target: int, stall: float, what: str) -> None:
    """Poll ``count`` until it reaches ``target``; fail once it has not grown for ``stall`` s.

    The wait is tied to progress, not to a budget: a slow machine gets all the
    time it needs as long as something moves.
    """
    wait_moving(lambda: count() >= target, count, stall, f"{what} (of {target})")


def wait_moving(
    done: Callable[[], bool], count: Callable[[], int], stall: float, what: str
) -> None:
    """Poll ``done`` until true; fail once ``count`` (the work behind it) stalls ``stall`` s.

    For an event at the end of a long piece of work (an update saving its state
    after storing thousands of entries): the wait lasts as long as the work moves.
    """
    best = count()
    last_move = time.monotonic()
    while not done():
        time.sleep(0.2)
        now = count()
        if now > best:
            best, last_move = now, time.monotonic()
        elif time.monotonic() - last_move > stall:
            raise AssertionError(f"{what}: nothing moved for {stall}s (stuck at {best})")


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


class QuietHandler(BaseHTTPRequestHandler):
    """A loopback feed server's handler: logs nothing, answers RSS."""

    def send_rss(self, body: bytes, **headers: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/rss+xml")
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def loopback_server(
    handler: type[BaseHTTPRequestHandler],
) -> tuple[ThreadingHTTPServer, str, threading.Thread]:
    """A threaded server on 127.0.0.1 (not started): the server, its base URL, its thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    return httpd, base, threading.Thread(target=httpd.serve_forever, daemon=True)


class LoopbackServed:
    """A test server on 127.0.0.1 as a context manager: it serves inside the block only.

    A subclass builds its handler and calls :meth:`_serve` with it.
    """

    httpd: ThreadingHTTPServer
    base: str
    thread: threading.Thread

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd, self.base, self.thread = loopback_server(handler)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CountingServer(LoopbackServed):
    """A loopback server that counts GET requests per path and lets :meth:`answer` reply.

    Use as a context manager: the server runs inside the block and stops after it.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.counts[self.path] += 1
                owner.answer(self)

        self._serve(Handler)

    def answer(self, handler: QuietHandler) -> None:
        """Reply to one counted request."""
        raise NotImplementedError

    def snapshot(self) -> Counter[str]:
        """Requests per path so far."""
        with self.lock:
            return Counter(self.counts)

    def fetched(self) -> int:
        """Paths requested at least once."""
        with self.lock:
            return len(self.counts)


def write_seed_config(folder: Path, *, port: int, max_items: int) -> Path:
    """``folder/aggregator.yaml``: one seed folder ``folder/seeds`` polled hourly, one topic."""
    config = folder / "aggregator.yaml"
    config.write_text(
        f"""
data_dir: var
server: {{host: 127.0.0.1, port: {port}}}
defaults: {{interval: 1h}}
sources:
  - name: seeds
    path: seeds
topics:
  - name: karabakh
    query: Karabakh
    max_items: {max_items}
""",
        encoding="utf-8",
    )
    return config


class FeedServer(LoopbackServed):
    """A loopback HTTP server serving one RSS feed whose items a test can change."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.send_rss(owner.render().encode())

        self._serve(Handler)
        base = self.base
        self.url = f"{base}/feed.xml"

    def add(self, guid: str, title: str, body: str) -> None:
        with self.lock:
            self.items.append((guid, title, body))

    def render(self) -> str:
        with self.lock:
            items = list(self.items)
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        out = [
            f"<item><guid>{g}</guid><title>{t}</title><link>https://news.example/{g}</link>"
            f"<description>{b}</description>"
            f"<pubDate>{format_datetime(t0 + timedelta(hours=i))}</pubDate></item>"
            for i, (g, t, b) in enumerate(items)
        ]
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
            "<link>https://news.example/</link><description>wire</description>"
            + "".join(out)
            + "</channel></rss>"
        )


class DaemonProcess:
    """``python -m aggregator --config CFG run`` (or another command) as a subprocess."""

    def __init__(
        self, config: Path, *args: str, log: Path | None = None, command: str = "run"
    ) -> None:
        self.config = config
        self.log_path = log or config.parent / "daemon.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for key in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATA_DIR", "AGGREGATOR_LOG_FORMAT"):
            env.pop(key, None)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), command, *args],
            stdout=self._log,
            stderr=self._log,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    @contextmanager
    def diagnosed(self) -> Iterator[None]:
        """A failed wait inside also shows the tail of this daemon's log."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- daemon log, last lines ---\n{self.log()[-3000:]}"
            ) from None

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@contextmanager
def running(config: Path, *args: str) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(config, *args)
    try:
        yield daemon
    finally:
        daemon.kill()
