"""HTTP serving of the published documents; the only package importing starlette and uvicorn.

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

Beside this module: ``headers`` (what a request asks, header blocks) and
``server`` (uvicorn, the one module importing it). Every connection goes
through ``server._GuardedProtocol`` (uvicorn's
httptools protocol with a size limit and a deadline on each request head:
431 and 408). There is no second, protocol-level response path: the one
that existed measured 1.0-1.5x the ASGI path's requests/s and was another
place for every guard to hold (``docs/security.md``); for heavy traffic the
static export behind nginx is the answer.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aggregator.model import TopicSpec
from aggregator.publish import Document
from aggregator.publish._base import http_date
from aggregator.publish.export import DocumentFile, gzip_body
from aggregator.publish.paths import parse_path, topic_of
from aggregator.publish.websub import Published
from aggregator.web.callbacks import CallbackHandler, callback_route
from aggregator.web.headers import (
    _accepts_gzip,
    _admin_credential,
    _basic_password,
    _etag_matches,
    _same_date,
    _token_ok,
)
from aggregator.web.server import (
    ACCEPT_IN_FLIGHT,
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    MAX_HEADER_BYTES,
    serve,
)

__all__ = [
    "ACCEPT_IN_FLIGHT",
    "BODY_TIMEOUT",
    "DEFAULT_MAX_AGE",
    "HEADER_TIMEOUT",
    "MAX_HEADER_BYTES",
    "DocumentStore",
    "PreparedExport",
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

    def keep_only(self, live: frozenset[_Source]) -> None:
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


@dataclass(frozen=True, slots=True)
class PreparedExport:
    """A served set made ready off to the side (:meth:`DocumentStore.prepare_files`)."""

    topics: dict[str, TopicSpec]
    prepared: dict[str, _Prepared]
    snapshot: _Snapshot
    #: the files the set serves from (the body cache keeps only theirs); None: held in memory
    live: frozenset[_Source] | None = None


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
        self.install(self.prepare_files(out_dir, entries, topics=topics))

    def prepare_files(
        self,
        out_dir: Path,
        entries: Mapping[str, DocumentFile],
        *,
        topics: Mapping[str, TopicSpec] | None = None,
    ) -> PreparedExport:
        """What :meth:`replace_files` serves, prepared without touching the served set.

        The part of a swap that grows with the documents (headers for each
        changed one, the set of live files): a daemon calls it in its
        publishing thread, then :meth:`install` on the event loop. Publishes
        must not overlap: the next one is prepared against the installed set.
        """
        made = self._prepare_set(
            entries,
            lambda entry, cache_control: _prepare_file(out_dir, entry, cache_control),
            topics,
        )
        live = {
            source
            for each in made.prepared.values()
            for source in (each.source, each.gz_source)
            if source is not None
        }
        return PreparedExport(made.topics, made.prepared, made.snapshot, frozenset(live))

    def install(self, prepared: PreparedExport) -> None:
        """Serve what :meth:`prepare_files` (or :meth:`replace`) prepared, from now on."""
        self._topics = prepared.topics
        self._prepared = prepared.prepared
        self._snapshot = prepared.snapshot
        if prepared.live is not None:
            self._cache.keep_only(prepared.live)

    def _swap(
        self,
        docs: Mapping[str, Any],
        prepare: Callable[[Any, bytes], _Prepared],
        topics: Mapping[str, TopicSpec] | None,
    ) -> None:
        self.install(self._prepare_set(docs, prepare, topics))

    def _prepare_set(
        self,
        docs: Mapping[str, Any],
        prepare: Callable[[Any, bytes], _Prepared],
        topics: Mapping[str, TopicSpec] | None,
    ) -> PreparedExport:
        """The served set for ``docs``, reusing each unchanged document's prepared form (pure)."""
        known = dict(topics) if topics is not None else self._topics
        previous = self._prepared
        public: dict[str, _Prepared] = {}
        private: dict[str, _Prepared] = {}
        for path, doc in docs.items():
            topic = known.get(topic_of(path) or "")
            cache_control = _cache_control(topic, self._default_max_age)
            old = previous.get(path)
            if old is not None and old.document == doc and old.cache_control == cache_control:
                prepared = old
            else:
                prepared = prepare(doc, cache_control)
            if path.startswith("private/"):
                private[path] = prepared
            else:
                public[path] = prepared
        private_topics = {name: t for name, t in known.items() if t.private}
        return PreparedExport(
            topics=known,
            prepared={**public, **private},
            snapshot=_Snapshot(dict(docs), public, private, private_topics),
        )

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
    callbacks: CallbackHandler | None = None,
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
        callbacks: answers ``/websub/<callback>`` (WebSub subscriptions); no route when None.

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
    if callbacks is not None:
        routes.append(callback_route(callbacks))
    fallback = Starlette(
        routes=routes,
        exception_handlers={404: not_found},
    )
    # Starlette answers "/status/" with a redirect built from the Host header
    # ("http://evil.example/status"): a path either exists or is a 404.
    fallback.router.redirect_slashes = False
    return _FeedApp(store, fallback)
