"""Remote sources: polling a URL, with discovery, redirects, cache hints and full-content pages.

A poll fetches with the source's validators; a page instead of a feed is
searched for its feed (:func:`_discover`, remembered in the state); a
permanent redirect moves the source once confirmed (``sources.redirects``);
a 200 whose bytes were parsed before is not parsed again; a ``full_content``
source fetches its new entries' pages (:mod:`aggregator.engine.pages`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator.config import Config
from aggregator.engine import CpuPool
from aggregator.errors import DeadlineError, ParseError, SourceError
from aggregator.model import Outcome, SourceResult, SourceSpec, SourceState
from aggregator.schedule import parse_cache_control, parse_expires
from aggregator.sources.http import Fetcher, FetchResponse
from aggregator.sources.redirects import decide_move
from aggregator.sources.sniff import looks_like_html
from aggregator.update.context import Context, make_fetcher, stages_of
from aggregator.update.kinds import Attempt, Hints
from aggregator.update.write import Write

if TYPE_CHECKING:
    # The CPU stage and feed discovery (bs4) load on first use: a pass whose
    # feeds all answer 304 imports none of them (nor numpy, lxml or nh3 under
    # them). The worker processes import the CPU stage themselves.
    from aggregator.engine.digests import FeedDigest
    from aggregator.sources.discover import DiscoveredFeed

__all__ = ["RemoteFeeds", "discover_url"]

log = logging.getLogger(__name__)


class RemoteFeeds:
    """The updater of a remote URL: a feed, or an HTML page whose feed is discovered."""

    remote = True

    def lane(self, spec: SourceSpec) -> str | None:
        return urlsplit(spec.location).hostname

    def watched(self, spec: SourceSpec) -> Path | None:
        return None

    async def update(
        self, spec: SourceSpec, ctx: Context, *, now: datetime, state: SourceState, write: Write
    ) -> Attempt:
        return Attempt(*await _update_url(spec, ctx, now, state, write))


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


async def _fetch(
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


async def _discover(
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
                    resp = await _fetch(spec, fetcher, url, None)
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


async def _update_url(
    spec: SourceSpec, ctx: Context, now: datetime, state: SourceState, pending: Write
) -> tuple[SourceResult, SourceState, Hints, Write]:
    if ctx.fetcher is None:
        # Called on its own, not from update_all or the daemon: a fetcher for
        # this update only, closed with it.
        async with make_fetcher(ctx.config) as fetcher:
            return await _poll(spec, ctx, fetcher, now, state, pending)
    return await _poll(spec, ctx, ctx.fetcher, now, state, pending)


async def _poll(
    spec: SourceSpec,
    ctx: Context,
    fetcher: Fetcher,
    now: datetime,
    state: SourceState,
    pending: Write,
) -> tuple[SourceResult, SourceState, Hints, Write]:
    stages = stages_of(ctx)
    url = state.discovered_feed or state.location
    resp = await _fetch(spec, fetcher, url, state)
    received = len(resp.body)
    move = decide_move(
        state.moved_to,
        state.moved_seen,
        resp.permanent_redirect,
        required=ctx.config.permanent_redirect_polls,
    )
    state = replace(state, moved_to=move.moved_to, moved_seen=move.moved_seen)
    if move.new_location:
        if state.discovered_feed:
            state = replace(state, discovered_feed=move.new_location)
        else:
            state = replace(
                state, location=move.new_location, url_history=(*state.url_history, state.location)
            )
    if resp.status == 304:
        hints = _response_hints(resp, now, None)
        result = SourceResult(
            source=spec.name, outcome=Outcome.NOT_MODIFIED, http_status=304, received=received
        )
        state = replace(state, etag=resp.etag, last_modified=resp.last_modified)
        return result, state, hints, pending
    if not state.discovered_feed and looks_like_html(resp.body, resp.headers.get("content-type")):
        resp = await _discover(spec, fetcher, stages.pool, resp)
        received += len(resp.body)
        state = replace(state, discovered_feed=resp.url)
        log.info("%s: discovered feed %s", spec.name, resp.url)
    state = replace(state, etag=resp.etag, last_modified=resp.last_modified)
    body_hash = _body_hash(resp)
    if stages.skip_unchanged_body and body_hash is not None and body_hash == state.body_hash:
        # The server sent the same bytes again (no validators, or ignored
        # them): what they parse to is stored already.
        result = SourceResult(
            source=spec.name,
            outcome=Outcome.NOT_MODIFIED,
            http_status=resp.status,
            received=received,
        )
        return result, state, _response_hints(resp, now, None), pending
    hints = _response_hints(resp, now, None)
    feed: dict[str, Any] = {
        "spec": spec,
        "url": resp.url,
        "headers": dict(resp.headers),
        "now": now,
        "fast": stages.fast_parser,
    }
    reparse = False
    if spec.full_content is None:
        digest: FeedDigest = await stages.pool.run(
            spec.name,
            "aggregator.engine.work:digest_feed",
            resp.body,
            **feed,
            topics=ctx.config.topics,
            near=ctx.config.dedup,
        )
    else:
        first: FeedDigest = await stages.pool.run(
            spec.name, "aggregator.engine.work:read_feed", resp.body, **feed
        )
        digest, reparse, hints = await _with_articles(spec, ctx, fetcher, first, now, hints)
    # A feed that declares a <ttl> is parsed every time: skipping would forget
    # its hint. One whose new entries were held back is parsed again for them.
    keep_hash = digest.ttl is None and not reparse
    state = replace(state, body_hash=body_hash if keep_hash else None)
    result = SourceResult(
        source=spec.name,
        outcome=Outcome.OK,
        problems=digest.problems,
        http_status=resp.status,
        received=received,
    )
    write = replace(pending, records=digest.records)
    return result, state, replace(hints, ttl=digest.ttl), write


async def _with_articles(
    spec: SourceSpec,
    ctx: Context,
    fetcher: Fetcher,
    first: FeedDigest,
    now: datetime,
    hints: Hints,
) -> tuple[FeedDigest, bool, Hints]:
    """The feed's digest with the full articles of its new entries (``full_content``).

    Returns:
        The digest; whether entries were held back for the next poll (their
        host is backing off, or over ``max_pages``); the hints, with the host's
        wait when it asked for one.
    """
    from aggregator.engine.pages import digest_full

    stages = stages_of(ctx)
    full = await digest_full(
        first,
        spec=spec,
        fetcher=fetcher,
        pool=stages.pool,
        store=ctx.store,
        now=now,
        topics=ctx.config.topics,
        near=ctx.config.dedup,
    )
    if full.held:
        log.info("%s: %d new entries wait for the next poll", spec.name, full.held)
    if full.retry_after is not None:
        hints = replace(hints, retry_after=full.retry_after)
    return full.digest, full.held > 0, hints


def _body_hash(resp: FetchResponse) -> str | None:
    return hashlib.sha256(resp.body).hexdigest() if resp.status == 200 else None


def _response_hints(resp: FetchResponse, now: datetime, ttl: timedelta | None) -> Hints:
    expires_in = parse_expires(resp.headers, now)
    return Hints(
        cache_max_age=parse_cache_control(resp.headers),
        expires=now + expires_in if expires_in is not None else None,
        ttl=ttl,
    )
