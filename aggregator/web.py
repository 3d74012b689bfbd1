"""HTTP serving of the published documents; the only module importing starlette and uvicorn.

The hot path is a plain ASGI callable that answers from headers computed
once per publish (:class:`DocumentStore`) and bytes read from the written
export (the gzip copy beside each file), the most requested of them held in a
small cache: no routing, no per-request hashing or compression, and a 304
reads no file. Anything it does not own
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
* ``/status``, the operator's page, exists only with ``server.admin_token``:
  HTTP Basic (any user, password = token) or ``Authorization: Bearer
  <token>``, compared in constant time; without them, 401. It is rendered in
  a thread (it reads the store) and never cached; its CSP allows no script.

Every connection goes through :class:`_GuardedProtocol` (uvicorn's
httptools protocol with a size limit and a deadline on each request head:
431 and 408). There is no second, protocol-level response path: the one
that existed measured 1.0-1.5x the ASGI path's requests/s and was another
place for every guard to hold (``docs/security.md``); for heavy traffic the
static export behind nginx is the answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import gzip
import hmac
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

# uvicorn[standard] installs httptools; the request-head guard extends its protocol.
from uvicorn.protocols.http import httptools_impl as _httptools_impl

from aggregator.model import TopicSpec
from aggregator.publish import Document
from aggregator.publish._base import http_date
from aggregator.publish.export import DocumentFile, gzip_body
from aggregator.publish.paths import parse_path, topic_of
from aggregator.publish.websub import Published

__all__ = [
    "ACCEPT_IN_FLIGHT",
    "BODY_TIMEOUT",
    "DEFAULT_MAX_AGE",
    "HEADER_TIMEOUT",
    "MAX_HEADER_BYTES",
    "DocumentStore",
    "create_app",
    "serve",
]

#: ``max-age`` of documents that belong to no topic (index, OPML)
DEFAULT_MAX_AGE = timedelta(minutes=5)

_NOT_FOUND_BODY = b"Not Found"
_NOT_FOUND_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_NOT_FOUND_BODY)).encode()),
]
_ETAG_RE = re.compile(rb'(?:W/)?"([^"]*)"')

#: a file this large is read in a thread, not on the event loop
_READ_IN_THREAD = 1 << 20
#: a request whose file was replaced under it looks again this often, this many times
_RETRY_WAIT = 0.05
_RETRIES = 40
_BUSY_BODY = b"Service Unavailable"
_BUSY_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_BUSY_BODY)).encode()),
    (b"retry-after", b"1"),
]


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a body lives on disk, and the identity it had when it was published."""

    file: Path
    ino: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Everything needed to answer for one document, computed once per publish."""

    #: the document as published: a rendered one held in memory, or an export entry
    document: Published
    cache_control: bytes
    #: the bodies when held in memory; None: read from ``source`` / ``gz_source``
    body: bytes | None
    gz_body: bytes | None
    source: _Source | None
    gz_source: _Source | None
    #: opaque tags (without quotes) of the identity and gzip variants
    tag: bytes
    gz_tag: bytes | None
    last_modified: bytes
    headers: list[tuple[bytes, bytes]]
    gz_headers: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]
    gz_headers_304: list[tuple[bytes, bytes]]

    @property
    def has_gz(self) -> bool:
        return self.gz_tag is not None


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Header lines as uvicorn writes them (lower-case name, ``: ``, value, CRLF)."""
    return b"".join(name.lower() + b": " + value + b"\r\n" for name, value in headers)


def _cache_control(topic: TopicSpec | None, default: timedelta) -> bytes:
    if topic is None:
        return b"max-age=%d" % int(default.total_seconds())
    seconds = int(topic.cache_max_age.total_seconds())
    return (b"private, max-age=%d" if topic.private else b"max-age=%d") % seconds


