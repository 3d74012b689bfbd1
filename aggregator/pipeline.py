"""The update and publish pipeline: wires the pieces it is given.

``update_source(spec, ctx)`` is one source's update. It never raises for a
problem of that source: a failure is a :class:`SourceResult` value, recorded
on the source's state with the time of the next attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin

from aggregator.config import Config
from aggregator.errors import (
    AggregatorError,
    HTTPStatusError,
    ParseError,
    SeedFileError,
    SourceError,
)
from aggregator.model import (
    Item,
    Origin,
    Outcome,
    ParsedDocument,
    SourceKind,
    SourceResult,
    SourceSpec,
    SourceState,
    TopicSpec,
)
from aggregator.normalise import normalise_entry
from aggregator.parse import parse_feed, parse_seed
from aggregator.publish import Document, Site, TopicFeed, WriteReport, render_site, write_tree
from aggregator.schedule import next_due, parse_cache_control, parse_expires
from aggregator.sources import files as seedfiles
from aggregator.sources.discover import (
    COMMON_FEED_PATHS,
    DiscoveredFeed,
    discover_feeds,
    looks_like_html,
)
from aggregator.sources.http import Fetcher, FetchResponse
from aggregator.sources.redirects import decide_move
from aggregator.store import FileChange, FileRecord, IngestReport, SQLStore, open_store
from aggregator.topics import Document as MatchDocument
from aggregator.topics import Query, compile_query, document

__all__ = [
    "Context",
    "build_matchers",
    "discover_url",
    "make_fetcher",
    "open_context",
    "publish_static",
    "render_all",
    "site_for",
    "topic_feeds",
    "update_all",
    "update_source",
]

log = logging.getLogger(__name__)

#: seed files applied per transaction: bounds both memory and the work a crash can lose
FILE_BATCH = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1024)
def _document(item: Item) -> MatchDocument:
    # One item is matched against every topic: tokenise it once.
    return document(item)


def build_matchers(topics: Sequence[TopicSpec]) -> dict[str, Callable[[Item], bool]]:
    """Topic name -> predicate over an item, from the topics' queries."""

    def matcher(query: Query) -> Callable[[Item], bool]:
        return lambda item: query.matches(_document(item))

    return {topic.name: matcher(compile_query(topic.query)) for topic in topics}


@dataclass
class Context:
    """What an update needs: the config, the store, and the clock."""

    config: Config
    store: SQLStore
    matchers: dict[str, Callable[[Item], bool]] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    #: shared HTTP client; made on demand for remote sources
    fetcher: Fetcher | None = None

    def close(self) -> None:
        self.store.close()


def open_context(config: Config, *, clock: Callable[[], datetime] = utcnow) -> Context:
    """Open the store, sync configured sources and topics into it.

    Raises:
        StoreError: the store cannot be opened.
    """
    store = open_store(config.store_url, near=config.dedup)
    ctx = Context(config=config, store=store, matchers=build_matchers(config.topics), clock=clock)
    now = clock()
    store.sync_sources(config.sources, now=now)
    store.sync_topics({t.name: t.query for t in config.topics}, ctx.matchers, now=now)
    return ctx


async def update_source(spec: SourceSpec, ctx: Context) -> SourceResult:
    """Update one source; never raises for a problem of that source.

    Args:
        spec: the configured source.
        ctx: store, matchers, fetcher, clock.

    Returns:
        What happened, including the topics made dirty. The source's state
        (validators, failures, next due time) is saved before returning.
    """
    started = time.perf_counter()
    now = ctx.clock()
    state = ctx.store.get_state(spec.name) or SourceState(name=spec.name, location=spec.location)
    hints = _Hints()
    try:
        if spec.kind is SourceKind.FILES:
            # File reads, parsing and SQLite writes block: keep the loop serving.
            result = await asyncio.to_thread(_update_files, spec, ctx, now)
        else:
            result, state, hints = await _update_url(spec, ctx, now, state)
    except AggregatorError as exc:
        result, state, hints = _failure(spec, state, exc)
    except Exception as exc:  # a bug must not stop the other sources
        log.exception("%s: unexpected error", spec.name)
        result = SourceResult(
            source=spec.name,
            outcome=Outcome.ERROR,
            error_class=type(exc).__name__,
            error=f"{spec.name}: unexpected {type(exc).__name__}: {exc}",
        )
    result = replace(result, duration=time.perf_counter() - started)
    ctx.store.save_state(_next_state(state, result, now, spec, hints, ctx.config))
    return result


