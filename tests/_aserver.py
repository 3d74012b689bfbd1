"""A tiny scripted HTTP/1.1 server for fetcher tests, run in the test's own event loop.

pytest-httpserver answers whole responses from a thread; some tests need what
it cannot give: a body trickled byte by byte, a listener that counts TCP
connections, or a count of requests in flight at once. Handlers write the raw
response themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


def second_loopback() -> str:
    """127.0.0.2 is loopback on Linux; skip where it cannot be bound."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.2", 0))
        except OSError:
            pytest.skip("127.0.0.2 cannot be bound here")
    return "127.0.0.2"


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def respond(
    writer: asyncio.StreamWriter,
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    """Write one complete response with a Content-Length."""
    lines = [f"HTTP/1.1 {status} X"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


@dataclass
class ScriptedServer:
    handler: Handler
    host: str = "127.0.0.1"
    #: TCP connections accepted
    connections: int = 0
    #: requests read
    requests: int = 0
    #: requests being handled right now, and the most ever at once
    in_flight: int = 0
    peak: int = 0
    paths: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._client, self.host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                self.requests += 1
                self.paths.append(path)
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                try:
                    await self.handler(Request(method, path, headers), writer)
                finally:
                    self.in_flight -= 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(BaseException):
                await writer.wait_closed()
            self._tasks.discard(task)
