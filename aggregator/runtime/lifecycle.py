"""The start and stop both modes of ``aggregator run`` share: signals, the web server, tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterable
from typing import Any

from aggregator.config import Config
from aggregator.errors import ListenError
from aggregator.web import ACCEPT_IN_FLIGHT, serve

from .fds import budget, raise_soft_limit

__all__ = [
    "STOP_SIGNALS",
    "WebServer",
    "cancel",
    "connection_limit",
    "listen",
    "on_signals",
    "remove_signals",
]

log = logging.getLogger(__name__)

#: the signals that stop the process cleanly
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_signals(signals: Iterable[signal.Signals], callback: Callable[[], object]) -> None:
    """Call ``callback`` on the running loop when one of ``signals`` arrives."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, callback)


def remove_signals(signals: Iterable[signal.Signals]) -> None:
    """Take back what :func:`on_signals` installed."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.remove_signal_handler(sig)


def connection_limit(config: Config) -> int:
    """Raise the descriptor limit and return how many client connections fit under it."""
    shares = budget(raise_soft_limit(), config.max_connections, ACCEPT_IN_FLIGHT)
    log.info(
        "file descriptors: limit %d, %d for client connections, %d kept for the rest",
        shares.limit,
        shares.connections,
        shares.reserve,
    )
    return shares.connections


def listen(config: Config) -> socket.socket:
    """A socket bound to the config's server address, for the web server to accept on.

    Bound here, before anything says it serves, so an address in use is one
    line naming the address and the setting to change, not the server's
    traceback.

    Raises:
        ListenError: the address cannot be bound (in use, not this host's, no permission).
    """
    host, port = config.server.host, config.server.port
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(host, port, exc.strerror or str(exc), file=str(config.path)) from exc
    try:
        # As uvicorn binds: a restarted daemon may take its port back at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, exc.strerror or str(exc), file=str(config.path)) from exc
    return sock


class WebServer:
    """The web app served on the running loop, on the config's host and port, until :meth:`stop`.

    Raises:
        ListenError: the address cannot be bound.
    """

    def __init__(self, app: Any, config: Config) -> None:
        sock = listen(config)
        self._server = serve(
            app,
            host=config.server.host,
            port=config.server.port,
            max_connections=connection_limit(config),
        )
        # The process owns the signals: uvicorn must not install its own handlers.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web")

    async def stop(self) -> None:
        """Stop accepting, finish the requests in flight, and return when the server is down."""
        self._server.should_exit = True
        await self._task


async def cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has ended."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