async def update_all(
    ctx: Context,
    sources: Iterable[SourceSpec] | None = None,
    *,
    on_result: Callable[[SourceResult], None] | None = None,
) -> list[SourceResult]:
    """Update every (or the given) source once, concurrently; results in config order.

    Remote fetches are bounded by the fetcher's global and per-host limits;
    one slow source never delays the others beyond its own deadline.
    """
    specs = list(sources if sources is not None else ctx.config.sources)
    own_fetcher = ctx.fetcher is None and any(s.kind is SourceKind.URL for s in specs)
    if own_fetcher:
        ctx.fetcher = make_fetcher(ctx.config)

    async def one(spec: SourceSpec) -> SourceResult:
        result = await update_source(spec, ctx)
        if on_result is not None:
            on_result(result)
        return result

    try:
        return list(await asyncio.gather(*(one(s) for s in specs)))
    finally:
        if own_fetcher and ctx.fetcher is not None:
            await ctx.fetcher.aclose()
            ctx.fetcher = None


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
    retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
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


def _origin_for(spec: SourceSpec, doc: ParsedDocument, relpath: str) -> Origin:
    feed = doc.feed
    if feed.feed_id or feed.link:
        # A feed file: its entries keep naming the feed they came from.
        return Origin(
            source=spec.name,
            title=feed.title or spec.title or spec.name,
            link=feed.link,
            feed_id=feed.feed_id,
        )
    return Origin(source=spec.name, title=spec.title or spec.name)


