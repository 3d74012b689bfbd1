"""Connections only to the addresses a hop vetted: httpcore's network backend and httpx's
transport, pinned, so there is no DNS-rebinding window between check and connect."""

from __future__ import annotations

import contextvars
import functools
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import httpcore
import httpx

from aggregator.sources.addresses import _Guard, _host_key

# (host, port) -> the addresses the current hop vetted. A context variable, so
# each fetch task sees only its own vetting and concurrent fetches cannot mix.
_PINS: contextvars.ContextVar[Mapping[tuple[str, int], tuple[str, ...]]] = contextvars.ContextVar(
    "aggregator_http_pins"
)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses the current hop vetted, never to a fresh lookup."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = _PINS.get({}).get((_host_key(host), port))
        if addresses is None:
            # Not reached through Fetcher.fetch: vet here, so the check and the
            # connect still use one and the same lookup.
            addresses = await self._guard.vet(host, port)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The one TLS context of this process's fetches (the CA bundle loaded once).

    Loading the bundle takes 25-65 ms of CPU: once per process, not per client
    (a context is safe to share; verification settings never vary). A daemon
    calls this before it serves, so the first fetch does not load it on the loop.
    """
    return httpx.create_ssl_context(trust_env=False)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with our network backend underneath."""

    def __init__(self, backend: _PinnedBackend, max_connections: int) -> None:
        super().__init__(verify=ssl_context(), trust_env=False)
        # httpx does not take a network backend, so replace the pool it built.
        # ``_pool`` has been the attribute's name since httpx 0.18; httpx is
        # pinned below 1.0 in pyproject, and tests exercise this path.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=backend,
        )
