"""The republisher: dirty topics, debounced, re-rendered, served, written and pinged to the hub."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aggregator.config import Config
from aggregator.errors import AggregatorError, PublishError
from aggregator.metrics import Metrics
from aggregator.model import Item, Story, TopicSpec
from aggregator.pipeline import Context, make_fetcher, site_for
from aggregator.publish import (
    Document,
    TopicFeed,
    render_site_pages,
    render_topic_isolated,
    write_tree,
)
from aggregator.publish.websub import changed_feeds, ping_hub
from aggregator.web import DocumentStore

__all__ = ["PublishPace", "Republisher", "publish_at", "topic_map"]

if TYPE_CHECKING:
    from .settings import DaemonSettings

log = logging.getLogger(__name__)


#: the text of an outlined story (see :func:`_outline`)
_NO_TEXT = Item(
    source="-",
    identity="-",
    title="-",
    link=None,
    content_html="",
    summary="",
    published=datetime(1970, 1, 1, tzinfo=UTC),
    updated=datetime(1970, 1, 1, tzinfo=UTC),
)


#: stories freed per statement by :func:`_free_gradually`
FREE_CHUNK = 500


def _free_gradually(stories: list[Story]) -> None:
    """Drop the last references to a topic's stories a slice at a time.

    A topic can hold tens of thousands of stories, each an item with its
    text: freed in one statement, their deallocation is one C call that
    held the GIL, and with it the event loop, for over 100 ms. Between
    slices the interpreter can hand the GIL to the loop.
    """
    while stories:
        del stories[-FREE_CHUNK:]


def _outline(story: Story) -> Story:
    """``story`` without its texts: what the index and the OPML read (order, count, dates)."""
    return dataclasses.replace(story, item=_NO_TEXT, provenance=(), via=())


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

    @classmethod
    def of(cls, settings: DaemonSettings) -> PublishPace:
        """The pace a daemon's (or a publisher's) settings ask for."""
        return cls(
            debounce=settings.publish_debounce,
            max_delay=settings.publish_max_delay,
            spacing=settings.publish_spacing,
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
    no later than ``max_delay`` after its first; and never sooner than
    ``spacing`` times the last publish's duration after that publish ended, so
    re-rendering big topics cannot crowd out the ingest that feeds them.

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
    return max(quiet, last_end + pace.spacing * last_took)


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
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        documents: DocumentStore,
        current: Callable[[], Context],
        metrics: Metrics,
        *,
        pace: PublishPace,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.documents = documents
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
        # Held by the publishing thread: a publish cancelled at shutdown keeps
        # running in its thread, and the final publish waits for it.
        self._lock = threading.Lock()
        # Rendered per topic, so a publish re-renders only what changed.
        self._feeds: dict[str, TopicFeed] = {}
        self._topic_docs: dict[str, dict[str, Document]] = {}
        self._pings: set[asyncio.Task[None]] = set()
        #: publishes done (each renders every dirty topic once)
        self.publishes = 0
        #: (when, seconds) of the last publishes, oldest first, for the status page
        self.recent: collections.deque[tuple[datetime, float]] = collections.deque(maxlen=96)

    def mark_dirty(self, topics: Iterable[str], *, index: bool = True) -> None:
        """Republish these topics (and the index) once the pace allows."""
        now = self._clock()
        self._pending = (self._pending[0] if self._pending else now, now)
        self._dirty.update(topics)
        self._index_dirty = self._index_dirty or index
        self._changed.set()

    def due(self) -> float | None:
        """When the pending changes may publish (monotonic); None: nothing pending."""
        if self._pending is None:
            return None
        first, last = self._pending
        end, took = self._last or (None, 0.0)
        return publish_at(
            self._pace, first_change=first, last_change=last, last_end=end, last_took=took
        )

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
                    except Exception:  # a failed publish must not stop the daemon
                        log.exception("publishing failed")
                    continue
                # A new change moves the due time: look again when one comes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)

    async def publish(self, *, full: bool = False) -> None:
        """Re-render dirty topics (or all), swap them into the served set, write the static tree."""
        if not full and not self._dirty and not self._index_dirty:
            self._pending = None
            return
        started = self._clock()
        timer = time.perf_counter()
        ctx = self._current()
        config = ctx.config
        topics = topic_map(config)
        dirty = set(topics) if full else self._dirty & set(topics)
        self._dirty.clear()
        self._index_dirty = False
        self._pending = None
        before = self.documents.documents
        docs = await asyncio.to_thread(self._publish_sync, ctx, topics, dirty)
        self.publishes += 1
        ended = self._clock()
        self._last = (ended, ended - started)
        elapsed = time.perf_counter() - timer
        self._metrics.publish_seconds.observe(elapsed)
        self.recent.append((ctx.clock(), elapsed))
        log.info(
            "published %d topics (%d documents) in %.2fs",
            len(dirty),
            len(docs),
            elapsed,
            extra={"duration": round(elapsed, 3), "topics": sorted(dirty)},
        )
        hub = config.site.hub
        if hub and before:
            changed = changed_feeds(before, docs)
            if changed:
                urls = [config.server.base_url + path for path in changed]
                task = asyncio.create_task(self._ping(hub, urls))
                self._pings.add(task)
                task.add_done_callback(self._pings.discard)

    def _publish_sync(
        self, ctx: Context, topics: Mapping[str, TopicSpec], dirty: set[str]
    ) -> Mapping[str, Document]:
        """In a worker thread: render, serve (compressing what changed), write the tree."""
        with self._lock:
            docs = self._render(ctx, topics, dirty)
            self.documents.replace(docs, topics=topics)
            out_dir = ctx.config.data_dir / "public"
            try:
                write_tree(out_dir, docs)
            except (OSError, AggregatorError) as exc:
                log.error("%s: cannot write the published files: %s", out_dir, exc)
            return docs

    def _render(
        self, ctx: Context, topics: Mapping[str, TopicSpec], dirty: set[str]
    ) -> dict[str, Document]:
        site = site_for(ctx.config)
        for name in list(self._feeds):
            if name not in topics:
                del self._feeds[name]
                self._topic_docs.pop(name, None)
        for name, spec in topics.items():
            if name in dirty or name not in self._feeds or self._feeds[name].topic != spec:
                stories = ctx.store.topic_stories(name)
                feed = TopicFeed(spec, tuple(stories))
                try:
                    self._topic_docs[name] = render_topic_isolated(site, feed)
                except PublishError as exc:
                    # One topic's failure keeps its last good documents (or
                    # none) and never stops the others or the daemon's start.
                    log.error("%s", exc)
                    self._topic_docs.setdefault(name, {})
                del feed
                # Held until the topic changes, for the index and the OPML only:
                # one topic's texts at a time are in memory, never every topic's.
                self._feeds[name] = TopicFeed(spec, tuple(map(_outline, stories)))
                _free_gradually(stories)
        docs = render_site_pages(site, [self._feeds[name] for name in topics])
        for name in topics:
            docs.update(self._topic_docs[name])
        return docs

    async def _ping(self, hub: str, urls: list[str]) -> None:
        # Through a guarded fetcher: SSRF rules, no redirects, no proxy variables.
        async with make_fetcher(self._current().config) as fetcher:
            post = functools.partial(fetcher.post_form, source="websub")
            results = await ping_hub(hub, urls, post=post)
        for result in results:
            if not result.ok:
                log.warning("%s", result.error)
