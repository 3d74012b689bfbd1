"""The fast path (uvicorn protocol answering without ASGI) against the ASGI path, byte for byte.

Two real servers on 127.0.0.1 serve the same :class:`DocumentStore`: one
with the fast protocol (``serve``'s default), one with ``fast_path=False``.
Raw requests go to both over sockets; responses must be identical except
for ``Date``. The app counts its ASGI calls, which tells which path answered.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

import pytest

from aggregator.model import TopicSpec
from aggregator.publish import Document, Site, TopicFeed, render_site
from aggregator.web import DocumentStore, _FeedApp, create_app
from tests.publish_helpers import free_socket, make_story, make_topic, run_server

pytest.importorskip("httptools", reason="the fast path needs httptools (uvicorn[standard])")

TOKEN = "s3cret-token"
DATE_RE = re.compile(rb"^date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


class CountingApp(_FeedApp):
    """The real app, counting HTTP requests that reach ASGI."""

    calls = 0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            self.calls += 1
        await super().__call__(scope, receive, send)


@dataclass
class Servers:
    fast: int
    slow: int
    fast_app: CountingApp
    slow_app: CountingApp
    store: DocumentStore
    docs: dict[str, Document]
    site: Site
    topics: dict[str, TopicSpec] = field(default_factory=dict)


def counting(store: DocumentStore) -> CountingApp:
    app = create_app(store, health=lambda: {"status": "ok"})
    assert isinstance(app, _FeedApp)
    return CountingApp(app.store, app.fallback)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    fast_sock, slow_sock = free_socket(), free_socket()
    site = Site(base_url="http://127.0.0.1/", title="Fast path")
    topics = {
        "caucasus": make_topic(cache_max_age=timedelta(minutes=7)),
        "world": make_topic("world", max_items=3),
        "secret": make_topic("secret", private=True, tokens=(TOKEN,)),
    }
    stories = tuple(make_story(i) for i in range(8))
    docs = render_site(site, [TopicFeed(t, stories) for t in topics.values()])
    store = DocumentStore(docs, topics=topics)
    fast_app, slow_app = counting(store), counting(store)
    with (
        run_server(fast_app, fast_sock) as fast,
        run_server(slow_app, slow_sock, fast_path=False) as slow,
    ):
        yield Servers(fast.port, slow.port, fast_app, slow_app, store, docs, site, topics)


# --- a raw HTTP/1.1 client -----------------------------------------------------


@dataclass(frozen=True)
class Raw:
    status_line: bytes
    headers: tuple[bytes, ...]  # header lines as sent, without Date
    date: bytes
    body: bytes


def request(path: str, method: str = "GET", version: str = "1.1", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(reader: BinaryIO, head: bool) -> Raw:
    status_line = reader.readline()
    assert status_line, "connection closed before a response"
    headers: list[bytes] = []
    date = b""
    length = 0
    while True:
        line = reader.readline().rstrip(b"\r\n")
        if not line:
            break
        if line.startswith(b"date: "):
            date = line
            continue
        headers.append(line)
        if line.startswith(b"content-length: "):
            length = int(line.split(b": ", 1)[1])
    status = int(status_line.split()[1])
    body = b"" if head or status in (204, 304) else reader.read(length)
    return Raw(status_line, tuple(headers), date, body)


def exchange(port: int, raw_requests: list[bytes], heads: list[bool]) -> tuple[list[Raw], bool]:
    """Send all requests at once (pipelined), read the responses; and whether it then closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(raw_requests))
        with sock.makefile("rb") as reader:
            responses = [read_response(reader, head) for head in heads]
            sock.shutdown(socket.SHUT_WR)
            closed = reader.read() == b""
    return responses, closed


def one(port: int, raw_request: bytes, head: bool = False) -> Raw:
    return exchange(port, [raw_request], [head])[0][0]


