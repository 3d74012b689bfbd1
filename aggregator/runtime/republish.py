"""The republisher: dirty topics, debounced, re-rendered, served, written and pinged to the hub."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.config import Config
from aggregator.errors import AggregatorError
from aggregator.model import TopicSpec
from aggregator.publish.websub import Published, changed_feeds, ping_hub
from aggregator.runtime.metrics import Metrics
from aggregator.update import Context, make_fetcher
from aggregator.web import DocumentStore

from .exporter import Exporter

if TYPE_CHECKING:
    from pathlib import Path

    from aggregator.publish.export import DocumentFile, PublishReport

__all__ = ["PublishPace", "Republisher", "failed_topics", "publish_at", "topic_map"]

if TYPE_CHECKING:
    from .settings import DaemonSettings

log = logging.getLogger(__name__)


def failed_topics(
    report: PublishReport, topics: Iterable[str], before: Iterable[str] = ()
) -> set[str]:
    """Topics failing after ``report``: those it could not render or write, and those that
    failed before and were not rendered since (a publish renders only dirty topics)."""
    names = set(topics)
    return (set(report.failed) & names) | ((set(before) & names) - set(report.topics))


def topic_map(config: Config) -> dict[str, TopicSpec]:
    """Topic name -> spec, as the web app wants them."""
    return {t.name: t for t in config.topics}


@dataclass(frozen=True, slots=True)
class PublishPace:
    """When a republish may start, while updates keep making topics dirty."""

    #: quiet seconds after the last change before publishing
    debounce: float
    #: longest a publish waits for a quiet moment while changes keep coming
    max_delay: float
    #: after a publish that took d seconds, the next one starts no sooner than
    #: ``spacing * d`` after it ended: publishing takes at most 1 / (1 + spacing)
    #: of the time while changes keep coming, however big the topics grow
    spacing: float
    #: longest a publish waits, after its first change, for the parse workers to
    #: go quiet when it runs in a publishing process beside them (0: never waits)
    hold: float = 0.0

    @classmethod
    def of(cls, settings: DaemonSettings) -> PublishPace:
        """The pace a daemon's (or a publisher's) settings ask for."""
        return cls(
            debounce=settings.publish_debounce,
            max_delay=settings.publish_max_delay,
            spacing=settings.publish_spacing,
            hold=settings.publish_hold,
        )


def publish_at(
    pace: PublishPace,
    *,
    first_change: float,
    last_change: float,
    last_end: float | None,
    last_took: float,
) -> float:
    """The (monotonic) time a publish of the pending changes may start (pure).

    A burst of changes publishes once, ``debounce`` after its last change but
    no later than ``max_delay`` after its first; and, while changes keep
    coming, never sooner than ``spacing`` times the last publish's duration
    after that publish ended, so re-rendering big topics cannot crowd out the
    ingest that feeds them. Changes that all came while the last publish ran,
    none since, are the end of a burst: they publish ``max_delay`` after it
    ended (a 120 s publish after a big first ingest held that ingest's last
    minute of stories back for 8 minutes). And once no change has come for as
    long as the last publish took, ``max_delay`` at least, the ingest is over
    and the wait with it (a 5 s first publish held a seed article dropped in
    3 s later for another 17; a lull of ``max_delay`` alone let the sparse
    changes at the end of a 1,000-feed ingest start a 50 s publish every few
    seconds: 27 % more CPU for the whole ingest).

    Args:
        pace: the settings.
        first_change: when the first change not yet published was marked.
        last_change: when the latest change was marked.
        last_end: when the last publish ended (None: never published).
        last_took: how long the last publish took, in seconds.
    """
    quiet = min(last_change + pace.debounce, first_change + pace.max_delay)
    if last_end is None:
        return quiet
    spaced = last_end + pace.spacing * last_took
    if last_change < last_end:  # all came while it ran: the end of a burst
        lull = last_end + pace.max_delay
    else:
        lull = last_change + max(pace.max_delay, last_took)
    return max(quiet, min(spaced, lull))


class Republisher:
    """Re-renders the topics updates made dirty, after a quiet moment, and publishes them.

    Publishing swaps the documents into the served set, writes the static tree
    under ``data_dir/public`` and pings the WebSub hub for feeds whose bytes
    changed. Reading the stories, rendering, compressing the served copies and
    writing the files all run in one worker thread, one publish at a time; the
    event loop only waits (the swap is one assignment, atomic for a request).

    Args:
        documents: the served set.
        current: the daemon's current context (config and store).
        metrics: where the publish time is observed.
        pace: when a publish may start (:func:`publish_at`).
        ingesting: whether source updates are under way (the daemon's
            dispatcher has some in flight); while they are and the parse
            workers are busy, a publish waits (``pace.hold``).
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        documents: DocumentStore,
        current: Callable[[], Context],
        metrics: Metrics,
        *,
        pace: PublishPace,
        ingesting: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.documents = documents
        self._ingesting = ingesting
        self._current = current
        self._metrics = metrics
        self._pace = pace
        self._clock = clock
        self._dirty: set[str] = set()
        self._index_dirty = True
        self._changed = asyncio.Event()
        #: (first, last) marked change not yet published; None: nothing pending
        self._pending: tuple[float, float] | None = None
        #: (end, duration) of the last publish
        self._last: tuple[float, float] | None = None
        self._exporter = Exporter()
        self._pings: set[asyncio.Task[None]] = set()
        #: publishes done (each renders every dirty topic once)
        self.publishes = 0
        #: documents rendered by all publishes (a kept archive page is not rendered)
        self.rendered = 0
        #: (when, seconds) of the last publishes, oldest first, for the status page
        self.recent: collections.deque[tuple[datetime, float]] = collections.deque(maxlen=96)
        #: topics whose last render failed (they serve their last good documents)
        self.failing_topics: set[str] = set()
        #: why the last publish failed (None: it worked), for ``/healthz``
        self.failure: str | None = None

    def mark_dirty(self, topics: Iterable[str], *, index: bool = True) -> None:
        """Republish these topics (and the index) once the pace allows."""
        now = self._clock()
        self._pending = (self._pending[0] if self._pending else now, now)
        self._dirty.update(topics)
        self._index_dirty = self._index_dirty or index
        self._changed.set()

    @property
    def pending(self) -> bool:
        """Whether changes wait to be published (for the pace) or a publish is running."""
        return self._pending is not None or self._exporter.busy

    def due(self) -> float | None:
        """When the pending changes may publish (monotonic); None: nothing pending."""
        if self._pending is None:
            return None
        first, last = self._pending
        end, took = self._last or (None, 0.0)
        due = publish_at(
            self._pace, first_change=first, last_change=last, last_end=end, last_took=took
        )
        if self._pace.hold > 0:
            quiet_in = self._parse_quiet_in()
            if quiet_in > 0:
                due = max(due, min(self._clock() + quiet_in, first + self._pace.hold))
        return due

    def _parse_quiet_in(self) -> float:
        """Seconds until the parse workers have been idle a few seconds, while updates are
        under way and publishing runs in a process of its own beside them (else 0).

        Each holds its imports and heap (60-70 and 50-55 MiB): a publish in the
        middle of a burst of polls ran both at once, the daemon's whole peak
        (221 MiB against 99.6 at rest after 1,000 feeds). Held until the burst
        pauses, the publishing process starts as the parse workers stop
        (:meth:`~aggregator.engine.CpuPool.take_turns_with`); a burst longer
        than ``hold`` publishes anyway. With no update in flight the burst is
        over: a seed article dropped in publishes after the debounce.
        """
        stages = self._current().stages
        if stages is None or stages.publisher is None or not self._ingesting():
            return 0.0
        return stages.pool.quiet_in()

    async def run(self) -> None:
        """Publish after each burst of changes, at the pace allowed, until cancelled."""
        while True:
            await self._changed.wait()
            while True:
                self._changed.clear()
                due = self.due()
                if due is None:
                    break
                wait = due - self._clock()
                if wait <= 0:
                    try:
                        await self.publish()
                    except Exception as exc:  # a failed publish must not stop the daemon
                        log.exception("publishing failed")
                        self.failure = f"{type(exc).__name__} (see the log)"
                    continue
                # A new change moves the due time: look again when one comes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)

    async def publish(self, *, full: bool = False) -> None:
        """Bring the export up to date with the store and serve it.

        Renders the dirty topics' changed documents (or, with ``full``, checks
        every topic: a page whose stories did not change is still not
        rendered), writes what changed into ``data_dir/public``, and swaps
        the served set to the new manifest.
        """
        if not full and not self._dirty and not self._index_dirty:
            self._pending = None
            return
        started = self._clock()
        timer = time.perf_counter()
        ctx = self._current()
        config = ctx.config
        topics = topic_map(config)
        dirty: frozenset[str] | None = None if full else frozenset(self._dirty & set(topics))
        self._dirty.clear()
        self._index_dirty = False
        self._pending = None
        before = dict(self.documents.documents)
        out_dir = config.data_dir / "public"
        try:
            report = await self._exporter.run(ctx, out_dir, dirty)
        except (OSError, AggregatorError) as exc:
            # Nothing is swapped: the last good export stays served, and the
            # topics stay dirty for the next publish (the next change's, or the
            # one at shutdown).
            self._undone(dirty)
            log.error("%s: cannot publish: %s", out_dir, exc)
            self.failure = f"cannot write the export ({type(exc).__name__}, see the log)"
            return
        except asyncio.CancelledError:
            # Stopping: the publish at shutdown must still publish these topics.
            self._undone(dirty)
            raise
        self.failure = None
        await self._serve(out_dir, report.documents, topics)
        self.failing_topics = failed_topics(report, topics, self.failing_topics)
        # A topic that failed is tried again with the next publish.
        self._dirty.update(self.failing_topics)
        self._count(ctx, report, started, time.perf_counter() - timer)
        hub = config.site.hub
        if hub and before:
            self._ping_changed(hub, config.server.base_url, before, report.documents)

    def _count(self, ctx: Context, report: PublishReport, started: float, elapsed: float) -> None:
        """Record a publish that ended now: its pace, metrics and log line."""
        self.publishes += 1
        ended = self._clock()
        self._last = (ended, ended - started)
        self._metrics.publish_seconds.observe(elapsed)
        self.recent.append((ctx.clock(), elapsed))
        self.rendered += report.rendered
        log.info(
            "published %d topics (%d documents rendered, %d pages kept) in %.2fs",
            len(report.topics),
            report.rendered,
            report.kept,
            elapsed,
            extra={"duration": round(elapsed, 3), "topics": sorted(report.topics)},
        )

    def _ping_changed(
        self,
        hub: str,
        base_url: str,
        before: Mapping[str, Published],
        after: Mapping[str, Published],
    ) -> None:
        """Tell the hub about the feeds whose bytes changed (in a task of its own)."""
        changed = changed_feeds(before, after)
        if changed:
            urls = [base_url + path for path in changed]
            task = asyncio.create_task(self._ping(hub, urls))
            self._pings.add(task)
            task.add_done_callback(self._pings.discard)

    def _undone(self, dirty: frozenset[str] | None) -> None:
        """A publish of ``dirty`` (None: every topic) did not happen: mark them again,
        without a due time (the next change, or the publish at shutdown, takes them)."""
        self._dirty.update(topic_map(self._current().config) if dirty is None else dirty)
        self._index_dirty = True

    async def _serve(
        self, out_dir: Path, documents: Mapping[str, DocumentFile], topics: Mapping[str, TopicSpec]
    ) -> None:
        """Serve the written export: what grows with it (each changed document's
        headers) is prepared in a thread; the loop only swaps the prepared set in."""
        prepared = await asyncio.to_thread(
            self.documents.prepare_files, out_dir, documents, topics=topics
        )
        self.documents.install(prepared)

    async def _ping(self, hub: str, urls: list[str]) -> None:
        # Through a guarded fetcher: SSRF rules, no redirects, no proxy variables.
        async with make_fetcher(self._current().config) as fetcher:
            post = functools.partial(fetcher.post_form, source="websub")
            results = await ping_hub(hub, urls, post=post)
        for result in results:
            if not result.ok:
                log.warning("%s", result.error)