def _prepare_headers(
    doc: Published,
    cache_control: bytes,
    *,
    size: int,
    gz_size: int | None,
    last_modified: datetime,
) -> dict[str, Any]:
    tag = doc.etag.strip('"').encode("ascii")
    modified = http_date(last_modified).encode("ascii")
    gz_tag = tag + b"-gz" if gz_size is not None else None
    # RFC 9110 15.4.5: a 304 repeats ETag, Cache-Control and Vary; Last-Modified
    # adds nothing next to an ETag, and every header costs on the hot path.
    common = [(b"cache-control", cache_control)]
    if cache_control.startswith(b"private"):
        # The token is in the URL: a link followed from the page must not carry it.
        common.append((b"referrer-policy", b"no-referrer"))
    if gz_size is not None:
        common.append((b"vary", b"accept-encoding"))
    content_type = doc.content_type.encode("ascii")
    headers_304 = [(b"etag", b'"' + tag + b'"'), *common]
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(size).encode("ascii")),
        (b"last-modified", modified),
        *headers_304,
    ]
    gz_headers: list[tuple[bytes, bytes]] = []
    gz_headers_304: list[tuple[bytes, bytes]] = []
    if gz_size is not None and gz_tag is not None:
        gz_headers_304 = [(b"etag", b'"' + gz_tag + b'"'), *common]
        gz_headers = [
            (b"content-type", content_type),
            (b"content-length", str(gz_size).encode("ascii")),
            (b"content-encoding", b"gzip"),
            (b"last-modified", modified),
            *gz_headers_304,
        ]
    return {
        "document": doc,
        "cache_control": cache_control,
        "tag": tag,
        "gz_tag": gz_tag,
        "last_modified": modified,
        "headers": headers,
        "gz_headers": gz_headers,
        "headers_304": headers_304,
        "gz_headers_304": gz_headers_304,
    }


def _prepare(doc: Document, cache_control: bytes) -> _Prepared:
    """A document held in memory, with its gzip copy made here."""
    gz_body = gzip_body(doc.body)
    return _Prepared(
        body=doc.body,
        gz_body=gz_body,
        source=None,
        gz_source=None,
        **_prepare_headers(
            doc,
            cache_control,
            size=len(doc.body),
            gz_size=len(gz_body) if gz_body is not None else None,
            last_modified=doc.last_modified,
        ),
    )


def _prepare_file(out_dir: Path, entry: DocumentFile, cache_control: bytes) -> _Prepared:
    """A document of the export: headers from its manifest entry, bytes read when asked."""
    gz_source = None
    if entry.gz_file is not None and entry.gz_size is not None:
        gz_source = _Source(out_dir / entry.gz_file, entry.gz_ino, entry.gz_size, entry.gz_mtime_ns)
    return _Prepared(
        body=None,
        gz_body=None,
        source=_Source(out_dir / entry.file, entry.ino, entry.size, entry.mtime_ns),
        gz_source=gz_source,
        **_prepare_headers(
            entry,
            cache_control,
            size=entry.size,
            gz_size=entry.gz_size,
            last_modified=entry.last_modified,
        ),
    )


def _read(source: _Source) -> bytes | None:
    """The file's bytes if it is still the one published; None if it was replaced since."""
    try:
        with open(source.file, "rb") as handle:
            stat = os.fstat(handle.fileno())
            if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != (
                source.ino,
                source.size,
                source.mtime_ns,
            ):
                return None
            return handle.read()
    except OSError:
        return None