def both(servers: Servers, raw_request: bytes, head: bool = False) -> tuple[Raw, Raw, int, int]:
    """(fast response, ASGI response, ASGI calls on the fast server, on the slow server)."""
    before_fast, before_slow = servers.fast_app.calls, servers.slow_app.calls
    fast = one(servers.fast, raw_request, head)
    slow = one(servers.slow, raw_request, head)
    return (
        fast,
        slow,
        servers.fast_app.calls - before_fast,
        servers.slow_app.calls - before_slow,
    )


def tag(servers: Servers, path: str, gz: bool = False) -> str:
    etag = servers.docs[path].etag
    return etag[:-1] + '-gz"' if gz else etag


def last_modified(servers: Servers, path: str) -> str:
    r = one(servers.slow, request("/" + path, accept_encoding="identity"))
    (line,) = [h for h in r.headers if h.startswith(b"last-modified: ")]
    return line.split(b": ", 1)[1].decode()


# --- fast path answers exactly like the ASGI path -------------------------------

ATOM = "topics/caucasus.atom"
FAST_CASES: dict[str, tuple[str, str, dict[str, str]]] = {
    "plain GET, no accept-encoding": ("/" + ATOM, "GET", {}),
    "identity": ("/" + ATOM, "GET", {"accept_encoding": "identity"}),
    "gzip": ("/" + ATOM, "GET", {"accept_encoding": "gzip, deflate, br"}),
    "gzip refused by q=0": ("/" + ATOM, "GET", {"accept_encoding": "gzip;q=0, br"}),
    "rss": ("/topics/caucasus.rss", "GET", {"accept_encoding": "gzip"}),
    "json": ("/topics/caucasus.json", "GET", {}),
    "html topic page": ("/topics/caucasus", "GET", {"accept_encoding": "gzip"}),
    "index": ("/", "GET", {}),
    "opml": ("/topics.opml", "GET", {}),
    "archive": ("/topics/world/archive/1.atom", "GET", {"accept_encoding": "gzip"}),
    "query string ignored": ("/" + ATOM + "?x=1", "GET", {}),
    "HEAD": ("/" + ATOM, "HEAD", {"accept_encoding": "gzip"}),
    "HEAD identity": ("/topics/caucasus.json", "HEAD", {}),
    "connection close": ("/" + ATOM, "GET", {"connection": "close"}),
    "authorization on a public document": ("/" + ATOM, "GET", {"authorization": "Basic eDp5"}),
}


@pytest.mark.parametrize("case", sorted(FAST_CASES))
def test_fast_responses_equal_asgi_responses(servers: Servers, case: str) -> None:
    path, method, headers = FAST_CASES[case]
    fast, slow, fast_calls, slow_calls = both(
        servers, request(path, method, **headers), head=method == "HEAD"
    )
    assert (fast.status_line, fast.headers, fast.body) == (
        slow.status_line,
        slow.headers,
        slow.body,
    )
    assert fast.status_line == b"HTTP/1.1 200 OK\r\n"
    assert DATE_RE.match(fast.date) and DATE_RE.match(slow.date)
    assert (fast_calls, slow_calls) == (0, 1)


def conditional_cases(servers: Servers) -> dict[str, dict[str, str]]:
    plain, gz = tag(servers, ATOM), tag(servers, ATOM, gz=True)
    lm = last_modified(servers, ATOM)
    return {
        "inm exact": {"accept_encoding": "identity", "if_none_match": plain},
        "inm gzip variant": {"accept_encoding": "gzip", "if_none_match": gz},
        "inm plain tag on gzip request": {"accept_encoding": "gzip", "if_none_match": plain},
        "inm weak": {"accept_encoding": "identity", "if_none_match": "W/" + plain},
        "inm list": {"accept_encoding": "gzip", "if_none_match": f'"x", W/{gz}, "y"'},
        "inm star": {"if_none_match": "*"},
        "inm stale": {"if_none_match": '"nope"'},
        "ims exact": {"accept_encoding": "identity", "if_modified_since": lm},
        "ims other date": {"if_modified_since": "Mon, 01 Jan 2024 00:00:00 GMT"},
        "ims garbage": {"if_modified_since": "yesterday"},
        "inm wins over ims": {"if_modified_since": lm, "if_none_match": '"nope"'},
    }


