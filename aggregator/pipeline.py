"""The update and publish pipeline: wires the pieces it is given.

``update_source(spec, ctx)`` is one source's update. It never raises for a
problem of that source: a failure is a :class:`SourceResult` value, recorded
on the source's state with the time of the next attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator._lanes import Lanes
from aggregator.config import Config
from aggregator.engine import CpuPool, Writer
from aggregator.engine.match import build_matchers, precomputed
from aggregator.errors import (
    AggregatorError,
    BackoffError,
    DeadlineError,
    HTTPStatusError,
    ParseError,
    SeedFileError,
    SourceError,
    redact_urls,
)
from aggregator.model import (
    FileChange,
    FileRecord,
    Item,
    Outcome,
    Poll,
    SourceKind,
    SourceResult,
    SourceSpec,
    SourceState,
    TopicSpec,
)
from aggregator.neardup import Sketch
from aggregator.retention import RetentionReport, prune
from aggregator.schedule import next_due, parse_cache_control, parse_expires
from aggregator.sources import files as seedfiles
from aggregator.sources.http import Fetcher, FetchResponse
from aggregator.sources.redirects import decide_move
from aggregator.sources.sniff import looks_like_html
from aggregator.status import Status
from aggregator.status import build as build_status
from aggregator.store import IngestReport, SourceWrite, Store, open_store
from aggregator.topics import compile_topics

if TYPE_CHECKING:
    # The CPU stage, feed discovery (bs4) and publishing load on first use: a
    # pass whose feeds all answer 304 imports none of them (nor numpy, lxml or
    # nh3 under them). The worker processes import the CPU stage themselves.
    from aggregator.engine.digests import FeedDigest, SeedDigest
    from aggregator.publish import Document, Site, TopicFeed, WriteReport
    from aggregator.publish.export import PublishReport
    from aggregator.sources.discover import DiscoveredFeed

__all__ = [
    "Context",
    "Stages",
    "build_matchers",
    "discover_url",
    "make_fetcher",
    "open_context",
    "preload",
    "prune_old",
    "publish_export",
    "publish_static",
    "read_status",
    "render_all",
    "site_for",
    "topic_feeds",
    "topic_signatures",
    "update_all",
    "update_source",
]

log = logging.getLogger(__name__)

#: sources of one host updating at once, per fetch slot of that host: while
#: one parses and is stored, the next is fetched
HOST_LANE = 2

#: seed files applied per transaction: bounds both memory and the work a crash can lose
FILE_BATCH = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


def topic_signatures(topics: Sequence[TopicSpec]) -> dict[str, str]:
    """Topic name -> what ``SQLStore.sync_topics`` compares to decide a re-match.

    A plain query is its own signature; a topic that reuses others or has a
    scope (sources, max_age, lang) signs all of it, so changing any re-matches.
    """
    return {name: topic.signature for name, topic in compile_topics(topics).items()}


@dataclass(frozen=True, slots=True)
class _Write:
    """One source's work for the writer: items, seed-file changes and/or its new state."""

    source: str
    now: datetime
    matchers: dict[str, Callable[[Item], bool]]
    items: tuple[Item, ...] = ()
    files: tuple[FileChange, ...] = ()
    state: SourceState | None = None
    #: topics the CPU stage matched, by ``id`` of this write's items
    matched: Mapping[int, frozenset[str]] = field(default_factory=dict)
    #: the CPU stage's dedup keys and near-duplicate sketches of ``items``, in order
    keys: tuple[tuple[str | None, str | None], ...] = ()
    sketches: tuple[Sketch | None, ...] = ()
    #: the poll recorded in the history with ``state``
    poll: Poll | None = None


def _weigh(write: _Write) -> int:
    return 1 + len(write.items) + sum(1 + len(c.items) for c in write.files)


