"""One source's update, whatever its kind: its updater, its schedule, the one writer.

``update_source(spec, ctx)`` never raises for a problem of that source: a
failure is a :class:`SourceResult` value, recorded on the source's state with
the time of the next attempt.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

from aggregator.errors import AggregatorError, BackoffError, HTTPStatusError, redact_urls
from aggregator.model import Outcome, Poll, SourceResult, SourceSpec, SourceState
from aggregator.sources.lanes import Lanes
from aggregator.sources.lanes import waits as lane_waits
from aggregator.sources.schedule import next_due
from aggregator.status.deadfeeds import failing_since, laid_to_rest
from aggregator.store import IngestReport
from aggregator.update.cadence import Cadence, cadence_of, fixed_cadence, reads_store
from aggregator.update.context import Context, Stages, make_fetcher, stages_of
from aggregator.update.kinds import Hints, SourceUpdater, any_remote, updater_for
from aggregator.update.write import Write

__all__ = ["HOST_LANE", "longest_first", "update_all", "update_source"]

log = logging.getLogger(__name__)

#: sources of one host updating at once, per fetch slot of that host: while
#: one parses and is stored, the next is fetched
HOST_LANE = 2


async def update_source(
    spec: SourceSpec,
    ctx: Context,
    *,
    updater: SourceUpdater | None = None,
    queued: Callable[[], object] | None = None,
) -> SourceResult:
    """Update one source; never raises for a problem of that source.

    Fetching runs on the event loop; reading seed files, parsing and
    normalising run in the stages' worker pool; the entries and the source's
    new state are committed together by the one writer.

    Args:
        spec: the configured source.
        ctx: store, matchers, fetcher, stages, clock.
        updater: instead of the source kind's (a pushed body: ``update.pushed``).
        queued: called once the source's write is queued for the writer (the
            caller gives its host's lane back: the writer commits a batch of
            many sources' writes while the next ones fetch).

    Returns:
        What happened, including the topics made dirty. The source's state
        (validators, failures, next due time) is saved before returning.
    """
    started = time.perf_counter()
    waited: list[float] = []
    counting = lane_waits.set(waited)
    try:
        return await _update_source(spec, ctx, updater, started, waited, queued)
    finally:
        lane_waits.reset(counting)


async def _update_source(
    spec: SourceSpec,
    ctx: Context,
    updater: SourceUpdater | None,
    started: float,
    waited: list[float],
    queued: Callable[[], object] | None,
) -> SourceResult:
    now = ctx.clock()
    stages = stages_of(ctx)
    state = await asyncio.to_thread(ctx.store.get_state, spec.name)
    state = state or SourceState(name=spec.name, location=spec.location)
    hints = Hints()
    pending = Write(source=spec.name, now=now, matchers=ctx.matchers)
    try:
        updater = updater or updater_for(spec)
        attempt = await updater.update(spec, ctx, now=now, state=state, write=pending)
        result, state, hints, pending = attempt.result, attempt.state, attempt.hints, attempt.write
    except AggregatorError as exc:
        result, state, hints = _failure(spec, state, exc)
        pending = Write(source=spec.name, now=now, matchers=ctx.matchers)
    except Exception as exc:  # a bug must not stop the other sources
        log.exception("%s: unexpected error", spec.name)
        result = _unexpected(spec, exc, "unexpected")
        pending = Write(source=spec.name, now=now, matchers=ctx.matchers)
    result, new_state = await _scheduled(spec, ctx, state, result, now, hints, pending)
    poll = Poll(
        source=spec.name,
        at=now,
        outcome=result.outcome,
        status=result.http_status,
        # Its own time: not the time it waited for a slot of its host.
        seconds=time.perf_counter() - started - sum(waited),
        received=result.received,
        new=result.new,
        updated=result.updated,
        error_class=result.error_class,
    )
    result = await _saved(
        spec, stages, replace(pending, state=new_state, poll=poll), result, state, queued
    )
    # Its own time, as the poll's: the waits for a slot or a worker are not the source's.
    return replace(result, duration=time.perf_counter() - started - sum(waited))


async def _saved(
    spec: SourceSpec,
    stages: Stages,
    write: Write,
    result: SourceResult,
    before: SourceState,
    queued: Callable[[], object] | None,
) -> SourceResult:
    """The update's result once the writer committed ``write`` (its new state and poll)."""
    try:
        report = await stages.writer.submit(write, queued=queued)
    except Exception as exc:  # the store refused this source's write: the others go on
        log.exception("%s: storing the update failed", spec.name)
        return _unexpected(spec, exc, "storing the update failed:")
    result = _counted(result, report)
    state = write.state
    if state is not None and state.disabled_at is not None and before.disabled_at is None:
        result = replace(result, put_to_rest=state.disabled_reason or "put to rest")
    return result


