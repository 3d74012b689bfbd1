"""The daemon's composition root: wires the parts, owns the lifecycle, signals and reloads."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.config import Config
from aggregator.model import SourceResult
from aggregator.push import PushService
from aggregator.runtime import (
    STOP_SIGNALS,
    DaemonSettings,
    Health,
    PublishPace,
    Republisher,
    WebServer,
    cancel,
    on_signals,
    remove_signals,
    topic_map,
)
from aggregator.runtime.metrics import CONTENT_TYPE, Metrics
from aggregator.runtime.watch import SeedWatch, seed_folders, watch_config
from aggregator.update import (
    Context,
    make_fetcher,
    needs_fetcher,
    open_context,
    prune_old,
    status_page,
    utcnow,
)
from aggregator.web import DocumentStore, create_app

from .dispatch import CatchUp, Dispatcher, recover
from .reloader import ConfigReloader

__all__ = ["Daemon", "owner_for"]

log = logging.getLogger(__name__)


def owner_for(config: Config) -> str:
    """This daemon's name on its claims: stable across restarts of the same data folder.

    Only one daemon runs per data folder (the lock), so a restarted daemon may
    release what its killed predecessor claimed instead of waiting for the lease.
    """
    return f"{socket.gethostname()}:{config.data_dir}"


class Daemon:
    """The long-running process: dispatcher, republisher, health, watchers, web server.

    Args:
        config: the validated config (with any ``--data-dir`` applied).
        settings: timing and limits.
        data_dir_override: re-applied to every reloaded config.
        clock: the time source.
    """

    def __init__(
        self,
        config: Config,
        settings: DaemonSettings | None = None,
        *,
        data_dir_override: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings or DaemonSettings()
        self._initial = config
        self._clock = clock
        #: the current context; a reload replaces it, updates in flight keep theirs
        self._ctx: Context | None = None
        self.metrics = Metrics()
        self.documents = DocumentStore(
            topics=topic_map(config), cache_size=config.server.cache_size
        )
        self.health = Health(self.metrics, self.settings.tick_interval)
        self.dispatcher = Dispatcher(
            lambda: self.ctx,
            self._on_result,
            owner=owner_for(config),
            lease=self.settings.lease,
            max_workers=self.settings.max_workers,
            catch_up=CatchUp(self.settings.catch_up_rate, self.settings.catch_up_longest),
            max_per_host=config.max_per_host,
            max_waiting=self.settings.max_workers,
        )
        self.republisher = Republisher(
            self.documents,
            lambda: self.ctx,
            self.metrics,
            pace=PublishPace.of(self.settings),
            ingesting=lambda: self.dispatcher.in_flight > 0,
        )
        self.seed_watch = SeedWatch(self.dispatcher.request)
        #: WebSub subscriptions in, webhooks out
        self.push = PushService(lambda: self.ctx, self._on_result, self.dispatcher.request)
        self._stopping = asyncio.Event()
        self._reload_requested = asyncio.Event()
        #: loads and applies reloads; keeps the fetchers they replaced until shutdown
        self._reloads = ConfigReloader(data_dir_override)
        #: the store's change stamp at the last look (foreign_changes)
        self._stamp = 0
        #: the task watching the config file and its included files (at most one)
        self._config_watch: list[asyncio.Task[None]] = []

    @property
    def ctx(self) -> Context:
        """The current context.

        Raises:
            RuntimeError: the daemon is not running.
        """
        if self._ctx is None:
            raise RuntimeError("the daemon's store is not open")
        return self._ctx

    @property
    def config(self) -> Config:
        """The config the daemon runs on now."""
        return self._ctx.config if self._ctx is not None else self._initial

    def health_body(self) -> dict[str, Any]:
        """The ``/healthz`` body."""
        return self.health.body(
            in_flight=self.dispatcher.in_flight,
            documents=len(self.documents),
            publishing=self.republisher.failure,
            topics_failing=len(self.republisher.failing_topics),
            publish_pending=self.republisher.pending,
        )

    def metrics_text(self) -> bytes:
        """``/metrics`` in the Prometheus text format."""
        self.metrics.in_flight.set(self.dispatcher.in_flight)
        return self.metrics.render()

    def status_page(self) -> bytes:
        """The ``/status`` page (blocking: it reads the store)."""
        return status_page(self.ctx, now=self._clock(), publishes=list(self.republisher.recent))

    # -- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`stop`); return after a clean shutdown.

        Raises:
            StoreError: the store cannot be opened.
        """
        loop = asyncio.get_running_loop()
        try:
            await self.open()
            on_signals(STOP_SIGNALS, self.stop)
            on_signals([signal.SIGHUP], self._reload_requested.set)
            await self.republisher.publish(full=True)
            app = create_app(
                self.documents,
                health=self.health_body,
                metrics=lambda: (self.metrics_text(), CONTENT_TYPE),
                status=self.status_page,
                admin_token=self.config.server.admin_token,
                callbacks=self.push.subscriber,
            )
            server = WebServer(app, self.config)
            scheduler = self._scheduler(loop)
            # What changed while the daemon was down: every seed folder now.
            self._reconcile(seed_folders(self.config))
            scheduler.start()
            tasks = [
                asyncio.create_task(self.republisher.run(), name="publisher"),
                asyncio.create_task(self._reloader(), name="reloader"),
                asyncio.create_task(self.push.run(), name="push"),
            ]
            if self.settings.watch:
                self._watch_config(self.config)
                self.seed_watch.restart(seed_folders(self.config))
            log.info(
                "running: %d sources, %d topics, serving %s",
                len(self.config.sources),
                len(self.config.topics),
                self.config.server.base_url,
            )
            await self._stopping.wait()
            log.info("stopping: %d updates in flight", self.dispatcher.in_flight)
            scheduler.shutdown(wait=False)
            await self.seed_watch.close()
            await self.dispatcher.drain(self.settings.shutdown_deadline)
            await cancel([*tasks, *self._config_watch])
            await self.push.close()
            await self.republisher.publish()
            await server.stop()
            log.info("stopped")
        finally:
            remove_signals([*STOP_SIGNALS, signal.SIGHUP])
            await self.close()

    async def open(self) -> None:
        """Open the store and recover from the last run (what :meth:`run` does first).

        Raises:
            StoreError: the store cannot be opened.
        """
        ctx = await asyncio.to_thread(
            open_context,
            self._initial,
            clock=self._clock,
            worker_niceness=self.settings.worker_niceness,
            migrate_apart=True,
            release_when_idle=True,
            publish_apart=True,
        )
        # One HTTP client for every update: the connection limits hold across sources.
        # None on a config of seed folders alone (httpx is then never imported);
        # a reload that adds a remote source makes one.
        fetcher = make_fetcher(ctx.config) if needs_fetcher(ctx.config) else None
        self._ctx = dataclasses.replace(ctx, fetcher=fetcher)
        self._stamp, _ = await asyncio.to_thread(ctx.store.foreign_changes, 0)
        states, overdue = await asyncio.to_thread(recover, self.ctx, self.dispatcher.owner)
        polled = {s.name for s in self.config.sources if s.enabled}
        self.health.load((st for st in states if st.name in polled), len(self.config.sources))
        self.dispatcher.catch_up(overdue)
        if overdue > self.settings.catch_up_rate:
            log.info(
                "%d remote sources due: starting at most %.0f a second",
                overdue,
                self.settings.catch_up_rate,
            )

    async def close(self) -> None:
        """Close the fetchers and the store."""
        if self._ctx is None:
            return
        await self._reloads.aclose()
        if self._ctx.fetcher is not None:
            with contextlib.suppress(Exception):
                await self._ctx.fetcher.aclose()
        self._ctx.close()
        self._ctx = None

    def stop(self) -> None:
        """Begin a clean shutdown (what SIGTERM does)."""
        self._stopping.set()

    def _scheduler(self, loop: asyncio.AbstractEventLoop) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.settings.tick_interval,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            id="dispatch",
        )
        scheduler.add_job(
            self._retention,
            "interval",
            seconds=self.settings.retention_every.total_seconds(),
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(minutes=1),
            id="retention",
        )
        return scheduler

    def _reconcile(self, folders: dict[str, Path]) -> None:
        """Update these seed folders now: the stat pass finds what changed unwatched."""
        for name in sorted(folders):
            self.dispatcher.request(name)

    # -- the jobs -----------------------------------------------------------------------

    async def _tick(self) -> None:
        if self._stopping.is_set():
            return
        waiting = await self.dispatcher.tick()
        self.health.ticked(waiting)
        # A command beside the daemon (update, stories --rebuild, a source
        # removed) changed the store: what it changed is served only once published.
        self._stamp, foreign = await asyncio.to_thread(self.ctx.store.foreign_changes, self._stamp)
        if foreign:
            log.info("the store changed outside this daemon: republishing every topic")
            self.republisher.mark_dirty(topic_map(self.config))

    def _on_result(self, result: SourceResult) -> None:
        self.health.record(result)
        if result.dirty_topics:
            self.republisher.mark_dirty(result.dirty_topics)
        self.push.poke()

    async def _retention(self) -> None:
        """Prune entries older than ``retention.max_age``, except stories still published."""
        if self._stopping.is_set():
            return
        report = await asyncio.to_thread(prune_old, self.ctx, now=self._clock())
        if report.pruned:
            self.republisher.mark_dirty(report.dirty_topics)

    # -- reload -------------------------------------------------------------------------

    def _watch_config(self, config: Config) -> None:
        """Watch the config file and every file it includes; a write requests a reload."""
        for task in self._config_watch:
            task.cancel()
        files = [Path(config.path), *config.included]
        watch = watch_config(files, self._reload_requested.set, self._stopping)
        self._config_watch = [asyncio.create_task(watch, name="config-watch")]

    async def _reloader(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Load the config file again and apply it; keep the old config when it is invalid.

        Returns:
            Whether the new config was applied.
        """
        ctx = self.ctx
        plan = await self._reloads.load(ctx.config)
        if plan is None:
            return False
        new = plan.config
        async with self.dispatcher.paused(finishing=plan.changed | plan.removed):
            self._ctx, dirty = await self._reloads.apply(ctx, plan, now=self._clock())
        # A reload is the operator's way to say "serve what the store holds":
        # every topic is checked (a topic whose stories did not change renders nothing).
        self.republisher.mark_dirty(dirty | plan.topics | set(topic_map(new)))
        self.health.configured(s.name for s in new.sources if s.enabled)
        if plan.rewatch and self.settings.watch:
            self.seed_watch.restart(seed_folders(new))
        if self.settings.watch and new.included != ctx.config.included:
            self._watch_config(new)
        folders = seed_folders(new)
        self._reconcile({name: folders[name] for name in plan.reconcile})
        log.info("reloaded %s: %d sources, %d topics", new.path, len(new.sources), len(new.topics))
        return True
