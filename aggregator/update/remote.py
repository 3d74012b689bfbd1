"""Remote sources: polling a URL, with discovery, redirects, cache hints and full-content pages.

A poll fetches with the source's validators; a page instead of a feed is
searched for its feed (:mod:`.fetching`, remembered in the state); a
permanent redirect moves the source once confirmed (``sources.redirects``);
a 200 whose bytes were parsed before is not parsed again; a ``full_content``
source fetches its new entries' pages (:mod:`.articles`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator.model import Outcome, SourceResult, SourceSpec, SourceState
from aggregator.sources.redirects import decide_move
from aggregator.sources.schedule import parse_cache_control, parse_expires
from aggregator.update.articles import with_articles
from aggregator.update.context import Context, make_fetcher, stages_of
from aggregator.update.fetching import discover, fetch, is_page
from aggregator.update.kinds import Attempt, Hints
from aggregator.update.write import Write

if TYPE_CHECKING:
    # The CPU stage loads on first use: a pass whose feeds all answer 304
    # imports none of it (nor numpy, lxml or nh3 under it). The worker
    # processes import the CPU stage themselves.
    from aggregator.engine.digests import FeedDigest
    from aggregator.sources.http import Fetcher, FetchResponse

__all__ = ["RemoteFeeds", "digest_response"]

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
    resp = await fetch(spec, fetcher, url, state)
    received = len(resp.body)
    state = _moved(state, resp, required=ctx.config.permanent_redirect_polls)
    if resp.status == 304:
        hints = _response_hints(resp, now, None)
        result = _not_modified(spec, 304, received)
        state = replace(state, etag=resp.etag, last_modified=resp.last_modified)
        return result, state, hints, pending
    if not state.discovered_feed and is_page(resp):
        resp = await discover(spec, fetcher, stages.pool, resp)
        received += len(resp.body)
        state = replace(state, discovered_feed=resp.url)
        log.info("%s: discovered feed %s", spec.name, resp.url)
    state = replace(state, etag=resp.etag, last_modified=resp.last_modified)
    body_hash = _body_hash(resp)
    if stages.skip_unchanged_body and body_hash is not None and body_hash == state.body_hash:
        # The server sent the same bytes again (no validators, or ignored
        # them): what they parse to is stored already.
        result = _not_modified(spec, resp.status, received)
        return result, state, _response_hints(resp, now, None), pending
    hints = _response_hints(resp, now, None)
    digest, reparse, hints, pages = await digest_response(spec, ctx, fetcher, resp, now, hints)
    # Article pages fetched for full_content count with the feed's bytes.
    received += pages
    # A feed that declares a <ttl> is parsed every time: skipping would forget
    # its hint. One whose new entries were held back is parsed again for them.
    keep_hash = digest.ttl is None and not reparse
    state = _read(state, digest, body_hash if keep_hash else None)
    result = SourceResult(
        source=spec.name,
        outcome=Outcome.OK,
        problems=digest.problems,
        http_status=resp.status,
        received=received,
        fast_path=digest.fast_path,
    )
    write = replace(pending, records=digest.records, dropped=digest.dropped)
    return result, state, replace(hints, ttl=digest.ttl), write


def _read(state: SourceState, digest: FeedDigest, body_hash: str | None) -> SourceState:
    """The state after a read: its body's hash, its problems, the hub and topic it names."""
    # What this read found wrong stays on the source until the next read.
    problems = tuple(digest.problems)
    hub, self_url = _web_link(digest.hub), _web_link(digest.self_url)
    return replace(state, body_hash=body_hash, problems=problems, hub=hub, self_url=self_url)


def _web_link(value: str | None) -> str | None:
    """A hub or self URL the feed named, when it is an absolute http(s) URL of sane form."""
    if not value or len(value) > 2048 or not value.isprintable() or not value.isascii():
        return None
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed host ("http://[")
        return None
    return value if ok else None


def _not_modified(spec: SourceSpec, status: int, received: int) -> SourceResult:
    return SourceResult(
        source=spec.name, outcome=Outcome.NOT_MODIFIED, http_status=status, received=received
    )


def _moved(state: SourceState, resp: FetchResponse, *, required: int) -> SourceState:
    """The state after this response's permanent redirect (if any) is counted, or followed."""
    move = decide_move(
        state.moved_to,
        state.moved_seen,
        resp.permanent_redirect,
        required=required,
    )
    state = replace(state, moved_to=move.moved_to, moved_seen=move.moved_seen)
    if move.new_location:
        if state.discovered_feed:
            state = replace(state, discovered_feed=move.new_location)
        else:
            state = replace(
                state, location=move.new_location, url_history=(*state.url_history, state.location)
            )
    return state


async def digest_response(
    spec: SourceSpec,
    ctx: Context,
    fetcher: Fetcher,
    resp: FetchResponse,
    now: datetime,
    hints: Hints,
) -> tuple[FeedDigest, bool, Hints, int]:
    """The feed parsed in the CPU stage (with its entries' articles for ``full_content``).

    Returns:
        The digest; whether entries were held back for the next poll; the
        hints; the article pages' response bytes.
    """
    stages = stages_of(ctx)
    feed: dict[str, Any] = {
        "spec": spec,
        "url": resp.url,
        "headers": dict(resp.headers),
        "now": now,
        "fast": stages.fast_parser,
    }
    if spec.full_content is None:
        digest: FeedDigest = await stages.pool.run(
            spec.name,
            "aggregator.engine.work:digest_feed",
            resp.body,
            **feed,
            topics=ctx.config.topics,
            near=ctx.config.dedup,
        )
        return digest, False, hints, 0
    first: FeedDigest = await stages.pool.run(
        spec.name, "aggregator.engine.work:read_feed", resp.body, **feed
    )
    return await with_articles(spec, ctx, fetcher, first, now, hints)


def _body_hash(resp: FetchResponse) -> str | None:
    return hashlib.sha256(resp.body).hexdigest() if resp.status == 200 else None


def _response_hints(resp: FetchResponse, now: datetime, ttl: timedelta | None) -> Hints:
    expires_in = parse_expires(resp.headers, now)
    return Hints(
        cache_max_age=parse_cache_control(resp.headers),
        expires=now + expires_in if expires_in is not None else None,
        ttl=ttl,
    )