def _update_files(spec: SourceSpec, ctx: Context, now: datetime) -> SourceResult:
    root = Path(spec.location)
    if not root.is_dir():
        raise SeedFileError(spec.name, str(root), "seed folder not found")
    stats, scan_errors = seedfiles.scan(root, source=spec.name)
    problems = [str(e) for e in scan_errors]
    records = ctx.store.file_records(spec.name)
    report = IngestReport()
    batch: list[FileChange] = []
    touched = 0

    def flush() -> None:
        nonlocal report, batch
        if batch:
            report += ctx.store.apply_files(
                spec.name, batch, now=ctx.clock(), matchers=ctx.matchers
            )
            batch = []

    # Identities the files present now yield: a deleted (or renamed) file's
    # entries are removed only when no present file still yields them, as a
    # NNN_<hash> file renamed to another prefix does.
    claimed: set[str] = set()
    for stat in stats:
        old = records.get(stat.relpath)
        if old is not None and old.size == stat.size and old.mtime_ns == stat.mtime_ns:
            claimed.update(old.identities)
            continue  # unchanged by size and mtime: not even opened
        change = _read_seed_file(spec, root, stat, old, now, problems)
        if change.record is not None:
            claimed.update(change.record.identities)
        batch.append(change)
        if not _only_touched(change, old):
            touched += 1
        if len(batch) >= FILE_BATCH:
            flush()
    present = {s.relpath for s in stats}
    # Deletions go in the last batch, after every addition: a renamed file has
    # joined its story by content before the old name's entry is removed.
    flush()
    batch = [
        FileChange(
            relpath=relpath,
            record=None,
            removed=tuple(i for i in rec.identities if i not in claimed),
        )
        for relpath, rec in sorted(records.items())
        if relpath not in present
    ]
    flush()
    return SourceResult(
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


def _only_touched(change: FileChange, old: FileRecord | None) -> bool:
    """The file's mtime moved but its bytes did not: it counts as unchanged."""
    rec = change.record
    return (
        old is not None
        and rec is not None
        and not (change.items or change.removed)
        and rec.error is None
        and rec.content_hash == old.content_hash
    )


def _read_seed_file(
    spec: SourceSpec,
    root: Path,
    stat: seedfiles.FileStat,
    old: FileRecord | None,
    now: datetime,
    problems: list[str],
) -> FileChange:
    """Read, parse and normalise one new or changed seed file.

    Every problem of the file (read or parse error, decoding notes, skipped
    entries) is reported as one line naming it.
    """
    kept = old.identities if old else ()
    try:
        data = seedfiles.read_seed(root, stat.relpath, source=spec.name, max_bytes=spec.max_bytes)
    except SeedFileError as exc:
        problems.append(str(exc))
        # Keep what the file gave before; retry when size or mtime change.
        return FileChange(
            stat.relpath,
            FileRecord(
                stat.relpath,
                stat.size,
                stat.mtime_ns,
                old.content_hash if old else None,
                kept,
                str(exc),
            ),
        )
    digest = hashlib.sha256(data).hexdigest()
    if old is not None and old.content_hash == digest and old.error is None:
        # Touched but not changed: remember the new mtime, ingest nothing.
        return FileChange(stat.relpath, replace(old, size=stat.size, mtime_ns=stat.mtime_ns))
    mtime = datetime.fromtimestamp(stat.mtime_ns / 1e9, UTC)
    try:
        doc = parse_seed(stat.relpath, data, source=spec.name, mtime=mtime, now=now)
    except SeedFileError as exc:
        problems.append(str(exc))
        return FileChange(
            stat.relpath, FileRecord(stat.relpath, stat.size, stat.mtime_ns, digest, kept, str(exc))
        )
    except Exception as exc:  # a parser bug on one file must not stop the folder
        log.exception("%s: %s: unexpected error while parsing", spec.name, stat.relpath)
        kind = type(exc)
        name = (
            kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        )
        reason = f"{spec.name}: {stat.relpath}: unexpected {name} while parsing: {exc}"
        problems.append(reason)
        return FileChange(
            stat.relpath, FileRecord(stat.relpath, stat.size, stat.mtime_ns, digest, kept, reason)
        )
    # Parsers name the file in their warnings already: name it once.
    prefix = f"{stat.relpath}: "
    notes = [w.removeprefix(prefix) for w in doc.warnings]
    origin = _origin_for(spec, doc, stat.relpath)
    items: list[Item] = []
    for raw in doc.entries:
        try:
            items.append(
                normalise_entry(raw, source=spec.name, origin=origin, extra_tags=spec.tags, now=now)
            )
        except ValueError as exc:
            notes.append(f"entry skipped: {exc}")
    if notes:
        problems.append(f"{spec.name}: {stat.relpath}: {'; '.join(notes)}")
    identities = tuple(dict.fromkeys(i.identity for i in items))
    removed = tuple(i for i in kept if i not in identities)
    return FileChange(
        stat.relpath,
        FileRecord(stat.relpath, stat.size, stat.mtime_ns, digest, identities, None),
        items=tuple(items),
        removed=removed,
    )


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
        timeout=spec.timeout.total_seconds(),
        max_bytes=spec.max_bytes,
    )