def _applier(store: Store) -> Callable[[Sequence[_Write]], list[IngestReport]]:
    def apply(writes: Sequence[_Write]) -> list[IngestReport]:
        # One store transaction per run of writes matched by the same topics
        # (a reload changes them between two runs).
        reports: list[IngestReport] = []
        for _, run in itertools.groupby(writes, key=lambda w: id(w.matchers)):
            group = list(run)
            reports += store.apply(
                [
                    SourceWrite(
                        w.source,
                        items=w.items,
                        files=w.files,
                        state=w.state,
                        now=w.now,
                        keys=w.keys,
                        sketches=w.sketches,
                        poll=w.poll,
                    )
                    for w in group
                ],
                now=max(w.now for w in group),
                matchers=precomputed(
                    group[0].matchers, {k: v for w in group for k, v in w.matched.items()}
                ),
            )
        return reports

    return apply


@dataclass(frozen=True)
class Stages:
    """The ingest engine's stages behind the fetch: parse/normalise workers and one writer.

    Shared by every :class:`Context` derived from one :func:`open_context`
    (a reload replaces the config, not the stages).
    """

    pool: CpuPool
    writer: Writer[_Write, IngestReport]
    #: skip parsing a 200 body identical to the last one parsed
    skip_unchanged_body: bool = True
    #: let the strict fast parser take the documents it can
    fast_parser: bool = True

    @classmethod
    def for_store(cls, store: Store, config: Config, *, worker_niceness: int = 0) -> Stages:
        return cls(
            pool=CpuPool(
                config.ingest.workers,
                niceness=worker_niceness,
                idle_after=(
                    config.ingest.idle_after.total_seconds()
                    if config.ingest.idle_after is not None
                    else None
                ),
            ),
            writer=Writer(_applier(store), weigh=_weigh),
            skip_unchanged_body=config.ingest.skip_unchanged_body,
            fast_parser=config.ingest.fast_parser,
        )

    def close(self) -> None:
        self.writer.close()
        self.pool.close()


@dataclass(frozen=True)
class Context:
    """What an update needs: the config, the store, the engine's stages and the clock.

    Immutable: a reload derives a new one with :func:`dataclasses.replace`.
    """

    config: Config
    store: Store
    matchers: dict[str, Callable[[Item], bool]] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    #: shared HTTP client; made on demand for remote sources
    fetcher: Fetcher | None = None
    #: made by open_context; a bare Context gets its own on first use
    stages: Stages | None = None

    def close(self) -> None:
        """Finish queued writes, stop the workers and close the store."""
        if self.stages is not None:
            self.stages.close()
        self.store.close()


def preload() -> None:
    """Import now what the pipeline imports on first use in this process.

    A one-shot command pays for them only when a source needs them; a process
    that answers HTTP calls this before it serves, so its first polls never
    import on its event loop. The parsers, discovery (bs4) and the
    renderers are not among them: they run in the CPU stage's workers and
    are called by name, so this process never imports them.
    """
    import aggregator.engine.pages  # noqa: F401


def _stages(ctx: Context) -> Stages:
    if ctx.stages is None:
        raise RuntimeError("this Context has no ingest stages: make it with open_context")
    return ctx.stages


def open_context(
    config: Config, *, clock: Callable[[], datetime] = utcnow, worker_niceness: int = 0
) -> Context:
    """Open the store, sync configured sources and topics into it, and set up the stages.

    The stages start lazily: worker processes on the first document to parse,
    the writer thread on the first write. ``worker_niceness``: see :class:`CpuPool`.

    Raises:
        StoreError: the store cannot be opened.
    """
    store = open_store(config.store_url, near=config.dedup)
    matchers = build_matchers(config.topics, clock=clock)
    stages = Stages.for_store(store, config, worker_niceness=worker_niceness)
    ctx = Context(config=config, store=store, matchers=matchers, clock=clock, stages=stages)
    now = clock()
    store.sync_sources(config.sources, now=now)
    # A changed topic re-matches every stored story: in the worker processes.
    store.sync_topics(topic_signatures(config.topics), matchers.in_pool(stages.pool), now=now)
    return ctx