class _BodyCache:
    """The most recently served bodies, up to a byte budget (least recently used out first)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self._bodies: collections.OrderedDict[_Source, bytes] = collections.OrderedDict()

    def get(self, source: _Source) -> bytes | None:
        body = self._bodies.get(source)
        if body is not None:
            self._bodies.move_to_end(source)
        return body

    def put(self, source: _Source, body: bytes) -> None:
        if len(body) > self.budget // 4 or source in self._bodies:
            return  # one huge archive page must not flush every hot feed
        self._bodies[source] = body
        self.held += len(body)
        while self.held > self.budget and self._bodies:
            _, old = self._bodies.popitem(last=False)
            self.held -= len(old)

    def keep_only(self, live: set[_Source]) -> None:
        """Forget bodies of files no longer published."""
        for source in [s for s in self._bodies if s not in live]:
            self.held -= len(self._bodies.pop(source))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    documents: Mapping[str, Published]
    #: documents reachable without a token
    public: dict[str, _Prepared]
    #: documents under ``private/<token>/``
    private: dict[str, _Prepared]
    #: private topics by name
    private_topics: dict[str, TopicSpec]


class DocumentStore:
    """The published documents, ready to serve: their headers in memory, their bytes on disk.

    :meth:`replace_files` serves an export (:mod:`aggregator.publish.export`):
    ETags, dates and sizes come from its manifest, so a 304 touches no file;
    a body is read from its file (the gzip copy beside it when the client
    takes gzip), and the most requested bodies stay in a cache of
    ``cache_size`` bytes. :meth:`replace` serves documents held in memory
    (tests, and anything rendered without an export). Either prepares the new
    set off to the side and swaps it in with one assignment, so a request sees
    either the old set or the new one, never a mix; a file replaced after the
    set it belongs to was swapped out is noticed by its identity, and its
    bytes are served with headers made from them.
    """

    def __init__(
        self,
        docs: Mapping[str, Document] | None = None,
        *,
        topics: Mapping[str, TopicSpec] | None = None,
        default_max_age: timedelta = DEFAULT_MAX_AGE,
        cache_size: int = 4 * 2**20,
    ) -> None:
        self._default_max_age = default_max_age
        self._topics: dict[str, TopicSpec] = dict(topics or {})
        self._prepared: dict[str, _Prepared] = {}
        self._snapshot = _Snapshot({}, {}, {}, {})
        self._cache = _BodyCache(cache_size)
        self.replace(docs or {}, topics=topics)

    @property
    def documents(self) -> Mapping[str, Published]:
        """The documents currently served, by URL path (read-only view)."""
        return self._snapshot.documents

    @property
    def cached_bytes(self) -> int:
        """Bytes of bodies held by the serving cache now."""
        return self._cache.held

    def __len__(self) -> int:
        return len(self._snapshot.documents)

    def replace(
        self, docs: Mapping[str, Document], *, topics: Mapping[str, TopicSpec] | None = None
    ) -> None:
        """Serve ``docs``, held in memory, from now on (and ``topics``' cache and privacy rules).

        Unchanged documents (same path, ETag and cache rule) reuse their
        prepared form, so republishing a site with one changed topic only
        compresses that topic.
        """
        self._swap(docs, lambda doc, cache_control: _prepare(doc, cache_control), topics)

    def replace_files(
        self,
        out_dir: Path,
        entries: Mapping[str, DocumentFile],
        *,
        topics: Mapping[str, TopicSpec] | None = None,
    ) -> None:
        """Serve the export in ``out_dir``, described by its manifest ``entries``, from now on."""
        self._swap(
            entries,
            lambda entry, cache_control: _prepare_file(out_dir, entry, cache_control),
            topics,
        )
        live = {
            source
            for prepared in self._prepared.values()
            for source in (prepared.source, prepared.gz_source)
            if source is not None
        }
        self._cache.keep_only(live)

    def _swap(
        self,
        docs: Mapping[str, Any],
        prepare: Callable[[Any, bytes], _Prepared],
        topics: Mapping[str, TopicSpec] | None,
    ) -> None:
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
                prepared = prepare(doc, cache_control)
            if path.startswith("private/"):
                private[path] = prepared
            else:
                public[path] = prepared
        self._prepared = {**public, **private}
        private_topics = {name: t for name, t in self._topics.items() if t.private}
        self._snapshot = _Snapshot(dict(docs), public, private, private_topics)

    async def body(self, prepared: _Prepared, gz: bool) -> bytes | None:
        """The identity (or gzip) body of ``prepared``; None: its file was replaced since."""
        held = prepared.gz_body if gz else prepared.body
        if held is not None:
            return held
        source = prepared.gz_source if gz else prepared.source
        if source is None:
            return None
        body = self._cache.get(source)
        if body is not None:
            return body
        if source.size > _READ_IN_THREAD:
            body = await asyncio.to_thread(_read, source)
        else:
            body = _read(source)
        if body is not None:
            self._cache.put(source, body)
        return body


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
        key: str = scope["path"][1:]
        for _ in range(_RETRIES):
            snapshot = self.store._snapshot
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
            if await _answer(self.store, prepared, scope, send):
                return
            # Its file was replaced after this set was swapped out: the publish
            # that replaced it swaps in the new set moments later. Bytes are
            # only ever served under the headers made for them.
            await asyncio.sleep(_RETRY_WAIT)
        await send({"type": "http.response.start", "status": 503, "headers": _BUSY_HEADERS})
        await send({"type": "http.response.body", "body": _BUSY_BODY})

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


class _NotFound(Response):
    """Starlette's 404 with exactly the headers of :func:`_not_found`.

    A private topic without its token and a path that does not exist must
    answer the same bytes, header order included, or a prober could tell a
    private topic's name from a missing one.
    """

    def __init__(self) -> None:
        super().__init__(_NOT_FOUND_BODY, status_code=404)
        self.raw_headers = list(_NOT_FOUND_HEADERS)


async def _not_found(send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": _NOT_FOUND_HEADERS})
    await send({"type": "http.response.body", "body": _NOT_FOUND_BODY})


def _select(
    prepared: _Prepared, inm: bytes | None, ims: bytes | None, accept: bytes | None
) -> tuple[bool, bool]:
    """``(use_gzip, not_modified)`` for a GET/HEAD given its request headers."""
    use_gz = prepared.has_gz and accept is not None and _accepts_gzip(accept)
    tag = prepared.gz_tag if use_gz and prepared.gz_tag is not None else prepared.tag
    if inm is not None:
        not_modified = _etag_matches(inm, tag)
    elif ims is not None:
        not_modified = _same_date(ims, prepared.last_modified)
    else:
        not_modified = False
    return use_gz, not_modified


async def _answer(store: DocumentStore, prepared: _Prepared, scope: Scope, send: Send) -> bool:
    """Answer for ``prepared``; False, having sent nothing, when its file changed under it."""
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
        return True
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
        return True
    headers = prepared.gz_headers if use_gz else prepared.headers
    if method == "HEAD":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True
    body = await store.body(prepared, use_gz)
    if body is None:
        return False
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return True


def _admin_credential(value: bytes) -> str | None:
    """The token given by ``Authorization``: a Bearer token, or a Basic password."""
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() == b"bearer":
        try:
            return credentials.strip().decode("utf-8")
        except UnicodeDecodeError:
            return None
    return _basic_password(value)


_STATUS_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_CHALLENGE = {"www-authenticate": 'Basic realm="aggregator status", charset="UTF-8"'}


def _rendered(render: Callable[[], bytes], gzipped: bool) -> bytes:
    # A page of a thousand sources' charts is megabytes of repetitive SVG.
    body = render()
    return gzip.compress(body, compresslevel=6) if gzipped else body


def _status_route(render: Callable[[], bytes], token: str) -> Route:
    async def status_page(request: Request) -> Response:
        given = _admin_credential(request.headers.get("authorization", "").encode("latin-1"))
        if given is None or _token_ok(given, (token,)) is None:
            return Response(
                b"Unauthorized", status_code=401, media_type="text/plain", headers=_CHALLENGE
            )
        gzipped = _accepts_gzip(request.headers.get("accept-encoding", "").encode("latin-1"))
        body = await asyncio.to_thread(_rendered, render, gzipped)
        headers = {**_STATUS_HEADERS, "vary": "accept-encoding"}
        if gzipped:
            headers["content-encoding"] = "gzip"
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    return Route("/status", status_page, methods=["GET"])


def create_app(
    store: DocumentStore,
    *,
    health: Callable[[], Mapping[str, Any]] | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    status: Callable[[], bytes] | None = None,
    admin_token: str | None = None,
) -> ASGIApp:
    """Build the ASGI app serving ``store``.

    Args:
        store: the documents to serve; call ``store.replace(...)`` to publish anew.
        health: returns the ``/healthz`` JSON body; a ``"status"`` other than
            ``"ok"`` answers 503. Defaults to ``{"status": "ok", "documents": N}``.
        metrics: returns ``(body, content_type)`` for ``/metrics``; no route when None.
        status: renders the ``/status`` page (blocking: it runs in a thread).
        admin_token: the token ``/status`` asks for; without it (or without
            ``status``) there is no such page.

    Returns:
        An ASGI application.
    """

    async def healthz(request: Request) -> Response:
        body = dict(health()) if health else {"status": "ok", "documents": len(store)}
        status = 200 if body.get("status", "ok") == "ok" else 503
        return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _NotFound()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    if metrics is not None:
        get_metrics = metrics

        async def metrics_route(request: Request) -> Response:
            body, content_type = get_metrics()
            return Response(body, media_type=content_type, headers={"cache-control": "no-store"})

        routes.append(Route("/metrics", metrics_route, methods=["GET"]))
    if status is not None and admin_token:
        routes.append(_status_route(status, admin_token))
    fallback = Starlette(
        routes=routes,
        exception_handlers={404: not_found},
    )
    # Starlette answers "/status/" with a redirect built from the Host header
    # ("http://evil.example/status"): a path either exists or is a 404.
    fallback.router.redirect_slashes = False
    return _FeedApp(store, fallback)


#: Largest request head (request line and headers) read from a client; a
#: bigger one is answered 431 and the connection closed. nginx's defaults
#: allow four 8 KiB header lines; feed readers send well under 2 KiB.
MAX_HEADER_BYTES = 32 * 1024
#: Seconds a client has to send a whole request head, counted from the
#: connection (or, on a kept-alive connection, from the request's first byte);
#: a slower one is closed, so a slowloris client cannot hold a connection.
HEADER_TIMEOUT = 10.0
#: Seconds a client has to send a request's body once its head is in (our
#: routes take no body, but a trickled one would hold the connection open:
#: every byte restarts uvicorn's keep-alive timer).
BODY_TIMEOUT = 10.0
#: Connections the kernel queues before we accept them, and so also how many
#: asyncio accepts at each turn of the loop. A connection reaches the limit
#: check (and an evicted one frees its descriptor) a few turns after it was
#: accepted, so up to ``ACCEPT_IN_FLIGHT`` connections can be open beyond the
#: limit in a burst (measured: the descriptor count peaked at limit + 3.6
#: backlogs): the descriptor budget keeps room for them.
ACCEPT_BACKLOG = 64
ACCEPT_IN_FLIGHT = 4 * ACCEPT_BACKLOG
#: a warning about the connection limit is logged at most this often (seconds)
_LIMIT_LOG_INTERVAL = 10.0


def _status_response(status: int, message: bytes, defaults: list[tuple[bytes, bytes]]) -> bytes:
    """A complete ``Connection: close`` response, as uvicorn writes its own 400."""
    return b"".join(
        (
            _httptools_impl.STATUS_LINE[status],
            _header_block(defaults),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(message),
            b"connection: close\r\n\r\n",
            message,
        )
    )


#: after a refusal, how long and how much of what the client still sends is drained
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 16 * 2**20


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the request head passed the limit."""


class _GuardedProtocol(_httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on each request head's size and time.

    uvicorn keeps a request's headers in memory as they arrive, with no
    limit, and its keep-alive timer stops at the first byte of a request, so
    one client could grow the process without bound or hold a connection
    forever by trickling a header. Here a request head that grows past
    ``max_header_bytes`` gets a 431, and one not complete within
    ``header_timeout`` seconds a 408 (or, when nothing at all was sent, a
    silent close); a body not complete within ``body_timeout`` seconds closes
    the connection. At most ``max_connections`` connections are held: one
    beyond them takes the place of the longest-idle connection (one with no
    request being answered), or is closed when there is none, so clients can
    never take the descriptors the store, seed scans and publishing need
    (:mod:`aggregator.runtime.fds`). Everything else is uvicorn's own behaviour.
    """

    max_header_bytes = MAX_HEADER_BYTES
    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT
    max_connections: int | None = None
    #: when the connection limit was last logged (shared by the server's connections)
    _limit_logged: list[float] = [float("-inf")]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._lingering: asyncio.TimerHandle | None = None
        self._discarded = 0
        self._in_head = True
        self._head_bytes = 0
        self._messages = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_body = False
        self._parsed_head = 0
        self._head_overflow = False
        self._since = self.loop.time()
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            self._make_room()
            if transport.is_closing():
                return
        self._arm_head_timer()

    def _idle(self) -> bool:
        """No request is being answered on this connection (it may be mid-head)."""
        return not self.transport.is_closing() and (
            self.cycle is None or self.cycle.response_complete
        )

    def _make_room(self) -> None:
        """Close the longest-idle other connection, or this one when every other is busy."""
        idle = [
            c
            for c in self.connections
            if c is not self and isinstance(c, _GuardedProtocol) and c._idle()
        ]
        victim = min(idle, key=lambda c: c._since) if idle else self
        victim.transport.close()
        now = self.loop.time()
        if now - self._limit_logged[0] >= _LIMIT_LOG_INTERVAL:
            self._limit_logged[0] = now
            self.logger.warning(
                "connection limit (%d) reached: closing %s connections",
                self.max_connections,
                "idle" if idle else "new",
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        self._disarm_body_timer()
        if self._lingering is not None:
            self._lingering.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            # Refused: what the client still sends is read and dropped, so its
            # kernel does not reset the connection before it reads our answer.
            self._discarded += len(data)
            if self._discarded > LINGER_MAX_BYTES:
                self.transport.close()
            return
        state = (self._in_head, self._messages)
        super().data_received(data)
        # Only chunks that lie wholly inside one unfinished head count: a
        # chunk that ended one request and began the next (pipelining) says
        # nothing about the new head's size. Memory stays within the limit
        # plus one read.
        if self._in_head and state == (True, self._messages):
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._refuse(431, b"Request Header Fields Too Large")
        if self._in_body and self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)

    def on_message_begin(self) -> None:
        self._messages += 1
        self._in_head = True
        self._head_bytes = 0
        self._parsed_head = 0
        self._arm_head_timer()
        super().on_message_begin()

    # A head that arrives in one read (or with the end of the previous request)
    # is not counted by data_received: the parser's callbacks count what it holds.
    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._parsed_head += size
        if self._parsed_head > self.max_header_bytes:
            self._head_overflow = True
            raise _HeadTooLarge  # stops the parser; uvicorn then calls send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._head_overflow:
            self._refuse(431, b"Request Header Fields Too Large")
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm_body_timer()
        super().on_message_complete()

    def _disarm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self._in_body and not self.transport.is_closing():
            self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._messages and self._in_head:
            self._refuse(408, b"Request Timeout")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: bytes) -> None:
        self._disarm_head_timer()
        self.logger.warning(
            "%s: refused a request head (%d %s)",
            f"{self.client[0]}:{self.client[1]}" if self.client else "client",
            status,
            message.decode("ascii"),
        )
        self.transport.write(_status_response(status, message, self.server_state.default_headers))
        # A lingering close, as nginx does: stop sending, drain for a moment,
        # then close. Closing at once while the client is still sending makes
        # its kernel answer with a reset that can discard our answer unread.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._lingering = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int,
    access_log: bool = False,
    log_level: str = "warning",
    max_header_bytes: int = MAX_HEADER_BYTES,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    max_connections: int | None = None,
) -> uvicorn.Server:
    """A configured uvicorn server for ``app`` (not started).

    Uses uvloop when installed and httptools (measured in
    ``benchmarks/bench_serve.py``) with :class:`_GuardedProtocol`, and binds
    127.0.0.1 unless told otherwise. Start it with ``server.run()`` or
    ``await server.serve()``; stop it with ``server.should_exit = True``.

    Args:
        app: the ASGI app.
        host: address to bind.
        port: port to bind.
        access_log: log each request.
        log_level: uvicorn's log level.
        max_header_bytes: largest request head read (431 above it).
        header_timeout: seconds a client has to send a request head.
        body_timeout: seconds a client has to send a request body after its head.
        max_connections: connections held at most (None: no limit); one more
            replaces the longest-idle one.

    Returns:
        The server, not started.
    """
    protocol = type(
        "_Guarded",
        (_GuardedProtocol,),
        {
            "max_header_bytes": max_header_bytes,
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_connections": max_connections,
            "_limit_logged": [float("-inf")],
        },
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",
        http=protocol,
        ws="none",
        lifespan="on",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        backlog=ACCEPT_BACKLOG,
    )
    return uvicorn.Server(config)