EXPECTED_304 = {
    "inm exact",
    "inm gzip variant",
    "inm weak",
    "inm list",
    "inm star",
    "ims exact",
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_conditional_requests_equal_asgi(servers: Servers, method: str) -> None:
    for name, headers in conditional_cases(servers).items():
        fast, slow, fast_calls, slow_calls = both(
            servers, request("/" + ATOM, method, **headers), head=method == "HEAD"
        )
        assert (fast.status_line, fast.headers, fast.body) == (
            slow.status_line,
            slow.headers,
            slow.body,
        ), name
        status = 304 if name in EXPECTED_304 else 200
        assert fast.status_line.split()[1] == str(status).encode(), name
        if status == 304:
            assert fast.body == b"" and not any(h.startswith(b"content-") for h in fast.headers)
        assert (fast_calls, slow_calls) == (0, 1), name


# --- everything else goes through ASGI unchanged --------------------------------


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"reader:{password}".encode()).decode()


FALLBACK_CASES: dict[str, tuple[bytes, int]] = {
    "POST is a 405 from the app": (request("/" + ATOM, "POST", content_length="0"), 405),
    "DELETE": (request("/" + ATOM, "DELETE"), 405),
    "GET with a body": (request("/" + ATOM, content_length="3") + b"abc", 200),
    "GET chunked body": (
        request("/" + ATOM, transfer_encoding="chunked") + b"3\r\nabc\r\n0\r\n\r\n",
        200,
    ),
    "expect 100-continue": (request("/" + ATOM, expect="100-continue"), 200),
    "upgrade": (request("/" + ATOM, connection="upgrade", upgrade="h2c"), 200),
    "percent-encoded path": (request("/topics/caucasus%2Eatom"), 200),
    "private by path": (request(f"/private/{TOKEN}/topics/secret.atom"), 200),
    "private wrong token": (request("/private/nope/topics/secret.atom"), 404),
    "private by basic auth": (request("/topics/secret.atom", authorization=basic(TOKEN)), 200),
    "private wrong basic auth": (request("/topics/secret.atom", authorization=basic("x")), 404),
    "private without auth": (request("/topics/secret.json"), 404),
    "healthz": (request("/healthz"), 200),
    "unknown topic": (request("/topics/nope.atom"), 404),
    "unknown path": (request("/nope"), 404),
    "absolute-form target": (request("http://127.0.0.1/" + ATOM), 200),
}


@pytest.mark.parametrize("case", sorted(FALLBACK_CASES))
def test_other_requests_fall_back_to_asgi(servers: Servers, case: str) -> None:
    raw_request, status = FALLBACK_CASES[case]
    fast, slow, fast_calls, slow_calls = both(servers, raw_request)
    assert (fast.status_line, fast.headers, fast.body) == (
        slow.status_line,
        slow.headers,
        slow.body,
    )
    assert fast.status_line.split()[1] == str(status).encode()
    assert (fast_calls, slow_calls) == (1, 1)


# --- connections: keep-alive, pipelining, closing --------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(servers: Servers) -> None:
    expected = one(servers.slow, request("/" + ATOM, accept_encoding="gzip"))
    before = servers.fast_app.calls
    with (
        socket.create_connection(("127.0.0.1", servers.fast), timeout=5) as sock,
        sock.makefile("rb") as reader,
    ):
        for _ in range(5):
            sock.sendall(request("/" + ATOM, accept_encoding="gzip"))
            r = read_response(reader, head=False)
            assert (r.status_line, r.headers, r.body) == (
                expected.status_line,
                expected.headers,
                expected.body,
            )
        # the same connection still takes the ASGI path for other requests
        sock.sendall(request("/healthz"))
        assert read_response(reader, head=False).status_line == b"HTTP/1.1 200 OK\r\n"
        sock.sendall(request("/" + ATOM, if_none_match=tag(servers, ATOM)))
        assert read_response(reader, head=False).status_line.startswith(b"HTTP/1.1 304")
    assert servers.fast_app.calls - before == 1