async def update_source(spec: SourceSpec, ctx: Context) -> SourceResult:
    """Update one source; never raises for a problem of that source.

    Fetching runs on the event loop; reading seed files, parsing and
    normalising run in the stages' worker pool; the entries and the source's
    new state are committed together by the one writer.

    Args:
        spec: the configured source.
        ctx: store, matchers, fetcher, stages, clock.

    Returns:
        What happened, including the topics made dirty. The source's state
        (validators, failures, next due time) is saved before returning.
    """
    started = time.perf_counter()
    now = ctx.clock()
    stages = _stages(ctx)
    state = await asyncio.to_thread(ctx.store.get_state, spec.name)
    state = state or SourceState(name=spec.name, location=spec.location)
    hints = _Hints()
    pending = _Write(source=spec.name, now=now, matchers=ctx.matchers)
    try:
        if spec.kind is SourceKind.FILES:
            result, pending = await _update_files(spec, ctx, now, pending)
        else:
            result, state, hints, pending = await _update_url(spec, ctx, now, state, pending)
    except AggregatorError as exc:
        result, state, hints = _failure(spec, state, exc)
        pending = _Write(source=spec.name, now=now, matchers=ctx.matchers)
    except Exception as exc:  # a bug must not stop the other sources
        log.exception("%s: unexpected error", spec.name)
        result = _unexpected(spec, exc, "unexpected")
        pending = _Write(source=spec.name, now=now, matchers=ctx.matchers)
    new_state = _next_state(state, result, now, spec, hints, ctx.config)
    poll = Poll(
        source=spec.name,
        at=now,
        outcome=result.outcome,
        status=result.http_status,
        seconds=time.perf_counter() - started,
        received=result.received,
        new=result.new,
        updated=result.updated,
        error_class=result.error_class,
    )
    try:
        report = await stages.writer.submit(replace(pending, state=new_state, poll=poll))
    except Exception as exc:  # the store refused this source's write: the others go on
        log.exception("%s: storing the update failed", spec.name)
        result = _unexpected(spec, exc, "storing the update failed:")
    else:
        result = _counted(result, report)
    return replace(result, duration=time.perf_counter() - started)


def _unexpected(spec: SourceSpec, exc: Exception, what: str) -> SourceResult:
    kind = type(exc).__name__
    return SourceResult(
        source=spec.name,
        outcome=Outcome.ERROR,
        error_class=kind,
        error=redact_urls(f"{spec.name}: {what} {kind}: {exc}"),
    )


def _counted(result: SourceResult, report: IngestReport) -> SourceResult:
    """Add what the final write changed to the counts of the update."""
    if not (report.new or report.merged or report.updated or report.unchanged or report.removed):
        return result
    return replace(
        result,
        new=result.new + report.new + report.merged,
        merged=result.merged + report.merged,
        updated=result.updated + report.updated,
        unchanged=result.unchanged + report.unchanged,
        removed=result.removed + report.removed,
        dirty_topics=result.dirty_topics | report.dirty_topics,
    )


async def update_all(
    ctx: Context,
    sources: Iterable[SourceSpec] | None = None,
    *,
    on_result: Callable[[SourceResult], None] | None = None,
) -> list[SourceResult]:
    """Update every (or the given) source once, concurrently; results in config order.

    Remote fetches are bounded by the fetcher's global and per-host limits;
    one slow source never delays the others beyond its own deadline. At most
    a few sources more than the fetcher's connections are between fetch and
    commit at once, so memory stays flat however many sources there are.
    """
    specs = list(sources if sources is not None else ctx.config.sources)
    async with _with_fetcher(ctx, specs) as ctx:
        stages = _stages(ctx)
        # A source waiting for its busy host (a slow feed holds the host's
        # fetch slots) waits in its host's lane, not in a shared slot that
        # another host's source could use.
        lanes = Lanes(
            per_key=HOST_LANE * ctx.config.max_per_host,
            total=ctx.config.max_connections + stages.pool.capacity + stages.writer.capacity,
        )

        async def one(spec: SourceSpec) -> SourceResult:
            async with lanes.slot(_lane_key(spec)):
                result = await update_source(spec, ctx)
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(s) for s in specs)))


