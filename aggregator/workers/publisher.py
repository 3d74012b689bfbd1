"""``aggregator run`` with ``workers.enabled``: serve, publish and push, never poll.

The workers queue a publish job per topic their updates changed; this process
is the one worker of the ``publish`` queue. Each job marks its topics dirty in
the :class:`~aggregator.runtime.republish.Republisher` (the daemon's too), which renders
them after its debounce, swaps them into the served set and writes the static
tree. One publisher per store: a PostgreSQL advisory lock refuses a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aggregator.config import Config
from aggregator.errors import StoreError
from aggregator.model import SourceResult
from aggregator.push import PushService
from aggregator.runtime import (
    STOP_SIGNALS,
    DaemonSettings,
    PublishPace,
    Republisher,
    WebServer,
    cancel,
    on_signals,
    remove_signals,
    topic_map,
    with_data_dir,
)
from aggregator.runtime.metrics import CONTENT_TYPE, Metrics
from aggregator.update import (
    Context,
    apply_config,
    load_again,
    make_fetcher,
    needs_fetcher,
    open_context,
    status_page,
)
from aggregator.web import DocumentStore, create_app

from .queue import ALL_TOPICS, PUBLISH_QUEUE, JobQueue

__all__ = ["run_publisher"]

log = logging.getLogger(__name__)


class Publisher:
    """The publish queue's worker in front of a republisher and the web server."""

    def __init__(self, ctx: Context, queue: JobQueue, settings: DaemonSettings) -> None:
        self.ctx = ctx
        self.queue = queue
        #: WebSub in (the hubs post to this process) and webhooks out
        self.push = PushService(lambda: self.ctx, self._on_pushed, self._request_poll)
        #: fetch requests and reloads running in tasks of their own
        self._tasks: set[asyncio.Task[Any]] = set()
        self.metrics = Metrics()
        self.documents = DocumentStore(
            topics=topic_map(ctx.config), cache_size=ctx.config.server.cache_size
        )
        self.republisher = Republisher(
            self.documents,
            lambda: self.ctx,
            self.metrics,
            pace=PublishPace.of(settings),
        )
        #: publish jobs taken, for /healthz
        self.jobs = 0

    def _on_pushed(self, result: SourceResult) -> None:
        """A hub's distribution was ingested here: publish what it changed."""
        if result.dirty_topics:
            self.republisher.mark_dirty(result.dirty_topics)

    def _request_poll(self, source: str) -> None:
        """A source to poll now (its subscription ended): a fetch job for the workers."""
        self._spawn(self.queue.defer_fetches([source], requested=True), f"request:{source}")

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_publish(self, topics: list[str]) -> None:
        """A publish job: its topics are rendered with the next publish."""
        self.jobs += 1
        self.push.poke()  # new stories for the webhooks
        if ALL_TOPICS in topics:
            self.republisher.mark_dirty(t.name for t in self.ctx.config.topics)
        else:
            self.republisher.mark_dirty(topics)

    async def reload(self) -> None:
        """Read the config file again and publish on it (SIGHUP), as the daemon does.

        Topics and sources are synced into the store (the workers, told
        by their own SIGHUP, do the same: it is idempotent) and every topic is
        checked at the next publish. The server's address and token, the store
        and the data folder are bound at start. A config that does not load is
        reported and the running one kept.
        """
        old = self.ctx.config
        new = await asyncio.to_thread(load_again, old)
        if new is None:
            return
        if new.server != old.server:
            log.warning("server changes need a restart; serving %s", old.server.base_url)
        self.ctx, dirty = await asyncio.to_thread(apply_config, self.ctx, new, now=self.ctx.clock())
        self.republisher.mark_dirty(dirty | {t.name for t in new.topics})
        log.info("reloaded %s: %d sources, %d topics", new.path, len(new.sources), len(new.topics))

    def status_page(self) -> bytes:
        """``/status``, read from the store the workers write (blocking: it reads the store)."""
        return status_page(self.ctx, now=self.ctx.clock(), publishes=list(self.republisher.recent))

    def health(self) -> dict[str, Any]:
        failing = len(self.republisher.failing_topics)
        return {
            "status": "unhealthy" if failing else "ok",
            "mode": "publisher",
            "documents": len(self.documents),
            "publish_jobs": self.jobs,
            "topics_failing": failing,
            "publish_pending": self.republisher.pending,
        }

    async def run(self) -> None:
        config = self.ctx.config
        stopping = asyncio.Event()
        on_signals(STOP_SIGNALS, stopping.set)
        on_signals([signal.SIGHUP], lambda: self._spawn(self.reload(), "reload"))
        try:
            await self.republisher.publish(full=True)
            app = create_app(
                self.documents,
                health=self.health,
                metrics=lambda: (self.metrics.render(), CONTENT_TYPE),
                status=self.status_page,
                admin_token=config.server.admin_token,
                callbacks=self.push.subscriber,
            )
            server = WebServer(app, config)
            self.queue.register_publish_task(self.on_publish)
            jobs = asyncio.create_task(
                self.queue.work(
                    [PUBLISH_QUEUE],
                    concurrency=1,
                    stalled_after=config.workers.stalled_after,
                    handle_signals=False,
                ),
                name="publish-jobs",
            )
            publisher = asyncio.create_task(self.republisher.run(), name="publisher")
            push = asyncio.create_task(self.push.run(), name="push")
            log.info(
                "publishing only (workers poll): %d topics, serving %s",
                len(config.topics),
                config.server.base_url,
            )
            await stopping.wait()
            await cancel([jobs])  # procrastinate finishes the job in flight first
            await cancel([push, *self._tasks])
            await self.push.close()
            await cancel([publisher])
            await self.republisher.publish()
            await server.stop()
            log.info("stopped")
        finally:
            remove_signals([*STOP_SIGNALS, signal.SIGHUP])


def run_publisher(
    config: Config, *, data_dir: Path | None = None, settings: DaemonSettings | None = None
) -> None:
    """Serve and publish the store's feeds, re-rendering what workers changed, until SIGTERM.

    Raises:
        StoreError: the store or queue cannot be opened, or another publisher runs.
    """
    config = with_data_dir(config, data_dir)

    async def main() -> None:
        queue = JobQueue(config.store_url, pool_size=4)
        await queue.open()
        try:
            if not await queue.hold_publisher_lock():
                raise StoreError(
                    "another publisher (aggregator run with workers.enabled) runs on this store"
                )
            ctx = await asyncio.to_thread(open_context, config, migrate_apart=True)
            # Subscribing, renewing and delivering webhooks go out from here.
            fetcher = make_fetcher(config) if needs_fetcher(config) else None
            ctx = dataclasses.replace(ctx, fetcher=fetcher)
            try:
                await Publisher(ctx, queue, settings or DaemonSettings()).run()
            finally:
                if fetcher is not None:
                    await fetcher.aclose()
                await asyncio.to_thread(ctx.close)
        finally:
            await queue.close()

    logging.getLogger("procrastinate").setLevel(
        max(logging.WARNING, logging.getLogger().getEffectiveLevel())
    )
    asyncio.run(main())
