"""Fetching remote sources over HTTP: polite, bounded, and guarded against SSRF.

The fetcher is here; beside it in ``sources/``: ``addresses`` (the SSRF
refusal rules, resolving and vetting a host), ``pinning`` (httpcore's network
backend and httpx's transport, connecting only to vetted addresses),
``decoding`` (bounded gzip/deflate/br decoders: the one module importing
brotli) and ``transports`` (one connection pool per origin).

One call, :meth:`Fetcher.fetch`, gets one document:

* **Conditional GET**: ``If-None-Match`` / ``If-Modified-Since`` from the stored
  validators; a 304 comes back as ``status=304`` with an empty body.
* **Overall deadline**: httpx timeouts are per operation, so a server that
  trickles a byte every few seconds would never trip them. Every hop, every
  DNS lookup and every read of one fetch runs under a single absolute deadline
  (:class:`~aggregator.errors.DeadlineError`). The clock starts once the fetch
  holds its politeness slots: waiting in the queue behind other feeds of the
  same host is not the source's fault.
* **Size cap after decompression, while streaming**: we read the raw bytes and
  decode gzip/deflate/br ourselves with decoders whose output per step is
  bounded (httpx's own decoders inflate a whole network chunk at once, and a
  64 KiB brotli chunk can hold gigabytes), so a compression bomb stops at the
  cap having used about ``max_bytes`` of memory
  (:class:`~aggregator.errors.TooLargeError`).
* **Redirects by hand**: at most ``max_redirects`` hops; loops and a missing
  ``Location`` raise :class:`~aggregator.errors.RedirectError`; relative
  locations are resolved; the caller's headers (credentials, API keys) go
  only to the configured origin, never to another one a redirect names.
  ``permanent_redirect`` reports where the leading run of 301/308 hops ended,
  for :func:`aggregator.sources.redirects.decide_move`.
* **SSRF guard**: only http and https; before every hop the host is resolved and
  *every* address checked (:func:`address_refusal`); a refused address raises
  :class:`~aggregator.errors.BlockedAddressError` before any connection is
  made. The connection then goes to the vetted addresses themselves: our
  network backend connects to the IPs this hop checked (carried in a context
  variable), never re-resolving the name, so there is no DNS-rebinding window
  between check and connect. TLS still uses the hostname for SNI and
  certificate checks and the ``Host`` header is unchanged, because httpcore
  takes both from the URL, not from the socket. Proxies from the environment
  are ignored (``trust_env=False``), since a proxy would resolve names itself.
* **Politeness**: a global limit and a per-host limit on requests in flight
  (semaphores keyed by host name, per-host acquired first, so a fetch queued
  behind a busy host holds no global slot). Slots are taken per hop, one host
  at a time, so redirects between hosts cannot deadlock. A host that asked us
  to wait (:meth:`Fetcher.back_off`: a 429, or ``Retry-After`` on an error,
  for a feed or an article page) gets no request from any source until then
  (:class:`~aggregator.errors.BackoffError`, raised before anything is sent).

A caller-supplied ``transport`` (``httpx.MockTransport`` in tests, custom
stacks) still gets the per-hop check; only the connect-time pinning is the
default transport's. A response such a transport builds in memory is taken
as httpx already decoded it (the size cap still applies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from types import MappingProxyType, TracebackType
from typing import Self
from urllib.parse import urlencode

import httpcore
import httpx

from aggregator.errors import (
    REDACTED,
    AggregatorError,
    BackoffError,
    BlockedAddressError,
    DeadlineError,
    FetchError,
    HTTPStatusError,
    RedirectError,
    TooLargeError,
)
from aggregator.sources.addresses import (
    Resolver,
    _describe,
    _Guard,
    _host_key,
    address_refusal,
    allow_hint,
    parse_networks,
    system_resolver,
)
from aggregator.sources.decoding import _CHUNK, DECODE_ERRORS, _decode, _decoders
from aggregator.sources.lanes import Lanes
from aggregator.sources.pinning import _PINS, _PinnedBackend, _PinnedTransport
from aggregator.sources.schedule import parse_retry_after
from aggregator.sources.transports import OriginTransports

__all__ = [
    "DEFAULT_ACCEPT",
    "DEFAULT_USER_AGENT",
    "FetchResponse",
    "Fetcher",
    "Resolver",
    "address_refusal",
    "allow_hint",
    "parse_networks",
    "system_resolver",
]


def _version() -> str:
    try:
        return metadata.version("aggregator")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "dev"


#: Names the project and its version; no URL, since the project has no home yet.
DEFAULT_USER_AGENT = f"aggregator/{_version()} (feed aggregator; polite polling, conditional GET)"
#: Feeds first, then generic XML/JSON, then HTML (for autodiscovery), then anything.
DEFAULT_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.7, text/html;q=0.5, */*;q=0.1"
)
_ACCEPT_ENCODING = "gzip, deflate, br"
#: the longest a host's ``Retry-After`` keeps every source off it
MAX_HOST_BACKOFF = timedelta(hours=6)
#: how long a host that answered 429 without ``Retry-After`` is left alone
HOST_BACKOFF = timedelta(minutes=5)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
# Headers that carry credentials for one origin only.


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """A successful fetch: 2xx with a body, or 304 Not Modified."""

    #: the final URL, after redirects
    url: str
    #: 200 (or another 2xx) with a body, or 304
    status: int
    #: the decoded body; ``b""`` on 304
    body: bytes
    #: final response headers, names lower-case, repeated headers joined by ", "
    headers: Mapping[str, str]
    #: the validator to store; on a 304 without one, the validator we sent
    etag: str | None
    #: the validator to store; on a 304 without one, the validator we sent
    last_modified: str | None
    #: where the leading run of 301/308 hops ended; None if the first hop was
    #: not a permanent redirect (or there were no redirects)
    permanent_redirect: str | None
    #: every redirect followed, as (status, target URL)
    redirects: tuple[tuple[int, str], ...]
    #: seconds from the first request to the end of the body
    elapsed: float


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: RFC 6454's origin."""
    default = 443 if url.scheme == "https" else 80
    return (url.scheme, url.host, url.port or default)