def _lane_key(spec: SourceSpec) -> str | None:
    """The host a source's updates queue behind; None for a seed folder."""
    if spec.kind is not SourceKind.URL:
        return None
    return urlsplit(spec.location).hostname


@asynccontextmanager
async def _with_fetcher(ctx: Context, specs: Sequence[SourceSpec]) -> AsyncIterator[Context]:
    """The context with a fetcher for these sources, closed afterwards if made here."""
    if ctx.fetcher is not None or not any(s.kind is SourceKind.URL for s in specs):
        yield ctx
        return
    async with make_fetcher(ctx.config) as fetcher:
        yield replace(ctx, fetcher=fetcher)


@dataclass(frozen=True, slots=True)
class _Hints:
    """What a response says about when to poll again."""

    retry_after: datetime | None = None
    cache_max_age: timedelta | None = None
    expires: datetime | None = None
    ttl: timedelta | None = None


def _failure(
    spec: SourceSpec, state: SourceState, exc: AggregatorError
) -> tuple[SourceResult, SourceState, _Hints]:
    status = exc.status if isinstance(exc, HTTPStatusError) else None
    gone = status == 410
    if status in (404, 410) and state.discovered_feed:
        # The discovered feed went away: rediscover from the page next time.
        state = replace(state, discovered_feed=None, etag=None, last_modified=None)
    result = SourceResult(
        source=spec.name,
        outcome=Outcome.GONE if gone else Outcome.ERROR,
        error_class=type(exc).__name__,
        error=str(exc),
        http_status=status,
    )
    retry_after = exc.retry_after if isinstance(exc, HTTPStatusError | BackoffError) else None
    return result, state, _Hints(retry_after=retry_after)


def _next_state(
    state: SourceState,
    result: SourceResult,
    now: datetime,
    spec: SourceSpec,
    hints: _Hints,
    config: Config,
) -> SourceState:
    failed = result.outcome in (Outcome.ERROR, Outcome.GONE)
    failures = state.consecutive_failures + 1 if failed else 0
    due = next_due(
        now=now,
        interval=spec.interval,
        outcome=result.outcome,
        consecutive_failures=failures,
        retry_after=hints.retry_after,
        cache_max_age=hints.cache_max_age,
        expires=hints.expires,
        ttl=hints.ttl,
        min_interval=min(config.min_interval, spec.interval),
        max_interval=config.max_interval,
        seed=spec.name,
    )
    return replace(
        state,
        last_outcome=result.outcome,
        last_attempt_at=now,
        last_success_at=state.last_success_at if failed else now,
        consecutive_failures=failures,
        last_error_class=result.error_class if failed else None,
        last_error=result.error if failed else None,
        last_status=result.http_status,
        next_due_at=due,
        retry_after=hints.retry_after,
        gone=result.outcome is Outcome.GONE,
    )


# -- local seed folders ---------------------------------------------------------


