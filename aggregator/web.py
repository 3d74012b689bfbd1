"""HTTP serving of the published documents; the only module importing starlette and uvicorn.

The hot path is a plain ASGI callable that answers from bytes and headers
computed once per publish (:class:`DocumentStore`): no routing, no file
system, no per-request hashing or compression. Anything it does not own
(``/healthz``, routes added by the daemon such as ``/metrics``, and every
404) falls through to a small Starlette app.

HTTP behaviour of a published document:

* ``ETag`` is strong and derived from the bytes. The gzip variant has its own
  strong ETag (``"<hash>-gz"``): RFC 9110 8.8.3 requires a strong validator to
  differ between representations whose bytes differ, and a shared tag would
  let a cache combine ranges of the two. ``If-None-Match`` uses the weak
  comparison (RFC 9110 13.1.2) against the variant being selected.
* ``If-Modified-Since`` is honoured only without ``If-None-Match``, and only
  on an exact match (like nginx's default ``if_modified_since exact``):
  ``Last-Modified`` comes from the content and can move backwards when a
  story leaves a topic, so "not newer than" could wrongly answer 304.
* ``Cache-Control: max-age`` comes from the document's topic; documents of
  private topics are ``private``.
* Private topics: ``/private/<token>/topics/...`` or the public path with
  HTTP Basic auth (any user, password = token); tokens are compared in
  constant time, and a wrong or missing token is a 404, like an unknown path.

Fast path: with httptools installed, :func:`serve` runs uvicorn with
:class:`_FastProtocol`, a subclass of uvicorn's httptools protocol that
answers a plain GET/HEAD of a public published document straight from the
parser callbacks with one ``transport.write`` of precomputed bytes, skipping
the per-request ASGI cycle (task, scope, send/receive coroutines) that
otherwise costs more than everything the app itself does. It sends exactly
the bytes the ASGI path would (uvicorn's status line and ``Date``, then the
same headers and body) and hands anything else to uvicorn unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from aggregator.model import TopicSpec
from aggregator.publish import Document
from aggregator.publish._base import http_date
from aggregator.publish.paths import parse_path, topic_of

try:  # httptools is optional in uvicorn; without it the fast path is simply off
    from uvicorn.protocols.http import httptools_impl as _httptools_impl
except ImportError:  # pragma: no cover - uvicorn[standard] installs it
    _httptools_impl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_MAX_AGE", "DocumentStore", "create_app", "serve"]

#: ``max-age`` of documents that belong to no topic (index, OPML)
DEFAULT_MAX_AGE = timedelta(minutes=5)

# Bodies smaller than this are not worth a gzip variant (headers dominate).
_GZIP_MIN_BYTES = 256
_NOT_FOUND_BODY = b"Not Found"
_NOT_FOUND_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_NOT_FOUND_BODY)).encode()),
]
_ETAG_RE = re.compile(rb'(?:W/)?"([^"]*)"')


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Everything needed to answer for one document, computed once."""

    document: Document
    cache_control: bytes
    body: bytes
    gz_body: bytes | None
    #: opaque tags (without quotes) of the identity and gzip variants
    tag: bytes
    gz_tag: bytes | None
    last_modified: bytes
    headers: list[tuple[bytes, bytes]]
    gz_headers: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]
    gz_headers_304: list[tuple[bytes, bytes]]
    #: the same header lists as HTTP/1.1 wire bytes (``name: value\r\n`` each),
    #: indexed by variant: 200 identity, 200 gzip, 304 identity, 304 gzip
    raw_headers: tuple[bytes, bytes, bytes, bytes]


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Header lines as uvicorn writes them (lower-case name, ``: ``, value, CRLF)."""
    return b"".join(name.lower() + b": " + value + b"\r\n" for name, value in headers)


def _cache_control(topic: TopicSpec | None, default: timedelta) -> bytes:
    if topic is None:
        return b"max-age=%d" % int(default.total_seconds())
    seconds = int(topic.cache_max_age.total_seconds())
    return (b"private, max-age=%d" if topic.private else b"max-age=%d") % seconds


def _prepare(doc: Document, cache_control: bytes) -> _Prepared:
    body = doc.body
    tag = doc.etag.strip('"').encode("ascii")
    last_modified = http_date(doc.last_modified).encode("ascii")
    compressed = gzip.compress(body, compresslevel=9, mtime=0)
    gz_body = compressed if len(body) >= _GZIP_MIN_BYTES and len(compressed) < len(body) else None
    gz_tag = tag + b"-gz" if gz_body is not None else None
    # RFC 9110 15.4.5: a 304 repeats ETag, Cache-Control and Vary; Last-Modified
    # adds nothing next to an ETag, and every header costs on the hot path.
    common = [(b"cache-control", cache_control)]
    if gz_body is not None:
        common.append((b"vary", b"accept-encoding"))
    content_type = doc.content_type.encode("ascii")
    headers_304 = [(b"etag", b'"' + tag + b'"'), *common]
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"last-modified", last_modified),
        *headers_304,
    ]
    gz_headers: list[tuple[bytes, bytes]] = []
    gz_headers_304: list[tuple[bytes, bytes]] = []
    if gz_body is not None and gz_tag is not None:
        gz_headers_304 = [(b"etag", b'"' + gz_tag + b'"'), *common]
        gz_headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(gz_body)).encode("ascii")),
            (b"content-encoding", b"gzip"),
            (b"last-modified", last_modified),
            *gz_headers_304,
        ]
    return _Prepared(
        document=doc,
        cache_control=cache_control,
        body=body,
        gz_body=gz_body,
        tag=tag,
        gz_tag=gz_tag,
        last_modified=last_modified,
        headers=headers,
        gz_headers=gz_headers,
        headers_304=headers_304,
        gz_headers_304=gz_headers_304,
        raw_headers=(
            _header_block(headers),
            _header_block(gz_headers),
            _header_block(headers_304),
            _header_block(gz_headers_304),
        ),
    )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    documents: Mapping[str, Document]
    #: documents reachable without a token
    public: dict[str, _Prepared]
    #: documents under ``private/<token>/``
    private: dict[str, _Prepared]
    #: private topics by name
    private_topics: dict[str, TopicSpec]
    #: ``public`` keyed by the raw request path (``b"/topics/x.atom"``), for the
    #: fast path; paths that need percent-decoding are left to the ASGI path
    fast: dict[bytes, _Prepared]


class DocumentStore:
    """The published documents held in memory, ready to serve.

    :meth:`replace` prepares the new set (gzip, headers) off to the side and
    swaps it in with one assignment, so a request sees either the old set or
    the new one, never a mix.
    """

    def __init__(
        self,
        docs: Mapping[str, Document] | None = None,
        *,
        topics: Mapping[str, TopicSpec] | None = None,
        default_max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self._default_max_age = default_max_age
        self._topics: dict[str, TopicSpec] = dict(topics or {})
        self._prepared: dict[str, _Prepared] = {}
        self._snapshot = _Snapshot({}, {}, {}, {}, {})
        self.replace(docs or {}, topics=topics)

    @property
    def documents(self) -> Mapping[str, Document]:
        """The documents currently served, by URL path (read-only view)."""
        return self._snapshot.documents

    def __len__(self) -> int:
        return len(self._snapshot.documents)

    def replace(
        self, docs: Mapping[str, Document], *, topics: Mapping[str, TopicSpec] | None = None
    ) -> None:
        """Serve ``docs`` from now on (and ``topics``' cache and privacy rules when given).

        Unchanged documents (same path, ETag and cache rule) reuse their
        prepared form, so republishing a site with one changed topic only
        compresses that topic.
        """
        if topics is not None:
            self._topics = dict(topics)
        public: dict[str, _Prepared] = {}
        private: dict[str, _Prepared] = {}
        for path, doc in docs.items():
            topic = self._topics.get(topic_of(path) or "")
            cache_control = _cache_control(topic, self._default_max_age)
            old = self._prepared.get(path)
            if old is not None and old.document == doc and old.cache_control == cache_control:
                prepared = old
            else:
                prepared = _prepare(doc, cache_control)
            if path.startswith("private/"):
                private[path] = prepared
            else:
                public[path] = prepared
        self._prepared = {**public, **private}
        private_topics = {name: t for name, t in self._topics.items() if t.private}
        fast = {
            b"/" + path.encode("ascii"): prepared
            for path, prepared in public.items()
            if path.isascii() and not any(c in path for c in "%?#")
        }
        self._snapshot = _Snapshot(dict(docs), public, private, private_topics, fast)


@lru_cache(maxsize=512)
def _accepts_gzip(value: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (RFC 9110 12.5.3)."""
    star: float | None = None
    for part in value.lower().split(b","):
        coding, _, params = part.strip().partition(b";")
        q = 1.0
        params = params.strip()
        if params.startswith(b"q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        coding = coding.strip()
        if coding in (b"gzip", b"x-gzip"):
            return q > 0
        if coding == b"*":
            star = q
    return star is not None and star > 0


@lru_cache(maxsize=1024)
def _etag_matches(value: bytes, tag: bytes) -> bool:
    """Weak comparison of ``If-None-Match`` against our opaque tag."""
    if value.strip() == b"*":
        return True
    return any(m.group(1) == tag for m in _ETAG_RE.finditer(value))


@lru_cache(maxsize=256)
def _same_date(value: bytes, last_modified: bytes) -> bool:
    if value == last_modified:
        return True
    try:
        return parsedate_to_datetime(value.decode("latin-1")) == parsedate_to_datetime(
            last_modified.decode("ascii")
        )
    except (TypeError, ValueError, IndexError):
        return False


def _token_ok(given: str, tokens: Sequence[str]) -> str | None:
    """The configured token equal to ``given`` (constant time over all tokens)."""
    found: str | None = None
    given_bytes = given.encode("utf-8")
    for token in tokens:
        if hmac.compare_digest(given_bytes, token.encode("utf-8")):
            found = token
    return found


def _basic_password(value: bytes) -> str | None:
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


class _FeedApp:
    """The hot path: published documents from memory, everything else to ``fallback``."""

    def __init__(self, store: DocumentStore, fallback: ASGIApp) -> None:
        self.store = store
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        snapshot = self.store._snapshot
        key: str = scope["path"][1:]
        prepared = snapshot.public.get(key)
        if prepared is None:
            if key.startswith("private/"):
                prepared = self._private_by_path(snapshot, key)
            elif key.startswith("topics/") and snapshot.private_topics:
                topic = snapshot.private_topics.get(topic_of(key) or "")
                if topic is not None:
                    prepared = self._private_by_auth(snapshot, topic, key, scope)
                else:
                    await self.fallback(scope, receive, send)
                    return
            else:
                await self.fallback(scope, receive, send)
                return
            if prepared is None:
                await _not_found(send)
                return
        await _answer(prepared, scope, send)

    @staticmethod
    def _private_by_path(snapshot: _Snapshot, key: str) -> _Prepared | None:
        parsed = parse_path(key)
        if parsed is None or parsed.token is None:
            return None
        topic = snapshot.private_topics.get(parsed.topic or "")
        if topic is None or _token_ok(parsed.token, topic.tokens) is None:
            return None
        return snapshot.private.get(key)

    @staticmethod
    def _private_by_auth(
        snapshot: _Snapshot, topic: TopicSpec, key: str, scope: Scope
    ) -> _Prepared | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                password = _basic_password(value)
                token = _token_ok(password, topic.tokens) if password is not None else None
                if token is None:
                    return None
                return snapshot.private.get(f"private/{token}/{key}")
        return None


async def _not_found(send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": _NOT_FOUND_HEADERS})
    await send({"type": "http.response.body", "body": _NOT_FOUND_BODY})


def _select(
    prepared: _Prepared, inm: bytes | None, ims: bytes | None, accept: bytes | None
) -> tuple[bool, bool]:
    """``(use_gzip, not_modified)`` for a GET/HEAD given its request headers."""
    use_gz = prepared.gz_body is not None and accept is not None and _accepts_gzip(accept)
    tag = prepared.gz_tag if use_gz and prepared.gz_tag is not None else prepared.tag
    if inm is not None:
        not_modified = _etag_matches(inm, tag)
    elif ims is not None:
        not_modified = _same_date(ims, prepared.last_modified)
    else:
        not_modified = False
    return use_gz, not_modified


async def _answer(prepared: _Prepared, scope: Scope, send: Send) -> None:
    method = scope["method"]
    if method != "GET" and method != "HEAD":
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    inm = ims = accept = None
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            inm = value
        elif name == b"accept-encoding":
            accept = value
        elif name == b"if-modified-since":
            ims = value
    use_gz, not_modified = _select(prepared, inm, ims, accept)
    if not_modified:
        headers = prepared.gz_headers_304 if use_gz else prepared.headers_304
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    if use_gz:
        headers, body = prepared.gz_headers, prepared.gz_body or b""
    else:
        headers, body = prepared.headers, prepared.body
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def create_app(
    store: DocumentStore,
    *,
    health: Callable[[], Mapping[str, Any]] | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
) -> ASGIApp:
    """Build the ASGI app serving ``store``.

    Args:
        store: the documents to serve; call ``store.replace(...)`` to publish anew.
        health: returns the ``/healthz`` JSON body; a ``"status"`` other than
            ``"ok"`` answers 503. Defaults to ``{"status": "ok", "documents": N}``.
        metrics: returns ``(body, content_type)`` for ``/metrics``; no route when None.

    Returns:
        An ASGI application.
    """

    async def healthz(request: Request) -> Response:
        body = dict(health()) if health else {"status": "ok", "documents": len(store)}
        status = 200 if body.get("status", "ok") == "ok" else 503
        return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    if metrics is not None:
        get_metrics = metrics

        async def metrics_route(request: Request) -> Response:
            body, content_type = get_metrics()
            return Response(body, media_type=content_type, headers={"cache-control": "no-store"})

        routes.append(Route("/metrics", metrics_route, methods=["GET"]))
    fallback = Starlette(
        routes=routes,
        exception_handlers={404: not_found},
    )
    return _FeedApp(store, fallback)


# Request headers that mean "not a plain conditional GET": a body is coming
# (or might), the client waits for 100-continue, or wants another protocol.
_FALLBACK_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade"))
_CLOSE_LINE = b"connection: close\r\n"
# Variant bits of a fast response (an index into the response cache key).
_GZ, _NOT_MODIFIED, _HEAD, _CLOSE = 1, 2, 4, 8
# Bound on the bytes the per-second response cache holds before starting over.
_CACHE_MAX_BYTES = 64 * 1024 * 1024


class _Responses:
    """Whole fast-path responses (status line to body) for the current ``Date``.

    uvicorn refreshes its default headers (``Date``) once a second by
    replacing the list; a response built under the old list is stale, so the
    cache starts over whenever the list object changes. Within a second each
    (document, variant) is assembled once and then written as is.
    """

    __slots__ = ("_defaults", "_entries", "_prefix", "_size")

    def __init__(self) -> None:
        self._defaults: object = None
        self._prefix = b""
        self._entries: dict[tuple[int, int], tuple[_Prepared, bytes]] = {}
        self._size = 0

    def get(self, defaults: list[tuple[bytes, bytes]], prepared: _Prepared, variant: int) -> bytes:
        """The response bytes of ``prepared`` in ``variant`` under ``defaults``."""
        if defaults is not self._defaults:
            self._defaults = defaults
            self._prefix = _header_block(defaults)
            self._entries = {}
            self._size = 0
        key = (id(prepared), variant)
        entry = self._entries.get(key)
        # id() alone could name a newer object after a replace(); check identity.
        if entry is not None and entry[0] is prepared:
            return entry[1]
        data = self._build(prepared, variant)
        if self._size + len(data) > _CACHE_MAX_BYTES:
            self._entries = {}
            self._size = 0
        self._entries[key] = (prepared, data)
        self._size += len(data)
        return data

    def _build(self, prepared: _Prepared, variant: int) -> bytes:
        assert _httptools_impl is not None
        gz = bool(variant & _GZ)
        not_modified = bool(variant & _NOT_MODIFIED)
        if not_modified or variant & _HEAD:
            body = b""
        else:
            body = (prepared.gz_body or b"") if gz else prepared.body
        return b"".join(
            (
                _httptools_impl.STATUS_LINE[304 if not_modified else 200],
                self._prefix,
                prepared.raw_headers[variant & (_GZ | _NOT_MODIFIED)],
                _CLOSE_LINE if variant & _CLOSE else b"",
                b"\r\n",
                body,
            )
        )


if _httptools_impl is not None:

    class _FastProtocol(_httptools_impl.HttpToolsProtocol):
        """uvicorn's httptools protocol answering published documents without ASGI.

        A request takes the fast path only when it is a GET or HEAD over
        HTTP/1.1 or 1.0 for a public published document, with no body, no
        ``Expect`` and no ``Upgrade``, while no ASGI cycle is in flight on the
        connection (so pipelined responses stay in order) and the transport
        is not pushing back. Everything else goes to uvicorn untouched.
        """

        _store: DocumentStore
        _responses: _Responses

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            #: the response to write when the current request's message completes;
            #: b"" drops a request that follows a ``Connection: close`` one
            self._fast_response: bytes | None = None
            self._fast_close = False
            # Off when uvicorn would do per-request work the fast path skips:
            # a root path prefix, the concurrency limit's 503s.
            self._fast_enabled = not self.root_path and self.limit_concurrency is None

        def on_headers_complete(self) -> None:
            response = self._fast() if self._fast_enabled else None
            if response is None:
                super().on_headers_complete()
            else:
                self._fast_response = response

        def on_body(self, body: bytes) -> None:
            if self._fast_response is None:
                super().on_body(body)

        def on_message_complete(self) -> None:
            response = self._fast_response
            if response is None:
                super().on_message_complete()
                return
            self._fast_response = None
            if not response:
                return
            self.transport.write(response)
            if self._fast_close:
                self.transport.close()
            # Counts the request, re-arms the keep-alive timeout (or returns
            # at once when closing), as after an ASGI response.
            self.on_response_complete()

        def _fast(self) -> bytes | None:
            """The whole response for the current request, or None for the ASGI path."""
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                return None  # queue behind the request in flight
            if self.transport.is_closing():
                # An earlier response closed the connection; uvicorn would
                # leave this pipelined request queued forever: drop it.
                return b""
            if self.flow.write_paused:
                return None  # the ASGI path waits for the client to drain
            parser = self.parser
            method = parser.get_method()
            if method == b"GET":
                head = False
            elif method == b"HEAD":
                head = True
            else:
                return None
            version = parser.get_http_version()
            if version == "1.1":
                keep_alive = parser.should_keep_alive()
            elif version == "1.0":
                keep_alive = False  # as uvicorn: HTTP/1.0 connections always close
            else:
                return None
            url = self.url
            if url[:1] != b"/" or parser.should_upgrade():
                return None
            prepared = self._store._snapshot.fast.get(url.partition(b"?")[0])
            if prepared is None:
                return None
            inm = ims = accept = None
            for name, value in self.headers:
                if name == b"if-none-match":
                    inm = value
                elif name == b"accept-encoding":
                    accept = value
                elif name == b"if-modified-since":
                    ims = value
                elif name in _FALLBACK_HEADERS:
                    return None
            use_gz, not_modified = _select(prepared, inm, ims, accept)
            variant = (
                (_GZ if use_gz else 0)
                | (_NOT_MODIFIED if not_modified else 0)
                | (_HEAD if head else 0)
                | (0 if keep_alive else _CLOSE)
            )
            self._fast_close = not keep_alive
            if self.access_log:
                self._log_access(method, version, 304 if not_modified else 200)
            return self._responses.get(self.server_state.default_headers, prepared, variant)

        def _log_access(self, method: bytes, version: str, status: int) -> None:
            """The access log line uvicorn's ASGI path would write, from the same scope."""
            scope = self.scope
            path, _, query = self.url.partition(b"?")
            scope["method"] = method.decode("ascii")
            scope["raw_path"] = path
            scope["path"] = path.decode("ascii")
            scope["query_string"] = query.partition(b"#")[0]
            if version != "1.1":
                scope["http_version"] = version
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                status,
            )

    def _fast_protocol(store: DocumentStore) -> type[asyncio.Protocol]:
        """A :class:`_FastProtocol` class bound to ``store`` (uvicorn builds one per connection)."""

        class _BoundFastProtocol(_FastProtocol):
            _store = store
            _responses = _Responses()

        return _BoundFastProtocol


def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int,
    access_log: bool = False,
    log_level: str = "warning",
    fast_path: bool = True,
) -> uvicorn.Server:
    """A configured uvicorn server for ``app`` (not started).

    Uses uvloop and httptools when installed (measured in
    ``benchmarks/bench_serve.py``) and binds 127.0.0.1 unless told otherwise.
    Start it with ``server.run()`` or ``await server.serve()``; stop it with
    ``server.should_exit = True``.

    Args:
        app: the ASGI app; when it comes from :func:`create_app`, httptools is
            installed and ``fast_path`` is true, plain GET/HEAD requests for
            public documents are answered without an ASGI cycle (same bytes).
        host: address to bind.
        port: port to bind.
        access_log: log each request (turns the fast path off).
        log_level: uvicorn's log level.
        fast_path: False forces every request through the ASGI app.

    Returns:
        The server, not started.
    """
    http: type[asyncio.Protocol] | str = "auto"
    if fast_path and _httptools_impl is not None and isinstance(app, _FeedApp):
        http = _fast_protocol(app.store)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",
        http=http,
        ws="none",
        lifespan="on",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )
    return uvicorn.Server(config)