def _hide(text: str, headers: Mapping[str, str] | None) -> str:
    """``text`` without the configured header values (credentials, as a rule) in it."""
    for value in (headers or {}).values():
        for form in {value, value.strip(), repr(value)[1:-1]}:
            if form:
                text = text.replace(form, REDACTED)
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def _discard(response: httpx.Response) -> None:
    """Read a small unwanted body (304, redirect, error page) to its end.

    httpcore returns a connection to the pool only once the response has been
    read to the end; closing it early would cost a new TCP (and TLS)
    connection per 304. A large body is not worth reading: stop and let the
    connection close.
    """
    if response.is_stream_consumed:  # already in memory (httpx.MockTransport)
        return
    left = _CHUNK
    async for raw in response.aiter_raw():
        left -= len(raw)
        if left < 0:
            return


@dataclass(slots=True)
class _Hop:
    status: int
    response_headers: httpx.Headers
    body: bytes = b""
    location: str | None = None


class Fetcher:
    """Fetches remote documents; share one per process (it holds the pool and limits).

    Args:
        user_agent: the ``User-Agent`` header.
        allow_networks: CIDR blocks admitted despite the SSRF rules.
        max_connections: requests in flight over all hosts.
        max_per_host: requests in flight to one host name.
        max_redirects: redirects followed per fetch.
        transport: an httpx transport to use instead of the pinned default
            (the per-hop address check still applies; connect-time pinning
            does not). Not closed by :meth:`aclose`.
        resolver: ``async (host, port) -> [addresses]``; defaults to
            :func:`system_resolver`. Tests map names to chosen addresses.

    Raises:
        ValueError: for a bad CIDR block or a limit below 1 (0 for redirects).
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        allow_networks: Sequence[str] = (),
        max_connections: int = 20,
        max_per_host: int = 2,
        max_redirects: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        if max_connections < 1 or max_per_host < 1 or max_redirects < 0:
            raise ValueError(
                "max_connections and max_per_host must be at least 1, max_redirects at least 0"
            )
        self._user_agent = user_agent
        self._guard = _Guard(parse_networks(allow_networks), resolver or system_resolver)
        self._max_redirects = max_redirects
        # one per-host slot, then one global slot (always in that order)
        self._slots = Lanes(per_key=max_per_host, total=max_connections)
        # host -> until when it asked us to send nothing (aware UTC)
        self._backoff: dict[str, datetime] = {}
        self._owns_transport = transport is None
        if transport is None:
            backend = _PinnedBackend(self._guard)
            transport = OriginTransports(
                lambda: _PinnedTransport(backend, max_per_host), keep=max_connections
            )
        self._transport: httpx.AsyncBaseTransport = transport

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a caller-supplied transport is left open)."""
        if self._owns_transport:
            await self._transport.aclose()

    def back_off(self, url: str, until: datetime) -> datetime:
        """Send nothing to ``url``'s host, from any source, until ``until``.

        A later time than one already set wins; a time beyond
        :data:`MAX_HOST_BACKOFF` from now is cut to it.

        Returns:
            When the host may be asked again.
        """
        host = _host_key(httpx.URL(url).host)
        now = datetime.now(UTC)
        until = min(until.astimezone(UTC), now + MAX_HOST_BACKOFF)
        current = self._backoff.get(host)
        if current is None or current < until:
            self._backoff[host] = until
        return self._backoff[host]

    def _check_backoff(self, host: str, source: str, where: str) -> None:
        until = self._backoff.get(host)
        if until is None:
            return
        if until <= datetime.now(UTC):
            del self._backoff[host]
            return
        raise BackoffError(
            source,
            f"{where}: {host} asked to wait until {until.isoformat(timespec='seconds')}; not sent",
            retry_after=until,
        )

    async def fetch(
        self,
        url: str,
        *,
        source: str,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        headers_origin: str | None = None,
        timeout: float = 20.0,
        max_bytes: int = 10 * 2**20,
    ) -> FetchResponse:
        """GET one document, following redirects, within one overall deadline.

        Args:
            url: an absolute http(s) URL.
            source: the source's name, for error messages.
            etag: stored validator, sent as ``If-None-Match``.
            last_modified: stored validator, sent as ``If-Modified-Since``.
            headers: extra request headers (they override the defaults), sent
                only to ``headers_origin``'s origin: a redirect or a discovered
                link to another scheme, host or port never receives them.
            headers_origin: the URL whose origin ``headers`` belong to (the
                configured source URL); defaults to ``url``.
            timeout: overall deadline in seconds for all hops, lookups and reads.
            max_bytes: body cap, counted after decompression.

        Returns:
            The response (2xx with a body, or 304).

        Raises:
            BlockedAddressError: a scheme other than http(s), or an address the
                SSRF guard refuses (at any hop; nothing was sent to it).
            BackoffError: the host (at any hop) asked to wait; nothing was sent to it.
            RedirectError: too many redirects, a loop, or a bad ``Location``.
            HTTPStatusError: a 4xx/5xx (or an unfollowable 3xx); ``status`` and
                ``retry_after`` are set.
            TooLargeError: the decoded body exceeds ``max_bytes``.
            DeadlineError: the deadline passed.
            FetchError: any other transport or decoding failure.
        """
        try:
            return await self._fetch(
                url,
                source=source,
                etag=etag,
                last_modified=last_modified,
                extra=headers or {},
                extra_origin=_origin(httpx.URL(headers_origin or url)) if headers else None,
                timeout=timeout,
                max_bytes=max_bytes,
            )
        except AggregatorError:
            raise
        except (httpx.HTTPError, httpx.InvalidURL, httpcore.ConnectError, OSError) as exc:
            raise FetchError(source, f"{url}: {_hide(_describe(exc), headers)}") from exc

    async def post_form(
        self, url: str, form: Mapping[str, str], *, source: str, timeout: float = 10.0
    ) -> int:
        """POST a form once (:meth:`post`, ``application/x-www-form-urlencoded``)."""
        content = urlencode(list(form.items())).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self.post(url, content, headers=headers, source=source, timeout=timeout)

    async def post(
        self,
        url: str,
        content: bytes,
        *,
        headers: Mapping[str, str],
        source: str,
        timeout: float = 10.0,
    ) -> int:
        """POST a body once, through the SSRF guard, and return the status.

        For notifications (a WebSub hub ping or subscription, a webhook): a
        redirect is not followed but returned as its status, so a hub that
        answers 302 to a link-local or internal address sends nothing there;
        proxies from the environment are ignored like every fetch. The
        answer's body is not read beyond a small bound.

        Args:
            url: an absolute http(s) URL.
            content: the body.
            headers: request headers (the content type, signatures).
            source: what the request is for, in error messages.
            timeout: overall deadline in seconds.

        Returns:
            The HTTP status of the answer, whatever it is.

        Raises:
            BlockedAddressError: a scheme other than http(s), or an address
                the SSRF guard refuses (nothing was sent).
            DeadlineError: no answer within ``timeout``.
            FetchError: any other transport failure.
        """
        try:
            target = httpx.URL(url)
            if target.scheme not in ("http", "https"):
                raise BlockedAddressError(
                    source, f"{url}: scheme {target.scheme!r} refused (only http and https)"
                )
            if not target.host:
                raise FetchError(source, f"{url}: URL has no host")
            port = target.port or (443 if target.scheme == "https" else 80)
            async with self._slots.slot(_host_key(target.host)):
                async with asyncio.timeout(timeout):
                    try:
                        addresses = await self._guard.vet(target.host, port)
                    except FetchError as exc:
                        raise type(exc)(source, f"{url}: {exc.message}") from exc
                    request = httpx.Request(
                        "POST",
                        target,
                        headers={**headers, "User-Agent": self._user_agent},
                        content=content,
                        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
                    )
                    token = _PINS.set({(_host_key(target.host), port): addresses})
                    try:
                        response = await self._transport.handle_async_request(request)
                        try:
                            await _discard(response)
                        finally:
                            await response.aclose()
                    finally:
                        _PINS.reset(token)
            return response.status_code
        except TimeoutError as exc:
            raise DeadlineError(source, f"{url}: no answer within {timeout:g} s") from exc
        except AggregatorError:
            raise
        except (httpx.HTTPError, httpx.InvalidURL, httpcore.ConnectError, OSError) as exc:
            raise FetchError(source, f"{url}: {_describe(exc)}") from exc

    async def _fetch(
        self,
        url: str,
        *,
        source: str,
        etag: str | None,
        last_modified: str | None,
        extra: Mapping[str, str],
        extra_origin: tuple[str, str, int | None] | None,
        timeout: float,
        max_bytes: int,
    ) -> FetchResponse:
        loop = asyncio.get_running_loop()
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise FetchError(source, f"{url}: invalid URL: {_describe(exc)}") from exc
        defaults = {
            "User-Agent": self._user_agent,
            "Accept": DEFAULT_ACCEPT,
            "Accept-Encoding": _ACCEPT_ENCODING,
        }
        validators = {}
        if etag:
            validators["If-None-Match"] = etag
        if last_modified:
            validators["If-Modified-Since"] = last_modified
        # Configured headers (API keys, tokens) are the configured origin's:
        # built per hop, so another origin never sees them, and neither does
        # the same origin again after a hop elsewhere.
        own_headers = httpx.Headers(defaults)
        own_headers.update(extra)
        own_headers.update(validators)
        foreign_headers = httpx.Headers(defaults)
        foreign_headers.update(validators)
        origin_ok = True

        visited = [str(current)]
        redirects: list[tuple[int, str]] = []
        permanent: str | None = None
        permanent_run = True
        deadline: float | None = None
        started = 0.0

        def where() -> str:
            return f"{url} (redirected to {current})" if redirects else url

        while True:
            if current.scheme not in ("http", "https"):
                raise BlockedAddressError(
                    source, f"{where()}: scheme {current.scheme!r} refused (only http and https)"
                )
            if not current.host:
                raise FetchError(source, f"{where()}: URL has no host")
            host = _host_key(current.host)
            waiting = asyncio.timeout_at(deadline)
            try:
                # The first hop waits for its slot before its clock starts;
                # later hops wait within the deadline.
                async with waiting, self._slots.slot(host):
                    # Checked once the slot is ours: a fetch queued behind
                    # the one that was told to wait sends nothing either.
                    self._check_backoff(host, source, where())
                    if deadline is None:
                        started = loop.time()
                        deadline = started + timeout
                        waiting.reschedule(deadline)
                    origin_ok = origin_ok and (
                        extra_origin is None or _origin(current) == extra_origin
                    )
                    hop = await self._hop(
                        current,
                        own_headers if origin_ok else foreign_headers,
                        source=source,
                        where=where(),
                        timeout=timeout,
                        max_bytes=max_bytes,
                    )
            except TimeoutError as exc:
                if not waiting.expired():
                    raise FetchError(source, f"{where()}: {_describe(exc)}") from exc
                raise DeadlineError(
                    source, f"{where()}: no complete response within {timeout:g} s"
                ) from exc

            if hop.status in _REDIRECTS:
                if not hop.location:
                    raise RedirectError(
                        source, f"{where()}: HTTP {hop.status} without a Location header"
                    )
                try:
                    target = current.join(hop.location.strip())
                except httpx.InvalidURL as exc:
                    raise RedirectError(
                        source, f"{where()}: bad Location {_one_line(hop.location)!r}"
                    ) from exc
                redirects.append((hop.status, str(target)))
                if permanent_run and hop.status in _PERMANENT:
                    permanent = str(target)
                else:
                    permanent_run = False
                if str(target) in visited:
                    chain = " -> ".join([*visited, str(target)])
                    raise RedirectError(source, f"{url}: redirect loop: {chain}")
                if len(redirects) > self._max_redirects:
                    raise RedirectError(
                        source, f"{url}: more than {self._max_redirects} redirects (last {target})"
                    )
                if _origin(target) != _origin(current):
                    origin_ok = False
                visited.append(str(target))
                current = target
                continue

            response_headers = MappingProxyType(
                {k.lower(): v for k, v in hop.response_headers.items()}
            )
            if hop.status == 304:
                new_etag = response_headers.get("etag") or etag
                new_modified = response_headers.get("last-modified") or last_modified
            else:
                new_etag = response_headers.get("etag")
                new_modified = response_headers.get("last-modified")
            return FetchResponse(
                url=str(current),
                status=hop.status,
                body=hop.body,
                headers=response_headers,
                etag=new_etag,
                last_modified=new_modified,
                permanent_redirect=permanent,
                redirects=tuple(redirects),
                elapsed=loop.time() - started,
            )

    async def _hop(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        *,
        source: str,
        where: str,
        timeout: float,
        max_bytes: int,
    ) -> _Hop:
        """One request: vet the host, send, and read the body when it is the answer."""
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._guard.vet(url.host, port)
        except BlockedAddressError as exc:
            raise BlockedAddressError(source, f"{where}: {exc.message}") from exc
        except FetchError as exc:
            raise FetchError(source, f"{where}: {exc.message}") from exc

        request = httpx.Request(
            "GET",
            url,
            headers=headers,
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        token = _PINS.set({(_host_key(url.host), port): addresses})
        try:
            response = await self._transport.handle_async_request(request)
            try:
                return await self._answer(
                    response, source=source, where=where, max_bytes=max_bytes, url=str(url)
                )
            finally:
                await response.aclose()
        except FetchError as exc:
            if exc.source:
                raise
            # From the backend's own vetting, which does not know the source.
            raise type(exc)(source, f"{where}: {exc.message}") from exc
        except (httpx.HTTPError, httpcore.ConnectError) as exc:
            raise FetchError(source, f"{where}: {_describe(exc)}") from exc
        finally:
            _PINS.reset(token)

    async def _answer(
        self, response: httpx.Response, *, source: str, where: str, max_bytes: int, url: str
    ) -> _Hop:
        status = response.status_code
        if status in _REDIRECTS:
            await _discard(response)
            return _Hop(status, response.headers, location=response.headers.get("location"))
        if status == 304:
            await _discard(response)
            return _Hop(status, response.headers)
        if not 200 <= status < 300:
            await _discard(response)
            value = response.headers.get("retry-after")
            retry_after = parse_retry_after(value, datetime.now(UTC)) if value else None
            if status == 429 or retry_after is not None:
                # The host asked us to wait: every source of it waits, not only this one.
                # Set while this fetch holds the host's slot, so a fetch queued behind
                # it finds the backoff when it gets the slot, and sends nothing.
                self.back_off(url, retry_after or datetime.now(UTC) + HOST_BACKOFF)
            phrase = _one_line(response.reason_phrase) if response.reason_phrase else ""
            raise HTTPStatusError(
                source,
                f"{where}: HTTP {status} {phrase}".rstrip(),
                status=status,
                retry_after=retry_after,
                url=url,
            )
        body = await self._read_body(response, source=source, where=where, max_bytes=max_bytes)
        return _Hop(status, response.headers, body=body)

    async def _read_body(
        self, response: httpx.Response, *, source: str, where: str, max_bytes: int
    ) -> bytes:
        too_large = f"{where}: body larger than {max_bytes} bytes (after decompression)"
        if response.is_stream_consumed:
            # A response built in memory (httpx.MockTransport in tests): httpx
            # has already read and decoded it, so there is nothing to stream.
            if len(response.content) > max_bytes:
                raise TooLargeError(source, too_large)
            return response.content
        encoding = response.headers.get("content-encoding", "")
        try:
            decoders = _decoders(encoding)
        except ValueError as exc:
            raise FetchError(source, f"{where}: {exc}") from exc
        if not decoders:
            length = response.headers.get("content-length", "")
            if length.isascii() and length.isdigit() and int(length) > max_bytes:
                raise TooLargeError(source, too_large)
        parts: list[bytes] = []
        total = 0
        try:
            async for raw in response.aiter_raw():
                for chunk in _decode(decoders, raw, final=False):
                    total += len(chunk)
                    if total > max_bytes:
                        raise TooLargeError(source, too_large)
                    parts.append(chunk)
            for chunk in _decode(decoders, b"", final=True):
                total += len(chunk)
                if total > max_bytes:
                    raise TooLargeError(source, too_large)
                parts.append(chunk)
        except DECODE_ERRORS as exc:
            raise FetchError(
                source, f"{where}: cannot decode {encoding.strip()} body: {_describe(exc)}"
            ) from exc
        return b"".join(parts)