async def _update_files(
    spec: SourceSpec, ctx: Context, now: datetime, final: _Write
) -> tuple[SourceResult, _Write]:
    """Stat the folder, digest new and changed files in the pool, commit them in batches.

    Returns the result so far and the final write (deletions, and the state
    that the caller adds), which the caller commits after every addition.
    """
    stages = _stages(ctx)
    root = Path(spec.location)
    if not await asyncio.to_thread(root.is_dir):
        raise SeedFileError(spec.name, str(root), "seed folder not found")
    (stats, scan_errors), records = await asyncio.gather(
        asyncio.to_thread(seedfiles.scan, root, source=spec.name),
        asyncio.to_thread(ctx.store.file_records, spec.name),
    )
    problems = [str(e) for e in scan_errors]
    # Identities the files present now yield: a deleted (or renamed) file's
    # entries are removed only when no present file still yields them, as a
    # NNN_<hash> file renamed to another prefix does.
    claimed: set[str] = set()
    changed: list[tuple[seedfiles.FileStat, FileRecord | None]] = []
    for stat in stats:
        old = records.get(stat.relpath)
        if old is not None and old.size == stat.size and old.mtime_ns == stat.mtime_ns:
            claimed.update(old.identities)
            continue  # unchanged by size and mtime: not even opened
        changed.append((stat, old))
    chunks = [changed[i : i + FILE_BATCH] for i in range(0, len(changed), FILE_BATCH)]

    async def digest_and_commit(
        chunk: Sequence[tuple[seedfiles.FileStat, FileRecord | None]],
    ) -> tuple[SeedDigest, IngestReport]:
        digest: SeedDigest = await stages.pool.run(
            spec.name,
            "aggregator.engine.work:digest_seed_files",
            spec,
            chunk,
            now=now,
            topics=ctx.config.topics,
            near=ctx.config.dedup,
        )
        items = [item for change in digest.changes for item in change.items]
        write = _Write(
            source=spec.name,
            now=ctx.clock(),
            matchers=ctx.matchers,
            files=digest.changes,
            matched={id(i): names for i, names in zip(items, digest.matched, strict=True)},
            keys=digest.keys,
            sketches=digest.sketches,
        )
        return digest, await stages.writer.submit(write)

    # Chunks are digested in parallel and committed as each is ready, one
    # transaction per chunk at most: a crash loses at most the chunks in flight,
    # which the next pass reads again because their records were not written.
    done = await asyncio.gather(*(digest_and_commit(c) for c in chunks))
    report = IngestReport()
    touched = 0
    for digest, chunk_report in done:
        report += chunk_report
        touched += digest.touched
        problems.extend(digest.problems)
        for change in digest.changes:
            if change.record is not None:
                claimed.update(change.record.identities)
    present = {s.relpath for s in stats}
    # Deletions go in the last write, after every addition: a renamed file has
    # joined its story by content before the old name's entry is removed.
    deletions = tuple(
        FileChange(
            relpath=relpath,
            record=None,
            removed=tuple(i for i in rec.identities if i not in claimed),
        )
        for relpath, rec in sorted(records.items())
        if relpath not in present
    )
    result = SourceResult(
        source=spec.name,
        outcome=Outcome.OK,
        new=report.new + report.merged,
        merged=report.merged,
        updated=report.updated,
        unchanged=len(stats) - touched + report.unchanged,
        removed=report.removed,
        problems=tuple(problems),
        dirty_topics=report.dirty_topics,
    )
    return result, replace(final, now=ctx.clock(), files=deletions)


def make_fetcher(config: Config) -> Fetcher:
    """The HTTP fetcher configured from the config's fetch settings."""
    kwargs: dict[str, object] = {}
    if config.user_agent:
        kwargs["user_agent"] = config.user_agent
    return Fetcher(
        allow_networks=config.allow_networks,
        max_connections=config.max_connections,
        max_per_host=config.max_per_host,
        **kwargs,  # type: ignore[arg-type]
    )


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
    spec: SourceSpec, ctx: Context, now: datetime, state: SourceState, pending: _Write
) -> tuple[SourceResult, SourceState, _Hints, _Write]:
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
    pending: _Write,
) -> tuple[SourceResult, SourceState, _Hints, _Write]:
    stages = _stages(ctx)
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
        fast_path=digest.fast_path,
    )
    matched = {
        id(item): names
        for item, names in zip(digest.items, digest.matched, strict=True)
        if names is not None
    }
    write = replace(
        pending, items=digest.items, matched=matched, keys=digest.keys, sketches=digest.sketches
    )
    return result, state, replace(hints, ttl=digest.ttl), write


