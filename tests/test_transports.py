"""One connection pool per origin (``aggregator.sources.transports``)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aggregator.sources.transports import OriginTransports


class Body(httpx.AsyncByteStream):
    """A streamed body, open until the caller closes it (as a real pool's is)."""

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b"x" * 10


class Recorded(httpx.MockTransport):
    """A mock origin pool that remembers what it answered and whether it was closed."""

    made: list[Recorded] = []

    def __init__(self) -> None:
        super().__init__(self.answer)
        self.hosts: list[str] = []
        self.closed = False
        Recorded.made.append(self)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return httpx.Response(200, stream=Body())

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def fresh() -> None:
    Recorded.made = []


async def get(transports: OriginTransports, url: str, *, close: bool = True) -> httpx.Response:
    response = await transports.handle_async_request(httpx.Request("GET", url))
    if close:
        await response.aread()
        await response.aclose()
    return response


def test_each_origin_has_its_own_pool_reused_for_its_requests() -> None:
    async def main() -> OriginTransports:
        transports = OriginTransports(Recorded, keep=10)
        for _ in range(3):
            for url in ("http://a.test/1", "http://b.test/2", "https://a.test/3"):
                await get(transports, url)
        return transports

    transports = asyncio.run(main())
    assert transports.origins() == 3
    assert [t.hosts for t in Recorded.made] == [["a.test"] * 3, ["b.test"] * 3, ["a.test"] * 3]


def test_least_recently_used_idle_pools_close_beyond_keep() -> None:
    async def main() -> OriginTransports:
        transports = OriginTransports(Recorded, keep=2)
        await get(transports, "http://a.test/")
        await get(transports, "http://b.test/")
        await get(transports, "http://a.test/")  # b is now the least recently used
        await get(transports, "http://c.test/")
        return transports

    transports = asyncio.run(main())
    a, b, c = Recorded.made
    assert (a.closed, b.closed, c.closed) == (False, True, False)
    assert transports.origins() == 2


def test_a_pool_with_an_open_response_is_not_closed() -> None:
    async def main() -> tuple[OriginTransports, bool]:
        transports = OriginTransports(Recorded, keep=1)
        held = await get(transports, "http://a.test/", close=False)
        await get(transports, "http://b.test/")
        closed_while_open = Recorded.made[0].closed
        body = await held.aread()
        await held.aclose()
        await held.aclose()  # a second close counts once
        await get(transports, "http://c.test/")
        assert body == b"x" * 10
        return transports, closed_while_open

    transports, closed_while_open = asyncio.run(main())
    a, b, c = Recorded.made
    assert not closed_while_open
    assert (a.closed, b.closed, c.closed) == (True, True, False)
    assert transports.origins() == 1


def test_a_failed_request_releases_its_pool_and_aclose_closes_all() -> None:
    class Failing(Recorded):
        def answer(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

    async def main() -> OriginTransports:
        transports = OriginTransports(Failing, keep=1)
        with pytest.raises(httpx.ConnectError):
            await get(transports, "http://a.test/")
        with pytest.raises(httpx.ConnectError):
            await get(transports, "http://b.test/")
        await transports.aclose()
        return transports

    transports = asyncio.run(main())
    assert [t.closed for t in Recorded.made] == [True, True]
    assert transports.origins() == 0


def test_a_response_read_whole_by_its_transport_releases_its_pool_at_once() -> None:
    async def main() -> OriginTransports:
        transports = OriginTransports(lambda: httpx.MockTransport(whole), keep=1)
        await get(transports, "http://a.test/", close=False)
        await get(transports, "http://b.test/", close=False)
        return transports

    def whole(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"whole")

    # The first pool was idle (its response complete), so the second closed it.
    assert asyncio.run(main()).origins() == 1


def test_keep_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        OriginTransports(Recorded, keep=0)