async def _scheduled(
    spec: SourceSpec,
    ctx: Context,
    state: SourceState,
    result: SourceResult,
    now: datetime,
    hints: Hints,
    pending: Write,
) -> tuple[SourceResult, SourceState]:
    """The update's result and the source's new state, with its next poll scheduled."""
    try:
        cadence = await _cadence(spec, ctx, now, pending)
        return result, _next_state(spec, state, result, now, hints, cadence)
    except Exception as exc:  # nor a bug in scheduling its next poll
        log.exception("%s: scheduling the next poll failed", spec.name)
        failed = _unexpected(spec, exc, "scheduling the next poll failed:")
        return failed, _unscheduled(spec, state, failed, now)


def _unscheduled(
    spec: SourceSpec, state: SourceState, result: SourceResult, now: datetime
) -> SourceState:
    """The state of a source whose next poll could not be scheduled: a failure, due again
    after its configured interval."""
    return replace(
        state,
        last_outcome=result.outcome,
        last_attempt_at=now,
        consecutive_failures=state.consecutive_failures + 1,
        last_error_class=result.error_class,
        last_error=result.error,
        next_due_at=now + spec.interval,
        failing_since=state.failing_since or now,
    )


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

    Sources start longest first (:func:`longest_first`, by their last poll).
    Remote fetches are bounded by the fetcher's global and per-host limits;
    one slow source never delays the others beyond its own deadline. At most
    a few sources more than the fetcher's connections are between fetch and
    commit at once, so memory stays flat however many sources there are.
    """
    specs = list(sources if sources is not None else ctx.config.sources)
    if any_remote(specs):
        seconds = await asyncio.to_thread(ctx.store.last_poll_seconds)
        order = longest_first(specs, seconds)
    else:
        order = list(range(len(specs)))
    async with _with_fetcher(ctx, specs) as ctx:
        stages = stages_of(ctx)
        # A source waiting for its busy host (a slow feed holds the host's
        # fetch slots) waits in its host's lane, not in a shared slot that
        # another host's source could use.
        lanes = Lanes(
            per_key=HOST_LANE * ctx.config.max_per_host,
            total=ctx.config.max_connections + stages.pool.capacity + stages.writer.capacity,
        )

        async def one(spec: SourceSpec) -> SourceResult:
            async with lanes.slot(updater_for(spec).lane(spec)) as held:
                result = await update_source(spec, ctx, queued=held.release)
            if on_result is not None:
                on_result(result)
            return result

        started = await asyncio.gather(*(one(specs[i]) for i in order))
    by_index = dict(zip(order, started, strict=True))
    return [by_index[i] for i in range(len(specs))]


def longest_first(specs: Sequence[SourceSpec], seconds: Mapping[str, float]) -> list[int]:
    """The indices of ``specs``, the sources whose last poll took longest first.

    A pass ends when its slowest host's last source does: started last, a feed
    that answers in two seconds (or times out) is the pass's tail; started
    first, it runs beside the quick ones (longest-processing-time first, the
    classic rule for finishing a batch on a few slots soonest). A source never
    polled counts as the longest (it may discover a feed or time out); ties
    keep the config's order.
    """
    return sorted(range(len(specs)), key=lambda i: -seconds.get(specs[i].name, math.inf))


@asynccontextmanager
async def _with_fetcher(ctx: Context, specs: Sequence[SourceSpec]) -> AsyncIterator[Context]:
    """The context with a fetcher for these sources, closed afterwards if made here."""
    if ctx.fetcher is not None or not any_remote(specs):
        yield ctx
        return
    async with make_fetcher(ctx.config) as fetcher:
        yield replace(ctx, fetcher=fetcher)


def _failure(
    spec: SourceSpec, state: SourceState, exc: AggregatorError
) -> tuple[SourceResult, SourceState, Hints]:
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
    return result, state, Hints(retry_after=retry_after)


async def _cadence(spec: SourceSpec, ctx: Context, now: datetime, pending: Write) -> Cadence:
    """The source's cadence; the store is read (in a thread) only when WebSub or auto need it."""
    if not reads_store(spec, ctx.config):
        return fixed_cadence(spec, ctx.config)
    fresh = [record.item for record in pending.records]
    return await asyncio.to_thread(cadence_of, spec, ctx.config, ctx.store, now, fresh)


def _next_state(
    spec: SourceSpec,
    state: SourceState,
    result: SourceResult,
    now: datetime,
    hints: Hints,
    cadence: Cadence,
) -> SourceState:
    failed = result.outcome in (Outcome.ERROR, Outcome.GONE)
    failures = state.consecutive_failures + 1 if failed else 0
    due = next_due(
        now=now,
        interval=cadence.interval,
        outcome=result.outcome,
        consecutive_failures=failures,
        retry_after=hints.retry_after,
        cache_max_age=hints.cache_max_age,
        expires=hints.expires,
        ttl=hints.ttl,
        min_interval=cadence.min_interval,
        max_interval=cadence.max_interval,
        jitter=cadence.jitter,
        seed=state.name,
    )
    polled = replace(
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
        failing_since=failing_since(state, result.outcome, now),
    )
    if not _remote(spec):
        return polled  # a seed folder is never put to rest: it has no feed to die
    return laid_to_rest(polled, now=now, disable_after=spec.disable_after)


def _remote(spec: SourceSpec) -> bool:
    try:
        return updater_for(spec).remote
    except KeyError:  # no updater for its kind: its failure is recorded, it is not put to rest
        return False