async def _with_articles(
    spec: SourceSpec,
    ctx: Context,
    fetcher: Fetcher,
    first: FeedDigest,
    now: datetime,
    hints: _Hints,
) -> tuple[FeedDigest, bool, _Hints]:
    """The feed's digest with the full articles of its new entries (``full_content``).

    Returns:
        The digest; whether entries were held back for the next poll (their
        host is backing off, or over ``max_pages``); the hints, with the host's
        wait when it asked for one.
    """
    from aggregator.engine.pages import digest_full

    stages = _stages(ctx)
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


def _response_hints(resp: FetchResponse, now: datetime, ttl: timedelta | None) -> _Hints:
    expires_in = parse_expires(resp.headers, now)
    return _Hints(
        cache_max_age=parse_cache_control(resp.headers),
        expires=now + expires_in if expires_in is not None else None,
        ttl=ttl,
    )


# -- publishing ---------------------------------------------------------------


def site_for(config: Config) -> Site:
    """The publishing side's view of the config."""
    from aggregator.publish import Site

    s = config.site
    return Site(
        base_url=config.server.base_url,
        title=s.title,
        description=s.description,
        author_name=s.author_name,
        author_email=s.author_email,
        hub=s.hub,
        language=s.language,
    )


def topic_feeds(ctx: Context, names: Iterable[str] | None = None) -> list[TopicFeed]:
    """Every (or the named) configured topic with all its stories."""
    from aggregator.publish import TopicFeed

    wanted = set(names) if names is not None else None
    return [
        TopicFeed(topic=t, stories=tuple(ctx.store.topic_stories(t.name)))
        for t in ctx.config.topics
        if wanted is None or t.name in wanted
    ]


def render_all(ctx: Context) -> dict[str, Document]:
    """Every published document: index, OPML, and each topic's formats and archives."""
    from aggregator.publish import render_site

    return render_site(site_for(ctx.config), topic_feeds(ctx))


def publish_static(ctx: Context, out_dir: Path | None = None) -> WriteReport:
    """Bring the export under ``out_dir`` (default ``data_dir/public``) up to date.

    Every topic is checked, but only documents whose stories changed are
    rendered (:mod:`aggregator.publish.incremental`), and only changed bytes
    are written: unchanged files keep their bytes and mtimes.

    Raises:
        PublishError: the export cannot be written.
    """
    return publish_export(ctx, out_dir).files


def publish_export(ctx: Context, out_dir: Path | None = None) -> PublishReport:
    """:func:`publish_static`, returning the whole report (what the server then serves)."""
    from aggregator.publish.incremental import publish

    target = out_dir or ctx.config.data_dir / "public"
    return publish(target, site_for(ctx.config), ctx.config.topics, ctx.store)


def read_status(
    config: Config,
    store: Store,
    *,
    now: datetime,
    publishes: Iterable[tuple[datetime, float]] = (),
) -> Status:
    """The operator's snapshot of the configured sources and topics, read from the store.

    Blocking (it reads the store): run it in a thread from async code. It
    only reads, so it runs beside a daemon writing the same store.
    """
    return build_status(
        config.sources,
        config.topics,
        states={s.name: s for s in store.states()},
        history=store.poll_history([s.name for s in config.sources]),
        topic_counts=store.topic_counts(),
        now=now,
        publishes=publishes,
    )


def prune_old(ctx: Context, *, now: datetime) -> RetentionReport:
    """One retention pass with a context's store, topics and ``retention.max_age``, logged."""
    report = prune(
        ctx.store,
        ctx.config.topics,
        ctx.matchers,
        now=now,
        max_age=ctx.config.retention_max_age,
    )
    if report.pruned:
        log.info(
            "retention: pruned %d entries older than %s", report.pruned, report.before.isoformat()
        )
    return report