PIPELINE = [
    (request("/" + ATOM, accept_encoding="identity"), False),
    (request("/healthz"), False),  # an ASGI cycle in flight: the rest must queue behind it
    (request("/topics/caucasus.rss", "HEAD"), True),
    (request("/" + ATOM, if_none_match="*"), False),
    (request("/" + ATOM, "POST", content_length="2") + b"{}", False),
    (request("/topics/caucasus.json", accept_encoding="gzip"), False),
    (request("/topics/nope.atom"), False),
    (request("/" + ATOM, accept_encoding="gzip"), False),
]


@pytest.mark.parametrize("start", [0, 1, 4])
def test_pipelined_requests_answered_in_order(servers: Servers, start: int) -> None:
    batch = PIPELINE[start:] + PIPELINE[:start]
    raw_requests = [r for r, _ in batch]
    heads = [h for _, h in batch]
    expected = [one(servers.slow, r, h) for r, h in batch]
    got, closed = exchange(servers.fast, raw_requests, heads)
    assert [(r.status_line, r.headers, r.body) for r in got] == [
        (r.status_line, r.headers, r.body) for r in expected
    ]
    assert closed  # after our EOF, once every response is out


def test_pipelined_fast_requests_only(servers: Servers) -> None:
    before = servers.fast_app.calls
    raw = request("/" + ATOM, accept_encoding="gzip")
    got, _ = exchange(servers.fast, [raw] * 20, [False] * 20)
    expected = one(servers.slow, raw)
    assert all((r.headers, r.body) == (expected.headers, expected.body) for r in got)
    assert servers.fast_app.calls == before


def test_http10_without_keep_alive_closes(servers: Servers) -> None:
    for headers in ({}, {"connection": "keep-alive"}):
        raw = request("/" + ATOM, version="1.0", **headers)
        expected = one(servers.slow, raw)
        got, closed = exchange(servers.fast, [raw], [False])
        assert closed
        assert (got[0].headers, got[0].body) == (expected.headers, expected.body)
        assert b"connection: close" in got[0].headers


def test_connection_close_drops_pipelined_followers(servers: Servers) -> None:
    """Like uvicorn: nothing after a ``Connection: close`` request is answered."""
    for port in (servers.fast, servers.slow):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
            sock.makefile("rb") as reader,
        ):
            sock.sendall(request("/" + ATOM, connection="close") + request("/" + ATOM))
            first = read_response(reader, head=False)
            assert b"connection: close" in first.headers
            assert reader.read() == b""


def test_replaced_documents_are_served_at_once(servers: Servers) -> None:
    old = one(servers.fast, request("/" + ATOM))
    stories = tuple(make_story(i) for i in range(9))
    changed = render_site(servers.site, [TopicFeed(t, stories) for t in servers.topics.values()])
    servers.store.replace(changed)
    try:
        new = one(servers.fast, request("/" + ATOM, accept_encoding="identity"))
        assert new.body == changed[ATOM].body != old.body
        assert f"etag: {changed[ATOM].etag}".encode() in new.headers
        gone = dict(changed)
        del gone[ATOM]
        servers.store.replace(gone)
        assert one(servers.fast, request("/" + ATOM)).status_line.startswith(b"HTTP/1.1 404")
    finally:
        servers.store.replace(servers.docs)
    again = one(servers.fast, request("/" + ATOM, accept_encoding="identity"))
    assert again.body == servers.docs[ATOM].body


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_access_log_lines_match_the_asgi_path(servers: Servers, version: str) -> None:
    records = _Records()
    logger = logging.getLogger("uvicorn.access")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)  # serve(log_level="warning") silences INFO
    raw = request("/" + ATOM + "?a=1&b=%20c", version=version, if_none_match="*")
    try:
        before = servers.fast_app.calls
        one(servers.fast, raw)
        one(servers.slow, raw)
        assert servers.fast_app.calls == before
    finally:
        logger.setLevel(level)
        logger.removeHandler(records)
    # "127.0.0.1:<client port> - ..." : the client ports differ
    fast, slow = (m.split(" - ", 1)[1] for m in records.messages)
    assert fast == slow == f'"GET /{ATOM}?a=1&b=%20c HTTP/{version}" 304'
