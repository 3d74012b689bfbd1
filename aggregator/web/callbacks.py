"""WebSub callbacks: ``/websub/<callback>``, verification GETs and distribution POSTs.

What a callback means is the handler's (``aggregator.push``); here is the
HTTP: a body read up to a cap (413 beyond it), and a rate limit per callback
(429 with ``Retry-After``) so a flood on one URL costs little and touches
nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator.publish.paths import WEBSUB_CALLBACKS

__all__ = ["CALLBACK_PREFIX", "CallbackHandler", "RateLimit", "callback_route"]

#: the path under ``server.base_url`` of every callback
CALLBACK_PREFIX = WEBSUB_CALLBACKS


class CallbackHandler(Protocol):
    """What answers the hubs."""

    @property
    def max_body(self) -> int:
        """The largest distribution body accepted."""
        ...

    async def verify(self, callback: str, params: Mapping[str, str]) -> str | None:
        """The challenge to echo for a verification we asked for; None: 404."""
        ...

    async def distribute(self, callback: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Take a content distribution; the status to answer."""
        ...


class RateLimit:
    """A token bucket per key: ``burst`` requests at once, then ``rate`` a second."""

    def __init__(self, *, rate: float = 2.0, burst: int = 20, keys: int = 10_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._keys = keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if len(self._buckets) >= self._keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory: a flood of made-up keys starts them over
        self._buckets[key] = (tokens - 1.0, now)
        return True


async def _read_capped(request: Request, cap: int) -> bytes | None:
    """The request body, or None when it is longer than ``cap``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def callback_route(handler: CallbackHandler, limit: RateLimit | None = None) -> Route:
    """The route of every WebSub callback, answered by ``handler``."""
    limit = limit or RateLimit()

    async def callback(request: Request) -> Response:
        name = request.path_params["callback"]
        if not limit.allow(name):
            return Response(
                b"Too Many Requests", 429, {"retry-after": "1"}, media_type="text/plain"
            )
        if request.method == "GET":
            challenge = await handler.verify(name, dict(request.query_params))
            if challenge is None:
                return Response(b"Not Found", 404, media_type="text/plain")
            return Response(challenge.encode(), 200, media_type="text/plain")
        body = await _read_capped(request, handler.max_body)
        if body is None:
            return Response(b"Payload Too Large", 413, media_type="text/plain")
        status = await handler.distribute(name, body, dict(request.headers))
        return Response(b"", status)

    return Route(f"/{CALLBACK_PREFIX}{{callback}}", callback, methods=["GET", "POST"])
