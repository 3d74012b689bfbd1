"""The HTTP server: uvicorn (uvloop, httptools) with a guarded protocol: a size limit and a
deadline on each request head (431, 408), a body deadline, and a connection limit.

The one module importing uvicorn. Re-exported by :mod:`aggregator.web`.
"""

from __future__ import annotations

import asyncio
import itertools

import uvicorn
from starlette.types import ASGIApp

# uvicorn[standard] installs httptools; the request-head guard extends its protocol.
from uvicorn.protocols.http import httptools_impl as _httptools_impl

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
#: orders the moments connections became idle (accepted, or a response sent):
#: the connection limit replaces the one with the lowest number (the loop's
#: clock ticks in milliseconds, too coarse to order them)
_IDLE_ORDER = itertools.count()


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Header lines as uvicorn writes them (lower-case name, ``: ``, value, CRLF)."""
    return b"".join(name.lower() + b": " + value + b"\r\n" for name, value in headers)


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
        #: when this connection last became idle (accepted, or its last response
        #: sent), in _IDLE_ORDER
        self._since = next(_IDLE_ORDER)
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

    def on_response_complete(self) -> None:
        self._since = next(_IDLE_ORDER)
        super().on_response_complete()

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