async def _discover(
    spec: SourceSpec, fetcher: Fetcher, page: FetchResponse
) -> tuple[FetchResponse, ParsedDocument]:
    """An HTML page was fetched: find its feed (links first, then common paths)."""
    found = [f.url for f in discover_feeds(page.body, base_url=page.url)]
    candidates = found or [urljoin(page.url, path) for path in COMMON_FEED_PATHS]
    tried: list[str] = []
    for url in candidates:
        try:
            resp = await _fetch(spec, fetcher, url, None)
            if looks_like_html(resp.body, resp.headers.get("content-type")):
                raise ParseError(spec.name, f"{url}: is an HTML page, not a feed")
            doc = await asyncio.to_thread(
                parse_feed, resp.body, url=resp.url, headers=resp.headers, source=spec.name
            )
        except SourceError as exc:
            tried.append(str(exc))
            continue
        return resp, doc
    detail = f"; tried {len(tried)}: {tried[0]}" if tried else ""
    raise ParseError(spec.name, f"{page.url}: an HTML page with no usable feed{detail}")


async def _update_url(
    spec: SourceSpec, ctx: Context, now: datetime, state: SourceState
) -> tuple[SourceResult, SourceState, _Hints]:
    if ctx.fetcher is None:
        # Called on its own, not from update_all or the daemon: a fetcher for
        # this update only, closed with it.
        async with make_fetcher(ctx.config) as fetcher:
            return await _poll(spec, ctx, fetcher, now, state)
    return await _poll(spec, ctx, ctx.fetcher, now, state)


async def _poll(
    spec: SourceSpec, ctx: Context, fetcher: Fetcher, now: datetime, state: SourceState
) -> tuple[SourceResult, SourceState, _Hints]:
    url = state.discovered_feed or state.location
    resp = await _fetch(spec, fetcher, url, state)
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
        result = SourceResult(source=spec.name, outcome=Outcome.NOT_MODIFIED, http_status=304)
        return result, replace(state, etag=resp.etag, last_modified=resp.last_modified), hints
    if not state.discovered_feed and looks_like_html(resp.body, resp.headers.get("content-type")):
        resp, doc = await _discover(spec, fetcher, resp)
        state = replace(state, discovered_feed=resp.url)
        log.info("%s: discovered feed %s", spec.name, resp.url)
    else:
        doc = await asyncio.to_thread(
            parse_feed, resp.body, url=resp.url, headers=resp.headers, source=spec.name
        )
    state = replace(state, etag=resp.etag, last_modified=resp.last_modified)
    origin = Origin(
        source=spec.name,
        title=spec.title or doc.feed.title or spec.name,
        link=doc.feed.link or resp.url,
        feed_id=doc.feed.feed_id or resp.url,
    )
    problems = [f"{spec.name}: {w}" for w in doc.warnings]
    items: list[Item] = []
    for raw in doc.entries:
        try:
            items.append(
                normalise_entry(raw, source=spec.name, origin=origin, extra_tags=spec.tags, now=now)
            )
        except ValueError as exc:
            problems.append(f"{spec.name}: entry skipped: {exc}")
    report = await asyncio.to_thread(ctx.store.ingest, items, now=now, matchers=ctx.matchers)
    result = SourceResult(
        source=spec.name,
        outcome=Outcome.OK,
        new=report.new + report.merged,
        merged=report.merged,
        updated=report.updated,
        unchanged=report.unchanged,
        problems=tuple(problems),
        http_status=resp.status,
        dirty_topics=report.dirty_topics,
    )
    return result, state, _response_hints(resp, now, doc.feed.ttl)


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
    wanted = set(names) if names is not None else None
    return [
        TopicFeed(topic=t, stories=tuple(ctx.store.topic_stories(t.name)))
        for t in ctx.config.topics
        if wanted is None or t.name in wanted
    ]


def render_all(ctx: Context) -> dict[str, Document]:
    """Every published document: index, OPML, and each topic's formats and archives."""
    return render_site(site_for(ctx.config), topic_feeds(ctx))


def publish_static(ctx: Context, out_dir: Path | None = None) -> WriteReport:
    """Render everything and write it atomically under ``out_dir`` (default ``data_dir/public``).

    Unchanged files are left untouched, so their bytes and mtimes stay the same.
    """
    return write_tree(out_dir or ctx.config.data_dir / "public", render_all(ctx))
