"""Fetching for a remote source: one conditional GET, and finding the feed an HTML page offers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aggregator.config import Config
from aggregator.engine import CpuPool
from aggregator.errors import DeadlineError, ParseError, SourceError
from aggregator.model import SourceSpec, SourceState
from aggregator.sources.sniff import looks_like_html
from aggregator.update.context import make_fetcher

if TYPE_CHECKING:
    # Feed discovery (bs4) loads on first use, in ``aggregator discover``;
    # the daemon runs it in the CPU stage's workers.
    from aggregator.sources.discover import DiscoveredFeed
    from aggregator.sources.http import Fetcher, FetchResponse

__all__ = ["discover", "discover_url", "fetch", "is_page"]


def is_page(resp: FetchResponse) -> bool:
    """Whether the response is an HTML page rather than a feed."""
    return looks_like_html(resp.body, resp.headers.get("content-type"))


async def discover_url(config: Config, url: str, *, timeout: float = 20.0) -> list[DiscoveredFeed]:
    """The feeds a URL offers, as ``aggregator discover`` prints them.

    A page gives its linked feeds (``via`` ``"link"`` or ``"anchor"``); a page
    that links none gives the common feed paths that really answer with a
    feed (``via="guess"``); a URL that is itself a feed gives itself
    (``via="self"``). Fetches obey the config's ``allow_networks``.

    Args:
        config: for the fetcher's settings (SSRF allow list, User-Agent, limits).
        url: an absolute http(s) URL.
        timeout: overall deadline of each fetch, in seconds.

    Returns:
        The feeds, best first; empty when nothing was found.

    Raises:
        SourceError: the URL itself cannot be fetched, or is neither a page nor a feed.
    """
    from aggregator.parse import parse_feed
    from aggregator.sources.discover import DiscoveredFeed, discover_feeds

    async with make_fetcher(config) as fetcher:
        page = await fetcher.fetch(url, source=url, timeout=timeout)
        mime = page.headers.get("content-type", "").split(";", 1)[0].strip().lower() or None
        if not looks_like_html(page.body, mime):
            doc = await asyncio.to_thread(
                parse_feed, page.body, url=page.url, headers=page.headers, source=url
            )
            return [DiscoveredFeed(page.url, doc.feed.title, mime, "self")]
        found = discover_feeds(page.body, base_url=page.url)
        linked = [f for f in found if f.via != "guess"]
        if linked:
            return linked

        async def probe(guess: DiscoveredFeed) -> DiscoveredFeed | None:
            try:
                resp = await fetcher.fetch(guess.url, source=url, timeout=timeout)
                kind = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if looks_like_html(resp.body, kind):
                    return None
                doc = await asyncio.to_thread(
                    parse_feed, resp.body, url=resp.url, headers=resp.headers, source=url
                )
            except SourceError:
                return None
            return DiscoveredFeed(resp.url, doc.feed.title, kind or None, "guess")

        probed = await asyncio.gather(*(probe(g) for g in found))
        return [f for f in probed if f is not None]


async def fetch(
    spec: SourceSpec, fetcher: Fetcher, url: str, state: SourceState | None
) -> FetchResponse:
    return await fetcher.fetch(
        url,
        source=spec.name,
        etag=state.etag if state else None,
        last_modified=state.last_modified if state else None,
        headers=dict(spec.headers),
        headers_origin=spec.location,
        timeout=spec.timeout.total_seconds(),
        max_bytes=spec.max_bytes,
    )


async def discover(
    spec: SourceSpec, fetcher: Fetcher, pool: CpuPool, page: FetchResponse
) -> FetchResponse:
    """An HTML page was fetched: find its feed (links first, then common paths).

    At most ``MAX_CANDIDATES`` candidates, all within one source deadline.
    """
    tried: list[str] = []
    timeout = spec.timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            # bs4 over a whole page is CPU work: in a worker, like parsing.
            candidates: list[str] = await pool.run(
                spec.name,
                "aggregator.sources.discover:feed_candidates",
                page.body,
                base_url=page.url,
            )
            for url in candidates:
                try:
                    resp = await fetch(spec, fetcher, url, None)
                    if looks_like_html(resp.body, resp.headers.get("content-type")):
                        raise ParseError(spec.name, f"{url}: is an HTML page, not a feed")
                    await pool.run(
                        spec.name,
                        "aggregator.parse:parse_feed",
                        resp.body,
                        url=resp.url,
                        headers=dict(resp.headers),
                        source=spec.name,
                    )
                except SourceError as exc:
                    tried.append(str(exc))
                    continue
                return resp
    except TimeoutError as exc:
        raise DeadlineError(
            spec.name, f"{page.url}: feed discovery took longer than {timeout:g} s"
        ) from exc
    detail = f"; tried {len(tried)}: {tried[0]}" if tried else ""
    raise ParseError(spec.name, f"{page.url}: an HTML page with no usable feed{detail}")
