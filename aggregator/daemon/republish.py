"""The republisher: dirty topics, debounced, re-rendered, served, written and pinged to the hub."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from aggregator.config import Config
from aggregator.errors import AggregatorError, PublishError
from aggregator.metrics import Metrics
from aggregator.model import TopicSpec
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

__all__ = ["Republisher", "topic_map"]

log = logging.getLogger(__name__)


def topic_map(config: Config) -> dict[str, TopicSpec]:
    """Topic name -> spec, as the web app wants them."""
    return {t.name: t for t in config.topics}


class Republisher:
    """Re-renders the topics updates made dirty, after a quiet moment, and publishes them.

    Publishing swaps the documents into the served set, writes the static tree
    under ``data_dir/public`` and pings the WebSub hub for feeds whose bytes changed.

    Args:
        documents: the served set.
        current: the daemon's current context (config and store).
        metrics: where the publish time is observed.
        debounce: quiet seconds after the last change before publishing.
        max_delay: longest a publish waits while changes keep coming.
    """

    def __init__(
        self,
        documents: DocumentStore,
        current: Callable[[], Context],
        metrics: Metrics,
        *,
        debounce: float,
        max_delay: float,
    ) -> None:
        self.documents = documents
        self._current = current
        self._metrics = metrics
        self._debounce = debounce
        self._max_delay = max_delay
        self._dirty: set[str] = set()
        self._index_dirty = True
        self._changed = asyncio.Event()
        # Rendered per topic, so a publish re-renders only what changed.
        self._feeds: dict[str, TopicFeed] = {}
        self._topic_docs: dict[str, dict[str, Document]] = {}
        self._pings: set[asyncio.Task[None]] = set()
        #: (when, seconds) of the last publishes, oldest first, for the status page
        self.recent: collections.deque[tuple[datetime, float]] = collections.deque(maxlen=96)

    def mark_dirty(self, topics: Iterable[str], *, index: bool = True) -> None:
        """Republish these topics (and the index) after the debounce."""
        self._dirty.update(topics)
        self._index_dirty = self._index_dirty or index
        self._changed.set()

    async def run(self) -> None:
        """Publish after each burst of changes, until cancelled."""
        while True:
            await self._changed.wait()
            first = time.monotonic()
            # Debounce: wait for a quiet moment, but never longer than the cap.
            while True:
                self._changed.clear()
                remaining = self._max_delay - (time.monotonic() - first)
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), min(self._debounce, remaining))
                except TimeoutError:
                    break
            try:
                await self.publish()
            except Exception:  # a failed publish must not stop the daemon; retried on next change
                log.exception("publishing failed")

    async def publish(self, *, full: bool = False) -> None:
        """Re-render dirty topics (or all), swap them into the served set, write the static tree."""
        if not full and not self._dirty and not self._index_dirty:
            return
        started = time.perf_counter()
        ctx = self._current()
        config = ctx.config
        topics = topic_map(config)
        dirty = set(topics) if full else self._dirty & set(topics)
        self._dirty.clear()
        self._index_dirty = False
        before = dict(self.documents.documents)
        docs = await asyncio.to_thread(self._render, ctx, topics, dirty)
        self.documents.replace(docs, topics=topics)
        out_dir = config.data_dir / "public"
        try:
            await asyncio.to_thread(write_tree, out_dir, docs)
        except (OSError, AggregatorError) as exc:
            log.error("%s: cannot write the published files: %s", out_dir, exc)
        elapsed = time.perf_counter() - started
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
                feed = TopicFeed(topic=spec, stories=tuple(ctx.store.topic_stories(name)))
                self._feeds[name] = feed
                try:
                    self._topic_docs[name] = render_topic_isolated(site, feed)
                except PublishError as exc:
                    # One topic's failure keeps its last good documents (or
                    # none) and never stops the others or the daemon's start.
                    log.error("%s", exc)
                    self._topic_docs.setdefault(name, {})
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
