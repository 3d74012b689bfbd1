"""The HTTP fetcher against real servers on loopback addresses.

pytest-httpserver answers the simple cases; ``_aserver.ScriptedServer`` (run
in the test's own loop) covers trickling bodies, connection counting and
peak concurrency. Tests admit loopback explicitly through ``allow_networks``.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import httpx
import pytest
from pytest_httpserver import HTTPServer

from aggregator.errors import (
    BlockedAddressError,
    DeadlineError,
    FetchError,
    HTTPStatusError,
    RedirectError,
    TooLargeError,
)
from aggregator.sources.http import (
    DEFAULT_USER_AGENT,
    Fetcher,
    FetchResponse,
    address_refusal,
    parse_networks,
)
from aggregator.sources.redirects import decide_move
from tests._aserver import Request, ScriptedServer, respond, second_loopback

LOOPBACK = ["127.0.0.0/8"]
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def run(make: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(make())  # type: ignore[arg-type]


async def fetch(url: str, **kwargs: Any) -> FetchResponse:
    fetcher_args = {
        k: kwargs.pop(k)
        for k in ("allow_networks", "resolver", "max_redirects", "max_per_host")
        if k in kwargs
    }
    fetcher_args.setdefault("allow_networks", LOOPBACK)
    async with Fetcher(**fetcher_args) as fetcher:
        return await fetcher.fetch(url, source=kwargs.pop("source", "src"), **kwargs)


# --- requests ---------------------------------------------------------------


def test_sends_project_user_agent_feed_accept_and_extra_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED, content_type="application/rss+xml")

    response = run(lambda: fetch(httpserver.url_for("/feed"), headers={"X-Token": "s3cret"}))

    request, _ = httpserver.log[0]
    assert request.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("aggregator/")
    assert request.headers["Accept"].startswith("application/atom+xml, application/rss+xml")
    assert request.headers["Accept-Encoding"] == "gzip, deflate, br"
    assert request.headers["X-Token"] == "s3cret"
    assert "If-None-Match" not in request.headers
    assert response.status == 200
    assert response.body == FEED
    assert response.headers["content-type"] == "application/rss+xml"
    assert response.url == httpserver.url_for("/feed")
    assert response.redirects == ()
    assert response.permanent_redirect is None


def test_extra_headers_override_defaults(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED)

    run(lambda: fetch(httpserver.url_for("/feed"), headers={"accept": "application/atom+xml"}))

    request, _ = httpserver.log[0]
    assert request.headers.get_all("Accept") == ["application/atom+xml"]


def test_conditional_get_sends_validators_and_304_has_no_body(httpserver: HTTPServer) -> None:
    etag, modified = '"v1"', "Wed, 21 Oct 2015 07:28:00 GMT"
    httpserver.expect_request(
        "/feed", headers={"If-None-Match": etag, "If-Modified-Since": modified}
    ).respond_with_data(status=304, headers={"ETag": etag})
    httpserver.expect_request("/feed").respond_with_data(
        FEED, headers={"ETag": etag, "Last-Modified": modified}
    )
    url = httpserver.url_for("/feed")

    first = run(lambda: fetch(url))
    second = run(lambda: fetch(url, etag=first.etag, last_modified=first.last_modified))

    assert (first.status, first.etag, first.last_modified) == (200, etag, modified)
    assert first.body == FEED
    assert second.status == 304
    assert second.body == b""
    # The 304 repeated only the ETag; the Last-Modified we sent is kept.
    assert (second.etag, second.last_modified) == (etag, modified)
    sent = httpserver.log[1][0].headers
    assert sent["If-None-Match"] == etag
    assert sent["If-Modified-Since"] == modified


def test_304s_and_redirects_keep_the_connection_alive() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.path == "/old":
            await respond(writer, 301, b"moved", {"Location": "/feed"})
        elif request.headers.get("if-none-match") == '"v1"':
            await respond(writer, 304, headers={"ETag": '"v1"'})
        else:
            await respond(writer, 200, FEED, {"ETag": '"v1"'})

    async def main() -> None:
        async with ScriptedServer(handler) as server, Fetcher(allow_networks=LOOPBACK) as fetcher:
            for _ in range(10):
                response = await fetcher.fetch(server.url("/old"), source="s", etag='"v1"')
                assert response.status == 304
            assert server.requests == 20
            assert server.connections == 1

    run(main)


# --- decoding and the size cap -----------------------------------------------


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),
        ("br", brotli.compress),
        ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        ("identity", lambda d: d),
        ("gzip", lambda d: gzip.compress(d[:100]) + gzip.compress(d[100:])),
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "br", "gzip+br", "identity", "multi"],
)
def test_decodes_content_encodings(
    httpserver: HTTPServer, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    body = FEED * 5000  # several decoder steps
    httpserver.expect_request("/feed").respond_with_data(
        encode(body), headers={"Content-Encoding": encoding}
    )

    response = run(lambda: fetch(httpserver.url_for("/feed")))

    assert response.body == body


def test_unknown_encoding_and_corrupt_body_are_fetch_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/zstd").respond_with_data(b"x", headers={"Content-Encoding": "zstd"})
    httpserver.expect_request("/bad").respond_with_data(
        b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )

    with pytest.raises(FetchError, match="unsupported Content-Encoding 'zstd'"):
        run(lambda: fetch(httpserver.url_for("/zstd")))
    with pytest.raises(FetchError, match="cannot decode gzip body"):
        run(lambda: fetch(httpserver.url_for("/bad")))


def test_declared_length_over_cap_is_refused_before_reading(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)

    with pytest.raises(TooLargeError, match="larger than 4096 bytes") as info:
        run(lambda: fetch(httpserver.url_for("/big"), max_bytes=4096))

    assert str(info.value).startswith("src: http://127.0.0.1:")


def test_undeclared_length_over_cap_stops_while_streaming() -> None:
    async def endless(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(10_000):  # 640 MB if nobody stopped reading
            writer.write(b"x" * 65536)
            await writer.drain()

    async def main() -> None:
        async with ScriptedServer(endless) as server:
            with pytest.raises(TooLargeError):
                await fetch(server.url("/feed"), max_bytes=100_000)

    run(main)


def _gzip_bomb(size: int = 2**30) -> bytes:
    """``size`` bytes of zeros as one gzip member of about 1 MB.

    Built from one full-flushed deflate segment repeated (after a full flush
    the compressor's output for the same input is the same), so it takes well
    under a second instead of compressing a gigabyte.
    """
    megabyte = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = compressor.compress(megabyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // 2**20):
        crc = zlib.crc32(megabyte, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + segment * (size // 2**20) + compressor.flush() + trailer


def _brotli_bomb(size: int = 2**30) -> bytes:
    compressor = brotli.Compressor(quality=1)
    megabyte = bytes(2**20)
    parts = [compressor.process(megabyte) for _ in range(size // 2**20)]
    return b"".join([*parts, compressor.finish()])


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("encoding", "make_bomb"), [("gzip", _gzip_bomb), ("br", _brotli_bomb)], ids=["gzip", "br"]
)
def test_compression_bomb_stops_at_cap_with_bounded_memory(
    encoding: str, make_bomb: Callable[[], bytes]
) -> None:
    bomb = make_bomb()
    assert len(bomb) < 1_100_000  # 1 GiB of zeros, about 1 MB (gzip) or less (br) on the wire
    cap = 10 * 2**20

    async def serve(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, bomb, {"Content-Encoding": encoding})

    async def main() -> None:
        async with ScriptedServer(serve) as server:
            rss_before = _rss_kib("VmRSS")
            can_measure_rss = _reset_peak_rss()
            tracemalloc.start()
            try:
                baseline, _ = tracemalloc.get_traced_memory()
                with pytest.raises(TooLargeError, match=f"larger than {cap} bytes"):
                    await fetch(server.url("/bomb"), max_bytes=cap)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert peak - baseline < 100 * 2**20
            assert peak - baseline < 3 * cap  # about the cap, nowhere near 1 GiB
            rss_peak = _rss_kib("VmHWM")
            if can_measure_rss and rss_before is not None and rss_peak is not None:
                assert (rss_peak - rss_before) * 1024 < 100 * 2**20

    run(main)


# --- the overall deadline and isolation ---------------------------------------


def test_trickling_server_ends_at_the_deadline() -> None:
    async def trickle(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:  # one byte every 0.2 s: no per-read timeout ever fires
            writer.write(b"<")
            await writer.drain()
            await asyncio.sleep(0.2)

    async def main() -> None:
        async with ScriptedServer(trickle) as server:
            url = server.url("/slow")
            started = time.monotonic()
            with pytest.raises(DeadlineError) as info:
                await fetch(url, source="slowpoke", timeout=1.0)
            # Never cut short; a loaded machine may only make it later.
            assert time.monotonic() - started >= 0.9
            assert str(info.value) == f"slowpoke: {url}: no complete response within 1 s"

    run(main)


def test_a_hanging_fetch_delays_no_other_fetch() -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.path == "/hang":
            await asyncio.Event().wait()
        await respond(writer, 200, FEED)

    async def main() -> None:
        async with (
            ScriptedServer(handler) as server,
            Fetcher(allow_networks=LOOPBACK, max_per_host=2) as fetcher,
        ):
            hang = asyncio.create_task(fetcher.fetch(server.url("/hang"), source="h", timeout=300))
            await asyncio.sleep(0)  # let the hanging fetch take its slot first
            results = await asyncio.gather(
                *(
                    fetcher.fetch(server.url(f"/feed{i}"), source=f"q{i}", timeout=300)
                    for i in range(30)
                )
            )
            # Same host, one of two slots held by the hang: the others all got
            # through the other slot while the hang still holds its own.
            assert [r.status for r in results] == [200] * 30
            assert not hang.done()
            assert server.in_flight == 1
            hang.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hang

    run(main)


# --- redirects -----------------------------------------------------------------


def test_redirect_chain_is_followed_and_reported(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data(
        status=308, headers={"Location": httpserver.url_for("/c")}
    )
    httpserver.expect_request("/c").respond_with_data(status=302, headers={"Location": "d?x=1"})
    httpserver.expect_request("/d").respond_with_data(FEED)

    response = run(lambda: fetch(httpserver.url_for("/a")))

    assert response.url == httpserver.url_for("/d") + "?x=1"
    assert response.redirects == (
        (301, httpserver.url_for("/b")),
        (308, httpserver.url_for("/c")),
        (302, httpserver.url_for("/d") + "?x=1"),
    )
    # The subscription moved permanently to /c; /c only points elsewhere for now.
    assert response.permanent_redirect == httpserver.url_for("/c")
    assert response.body == FEED


def test_temporary_first_hop_means_no_permanent_redirect(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(status=307, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data(status=301, headers={"Location": "/c"})
    httpserver.expect_request("/c").respond_with_data(FEED)

    response = run(lambda: fetch(httpserver.url_for("/a")))

    assert response.permanent_redirect is None
    assert [status for status, _ in response.redirects] == [307, 301]


@pytest.mark.parametrize(
    ("status", "moves"), [(301, True), (308, True), (302, False), (307, False)]
)
def test_permanent_redirect_moves_the_url_after_three_polls_only(
    httpserver: HTTPServer, status: int, moves: bool
) -> None:
    httpserver.expect_request("/old").respond_with_data(status=status, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data(FEED)
    old, new = httpserver.url_for("/old"), httpserver.url_for("/new")
    location, moved_to, seen = old, None, 0

    for poll in range(1, 5):
        response = run(lambda: fetch(old))
        decision = decide_move(moved_to, seen, response.permanent_redirect, required=3)
        _, moved_to, seen = decision
        if decision.new_location is not None:
            location = decision.new_location
        assert location == (new if moves and poll >= 3 else old)
        assert response.url == new


def test_redirect_loop_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data(status=301, headers={"Location": "/a"})
    url = httpserver.url_for("/a")

    with pytest.raises(RedirectError, match="redirect loop") as info:
        run(lambda: fetch(url))

    assert str(info.value) == f"src: {url}: redirect loop: {url} -> {url[:-1]}b -> {url}"


def test_too_many_redirects_is_an_error(httpserver: HTTPServer) -> None:
    for i in range(5):
        httpserver.expect_request(f"/{i}").respond_with_data(
            status=302, headers={"Location": f"/{i + 1}"}
        )
    httpserver.expect_request("/5").respond_with_data(FEED)

    assert run(lambda: fetch(httpserver.url_for("/0"), max_redirects=5)).body == FEED
    with pytest.raises(RedirectError, match="more than 4 redirects"):
        run(lambda: fetch(httpserver.url_for("/0"), max_redirects=4))


def test_redirect_without_location_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(status=301)

    with pytest.raises(RedirectError, match="HTTP 301 without a Location header"):
        run(lambda: fetch(httpserver.url_for("/a")))


def test_configured_headers_are_not_forwarded_to_another_origin(httpserver: HTTPServer) -> None:
    # Issue 11 item 3: custom headers (an X-Api-Key) went along with a
    # cross-origin redirect; only Authorization and Cookie were dropped.
    seen: list[dict[str, str]] = []

    async def other(request: Request, writer: asyncio.StreamWriter) -> None:
        seen.append(request.headers)
        await respond(writer, 200, FEED)

    async def main() -> None:
        async with ScriptedServer(other) as server:
            httpserver.expect_request("/same").respond_with_data(
                status=302, headers={"Location": "/moved"}
            )
            httpserver.expect_request("/moved").respond_with_data(
                status=302, headers={"Location": server.url("/feed")}
            )
            await fetch(
                httpserver.url_for("/same"),
                headers={"Authorization": "Bearer t", "X-Keep": "1"},
            )

    run(main)
    assert httpserver.log[1][0].headers["Authorization"] == "Bearer t"  # same origin
    assert httpserver.log[1][0].headers["X-Keep"] == "1"
    assert "authorization" not in seen[0]
    assert "x-keep" not in seen[0]
    assert seen[0]["user-agent"].startswith("aggregator/")


# --- the SSRF guard ---------------------------------------------------------------


def test_redirect_to_private_address_is_refused_before_any_connection() -> None:
    target_host = second_loopback()

    async def target(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, FEED)

    async def main() -> None:
        async with ScriptedServer(target, host=target_host) as listener:

            async def redirect(request: Request, writer: asyncio.StreamWriter) -> None:
                location = (
                    listener.url("/secret")
                    if request.path == "/by-ip"
                    else f"http://intranet.test:{listener.port}/secret"
                )
                await respond(writer, 302, headers={"Location": location})

            async def resolver(host: str, port: int) -> list[str]:
                return {"intranet.test": [target_host]}[host]

            async with ScriptedServer(redirect) as public:
                # Only the first server's address is admitted.
                only_first = ["127.0.0.1/32"]
                for path in ("/by-ip", "/by-name"):
                    with pytest.raises(BlockedAddressError, match=r"loopback address 127\.0\.0\.2"):
                        await fetch(public.url(path), allow_networks=only_first, resolver=resolver)
                assert public.requests == 2
                assert listener.connections == 0

                # Control: once admitted, the same redirect does reach the listener.
                response = await fetch(
                    public.url("/by-name"), allow_networks=LOOPBACK, resolver=resolver
                )
                assert response.body == FEED
                assert listener.connections == 1

    run(main)


def test_connection_goes_to_the_vetted_address_not_a_second_lookup() -> None:
    """DNS rebinding: the name resolves to an admitted address, then to a private one."""
    answers = iter([["127.0.0.1"]])
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers, ["10.0.0.1"])

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, request.headers["host"].encode())

    async def main() -> None:
        async with ScriptedServer(handler) as server:
            response = await fetch(
                f"http://feeds.test:{server.port}/feed",
                allow_networks=["127.0.0.1/32"],
                resolver=rebinding,
            )
            # One lookup, vetted and used; the Host header keeps the name.
            assert lookups == ["feeds.test"]
            assert response.body == f"feeds.test:{server.port}".encode()

    run(main)


def test_every_resolved_address_is_checked() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "10.0.0.1"]

    with pytest.raises(BlockedAddressError) as info:
        run(
            lambda: fetch("http://mixed.test/feed", allow_networks=["127.0.0.1/32"], resolver=mixed)
        )
    assert str(info.value) == (
        "src: http://mixed.test/feed: mixed.test resolves to private address 10.0.0.1, "
        "refused (not in allow_networks; to fetch it, add allow_networks: [10.0.0.1/32] "
        "to the config)"
    )


def test_loopback_is_refused_without_allow_networks(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(FEED)

    with pytest.raises(BlockedAddressError, match=r"loopback address 127\.0\.0\.1"):
        run(lambda: fetch(httpserver.url_for("/feed"), allow_networks=[]))
    assert len(httpserver.log) == 0


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/feed", "gopher://127.0.0.1/"]
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(BlockedAddressError, match="only http and https"):
        run(lambda: fetch(url))


def test_redirect_to_another_scheme_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(
        status=302, headers={"Location": "file:///etc/passwd"}
    )

    with pytest.raises(BlockedAddressError, match="scheme 'file' refused"):
        run(lambda: fetch(httpserver.url_for("/a")))


def test_ipv4_mapped_answer_is_refused_even_when_ipv4_loopback_is_admitted() -> None:
    async def mapped(host: str, port: int) -> list[str]:
        return ["::ffff:127.0.0.1"]

    with pytest.raises(BlockedAddressError, match="IPv4-mapped address"):
        run(lambda: fetch("http://mapped.test/feed", resolver=mapped))


def test_ipv6_literal_url_connects_when_admitted() -> None:
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, FEED)

    async def main() -> None:
        async with ScriptedServer(handler, host="::1") as server:
            url = f"http://[::1]:{server.port}/feed"
            with pytest.raises(BlockedAddressError, match="loopback address ::1"):
                await fetch(url)
            assert (await fetch(url, allow_networks=["::1/128"])).body == FEED
            assert server.connections == 1

    run(main)


def test_a_custom_transport_still_gets_the_address_check() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if request.url.host == "public.test":
            return httpx.Response(302, headers={"Location": "http://private.test/"})
        return httpx.Response(200, content=FEED)

    async def resolver(host: str, port: int) -> list[str]:
        return {"public.test": ["93.184.216.34"], "private.test": ["10.0.0.7"]}[host]

    async def main() -> None:
        transport = httpx.MockTransport(handler)
        async with Fetcher(transport=transport, resolver=resolver) as fetcher:
            with pytest.raises(BlockedAddressError, match=r"private address 10\.0\.0\.7"):
                await fetcher.fetch("http://public.test/feed", source="s")
        assert calls == ["http://public.test/feed"]
        async with Fetcher(
            transport=transport, resolver=resolver, allow_networks=["10.0.0.0/8"]
        ) as fetcher:
            response = await fetcher.fetch("http://public.test/feed", source="s")
        assert response.body == FEED
        assert response.url == "http://private.test/"

    run(main)


@pytest.mark.parametrize(
    ("address", "allow", "refused"),
    [
        ("93.184.216.34", [], None),
        ("2606:2800:220:1:248:1893:25c8:1946", [], None),
        ("127.0.0.1", [], "loopback address 127.0.0.1"),
        ("127.0.0.1", ["127.0.0.0/8"], None),
        ("127.0.0.2", ["127.0.0.1/32"], "loopback address 127.0.0.2"),
        ("10.1.2.3", [], "private address 10.1.2.3"),
        ("172.16.0.1", [], "private address 172.16.0.1"),
        ("192.168.1.1", [], "private address 192.168.1.1"),
        ("192.168.1.1", ["192.168.0.0/16"], None),
        ("169.254.169.254", [], "link-local address 169.254.169.254"),
        ("0.0.0.0", [], "unspecified address 0.0.0.0"),
        ("224.0.0.1", [], "multicast address 224.0.0.1"),
        ("240.0.0.1", [], "reserved address 240.0.0.1"),
        ("100.64.0.1", [], "non-global address 100.64.0.1"),
        ("::1", [], "loopback address ::1"),
        ("::", [], "unspecified address ::"),
        ("fe80::1%eth0", [], "link-local address fe80::1"),
        ("fd00::1", [], "private address fd00::1"),
        ("ff02::1", [], "multicast address ff02::1"),
        ("::ffff:127.0.0.1", [], "IPv4-mapped address ::ffff:7f00:1"),
        ("::ffff:8.8.8.8", [], "IPv4-mapped address ::ffff:808:808"),
        ("::ffff:8.8.8.8", ["127.0.0.0/8"], "IPv4-mapped address ::ffff:808:808"),
        ("::ffff:0:8.8.8.8", [], "IPv4-translated address ::ffff:0:808:808"),
        ("64:ff9b::a00:1", [], "NAT64 address 64:ff9b::a00:1"),
        ("2002:7f00:1::", [], "6to4 address 2002:7f00:1::"),
        ("not-an-ip", [], "unparsable address 'not-an-ip'"),
    ],
)
def test_address_refusal(address: str, allow: list[str], refused: str | None) -> None:
    assert address_refusal(address, parse_networks(allow)) == refused


def test_bad_allow_network_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"allow_networks: '10\.0\.0\.0/33' is not a CIDR block"):
        Fetcher(allow_networks=["10.0.0.0/33"])


# --- statuses and transport errors -------------------------------------------------


def test_retry_after_seconds_and_date_are_parsed(httpserver: HTTPServer) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    httpserver.expect_request("/busy").respond_with_data(status=503, headers={"Retry-After": "120"})
    httpserver.expect_request("/slow-down").respond_with_data(
        status=429, headers={"Retry-After": format_datetime(later, usegmt=True)}
    )
    httpserver.expect_request("/gone").respond_with_data(status=410)

    before = datetime.now(UTC)
    with pytest.raises(HTTPStatusError) as busy:
        run(lambda: fetch(httpserver.url_for("/busy"), source="wire"))
    with pytest.raises(HTTPStatusError) as slow:
        run(lambda: fetch(httpserver.url_for("/slow-down")))
    with pytest.raises(HTTPStatusError) as gone:
        run(lambda: fetch(httpserver.url_for("/gone")))

    assert busy.value.status == 503
    assert busy.value.retry_after is not None
    assert before + timedelta(seconds=119) <= busy.value.retry_after
    assert busy.value.retry_after <= datetime.now(UTC) + timedelta(seconds=121)
    assert str(busy.value) == f"wire: {httpserver.url_for('/busy')}: HTTP 503 SERVICE UNAVAILABLE"
    assert slow.value.status == 429
    assert slow.value.retry_after == later
    assert gone.value.status == 410
    assert gone.value.retry_after is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_failure_is_a_one_line_fetch_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/feed"

    with pytest.raises(FetchError) as info:
        run(lambda: fetch(url, source="wire"))

    message = str(info.value)
    assert type(info.value) is FetchError
    assert message.startswith(f"wire: {url}: ConnectError")
    assert "\n" not in message


def test_unresolvable_name_is_a_fetch_error() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(FetchError, match=r"cannot resolve nowhere\.test: gaierror"):
        run(lambda: fetch("http://nowhere.test/feed", resolver=nxdomain))


# --- politeness ------------------------------------------------------------------------


def test_five_hundred_feeds_on_one_host_respect_the_per_host_limit() -> None:
    async def slowish(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.002)  # keeps requests overlapping so the limit is exercised
        await respond(writer, 200, FEED, {"ETag": f'"{request.path}"'})

    async def main() -> None:
        async with (
            ScriptedServer(slowish) as server,
            Fetcher(allow_networks=LOOPBACK, max_connections=20, max_per_host=2) as fetcher,
        ):
            responses = await asyncio.gather(
                *(fetcher.fetch(server.url(f"/feed/{i}"), source=f"s{i}") for i in range(500))
            )
            assert [r.etag for r in responses] == [f'"/feed/{i}"' for i in range(500)]
            assert server.requests == 500
            assert server.peak == 2
            assert server.connections <= 2  # kept alive and reused

    run(main)


def test_global_limit_holds_across_hosts() -> None:
    other_host = second_loopback()
    in_flight = [0, 0]  # now, peak

    async def slowish(request: Request, writer: asyncio.StreamWriter) -> None:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.005)
        in_flight[0] -= 1
        await respond(writer, 200, FEED)

    async def main() -> None:
        async with (
            ScriptedServer(slowish) as one,
            ScriptedServer(slowish, host=other_host) as two,
            Fetcher(allow_networks=LOOPBACK, max_connections=3, max_per_host=2) as fetcher,
        ):
            urls = [s.url(f"/{i}") for i in range(40) for s in (one, two)]
            await asyncio.gather(*(fetcher.fetch(u, source="s") for u in urls))
            assert one.peak <= 2
            assert two.peak <= 2
            assert in_flight[1] == 3

    run(main)


def test_host_slots_are_released() -> None:
    async def main() -> None:
        async with (
            ScriptedServer(lambda r, w: respond(w, 200, FEED)) as server,
            Fetcher(allow_networks=LOOPBACK) as fetcher,
        ):
            await asyncio.gather(
                *(fetcher.fetch(server.url(f"/{i}"), source="s") for i in range(5))
            )
            with pytest.raises(DeadlineError):
                await fetcher.fetch(server.url("/x"), source="s", timeout=0)
            assert fetcher._slots.keys() == 0

    run(main)
