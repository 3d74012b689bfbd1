"""``aggregator worker``: one process taking source updates from the job queue.

Any number of these run on any number of machines against one PostgreSQL
store. Each runs the same update as the embedded daemon
(:func:`aggregator.update.update_source`: fetch on the loop, parse in its
process pool, one writer), and the periodic jobs that whichever worker takes
them runs once for all: the dispatch, the recovery of dead workers' jobs,
the job-table cleanup and retention. One of them watches the seed folders;
SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from datetime import timedelta

from aggregator.config import Config
from aggregator.engine.collector import ingest_gc
from aggregator.model import SourceSpec
from aggregator.runtime.health import Health
from aggregator.runtime.metrics import Metrics
from aggregator.runtime.watch import SeedWatch
from aggregator.update import (
    Context,
    apply_config,
    load_again,
    make_fetcher,
    open_context,
    prune_old,
    update_source,
)
from aggregator.update.kinds import watched_folders

from .queue import ALL_TOPICS, FETCH_QUEUE, JobQueue

__all__ = ["QUEUE_OWNER", "Worker", "run_worker"]

log = logging.getLogger(__name__)

#: the claim owner of a source whose update is queued or running (released by its saved state)
QUEUE_OWNER = "queue"
#: how long a queued or running update holds its source if it never saves (its job vanished);
#: a running update renews it every third of it, so an update may take longer
LEASE = timedelta(hours=1)
#: sources one dispatch queues at most
DISPATCH_LIMIT = 10_000


class Worker:
    """The jobs of one worker process, over its context and the queue.

    Args:
        ctx: the open context (store, stages, fetcher).
        queue: the open job queue.
    """

    def __init__(self, ctx: Context, queue: JobQueue) -> None:
        self.ctx = ctx
        self.queue = queue
        self._specs: dict[str, SourceSpec] = {s.name: s for s in ctx.config.sources}
        self._health = Health(Metrics(), ctx.config.workers.dispatch_every.total_seconds())
        #: how long a claim holds without renewal (a running update renews it)
        self.lease = LEASE
        self._seed_watch: SeedWatch | None = None
        self._requests: set[asyncio.Task[None]] = set()

    async def dispatch(self) -> int:
        """Claim the due sources and queue one update each; returns how many were queued.

        The claim keeps the next dispatches from queueing a source again while
        its update waits or runs; the queueing lock keeps a second job out if
        a claim lapsed while the first still waits.
        """
        store = self.ctx.store
        now = self.ctx.clock()
        names = await asyncio.to_thread(
            store.claim_due, now, owner=QUEUE_OWNER, lease=self.lease, limit=DISPATCH_LIMIT
        )
        unknown = [n for n in names if n not in self._specs]
        if unknown:
            # Configured in another node's config, not this one's: leave them to it.
            await asyncio.to_thread(store.release, unknown, owner=QUEUE_OWNER)
        queued = await self.queue.defer_fetches([n for n in names if n in self._specs])
        if names:
            log.info("dispatch: %d due, %d queued", len(names), queued)
        return queued

    async def fetch(self, source: str, attempts: int, requested: bool = False) -> None:
        """Update one source, then queue a publish of the topics it changed.

        A job whose source is no longer due was done already: a retry after
        its worker died between saving and finishing. Its changes may not
        have been published, so it queues a publish of every topic. A
        ``requested`` update (its seed folder changed) runs whether or not
        the source is due.
        """
        ctx = self.ctx
        spec = self._specs.get(source)
        if spec is None:
            log.warning("%s: not in this worker's config; skipped", source)
            await asyncio.to_thread(ctx.store.release, [source], owner=QUEUE_OWNER)
            return
        state = await asyncio.to_thread(ctx.store.get_state, source)
        now = ctx.clock()
        if state is not None and (
            state.gone
            or (not requested and state.next_due_at is not None and state.next_due_at > now)
        ):
            if attempts:
                await self.queue.defer_publish([ALL_TOPICS])
            return
        renewing = asyncio.create_task(self._renew(source))
        try:
            result = await update_source(spec, ctx)
        except BaseException:
            # The store failed to save it: free the source for the next dispatch.
            await asyncio.to_thread(ctx.store.release, [source], owner=QUEUE_OWNER)
            raise
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        self._health.record(result)
        if result.dirty_topics:
            await self.queue.defer_publish(result.dirty_topics)

    async def _renew(self, source: str) -> None:
        """Extend the source's claim every third of the lease while its update runs.

        Without it an update longer than the lease (a slow host, a large seed
        folder) would be queued again by the next dispatch and run twice.
        A renewal after the update saved its state finds no claim to extend.
        """
        store = self.ctx.store
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(
                store.renew, [source], owner=QUEUE_OWNER, lease=self.lease, now=self.ctx.clock()
            )

    async def watch_seeds(self) -> bool:
        """Watch the seed folders if no other worker does; returns whether this one does.

        One worker in the fleet watches (a session advisory lock on the queue's
        database: if it dies, the lock goes with its connection, and the next
        worker to start, or this one after a reload, takes it). A change in a
        folder queues a requested update of its source. Watching is an
        accelerator: the folders are also polled at their interval.
        """
        folders = watched_folders(self.ctx.config.sources)
        if self._seed_watch is None:
            if not folders or not await self.queue.hold_seed_watch_lock():
                return False
            self._seed_watch = SeedWatch(self._seed_changed)
            log.info("watching the seed folders for the fleet")
        self._seed_watch.restart(folders)
        return True

    def _seed_changed(self, source: str) -> None:
        task = asyncio.create_task(self._request(source), name=f"request:{source}")
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _request(self, source: str) -> None:
        """Queue a requested update of a source whose seed folder changed.

        Claimed first, as a dispatch claims (the queue's claims share one
        owner, so a queued or running update's claim is renewed, not
        refused): a job already queued covers the change; one running now
        is followed by this one (never two at once: lock ``source:NAME``).
        """
        try:
            await asyncio.to_thread(
                self.ctx.store.claim,
                source,
                owner=QUEUE_OWNER,
                lease=self.lease,
                now=self.ctx.clock(),
            )
            await self.queue.defer_fetches([source], requested=True)
        except Exception:  # watching is an accelerator: the interval picks the change up
            log.exception("%s: cannot queue the update its seed folder asked for", source)

    async def close(self) -> None:
        """Stop watching the seed folders."""
        if self._seed_watch is not None:
            await self._seed_watch.close()

    async def reload(self) -> None:
        """Read the config file again and run on it (SIGHUP), as the daemon does.

        Sources and topics are synced into the store (a removed source's
        stories leave the feeds) and the topics that changed are queued for
        publishing; updates from now on use the new specs. The store, the
        data folder and the fetch settings are bound at start: a change is
        reported and needs a restart. A config that does not load is
        reported and the running one kept.
        """
        old = self.ctx.config
        new = await asyncio.to_thread(load_again, old)
        if new is None:
            return
        fetching = ("allow_networks", "user_agent", "max_connections", "max_per_host")
        if any(getattr(new, key) != getattr(old, key) for key in fetching):
            log.warning("fetch settings changes need a worker restart")
        ctx, dirty = await asyncio.to_thread(apply_config, self.ctx, new, now=self.ctx.clock())
        self.ctx = ctx
        self._specs = {s.name: s for s in new.sources}
        log.info("reloaded %s: %d sources, %d topics", new.path, len(new.sources), len(new.topics))
        await self.watch_seeds()
        if dirty:
            await self.queue.defer_publish(dirty)

    async def recover(self) -> None:
        """Queue again the jobs of workers whose heartbeat stopped."""
        await self.queue.recover_stalled(self.ctx.config.workers.stalled_after)

    async def cleanup(self) -> None:
        """Delete finished jobs older than ``workers.keep_jobs``."""
        await self.queue.delete_finished(self.ctx.config.workers.keep_jobs)

    async def retention(self) -> None:
        """Prune entries older than ``retention.max_age``; publish the topics that changed."""
        report = await asyncio.to_thread(prune_old, self.ctx, now=self.ctx.clock())
        if report.pruned:
            await self.queue.defer_publish(report.dirty_topics)


async def _run(config: Config, concurrency: int) -> None:
    settings = config.workers
    queue = JobQueue(config.store_url, pool_size=10)
    await queue.open()
    try:
        ctx = await asyncio.to_thread(open_context, config, migrate_apart=True)
        ctx = dataclasses.replace(ctx, fetcher=make_fetcher(config))
        worker = Worker(ctx, queue)
        try:
            loop = asyncio.get_running_loop()
            reloads: set[asyncio.Task[None]] = set()

            def on_hangup() -> None:
                task = asyncio.create_task(worker.reload(), name="reload")
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            loop.add_signal_handler(signal.SIGHUP, on_hangup)
            await worker.watch_seeds()
            queue.register_worker_tasks(
                dispatch=worker.dispatch,
                fetch=worker.fetch,
                recover=worker.recover,
                cleanup=worker.cleanup,
                retention=worker.retention,
                dispatch_every=settings.dispatch_every,
            )
            log.info(
                "worker: %d sources, %d updates at once; SIGTERM finishes them and exits, "
                "SIGHUP reloads the config",
                len(config.sources),
                concurrency,
            )
            await queue.work(
                [FETCH_QUEUE],
                concurrency=concurrency,
                stalled_after=settings.stalled_after,
                handle_signals=True,
            )
            log.info("worker stopped")
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            await worker.close()
            # A reload replaced the context (its store and fetcher are the same).
            ctx = worker.ctx
            if ctx.fetcher is not None:
                await ctx.fetcher.aclose()
            await asyncio.to_thread(ctx.close)
    finally:
        await queue.close()


def run_worker(config: Config, *, concurrency: int | None = None) -> None:
    """Run a worker until SIGTERM/SIGINT; the updates in flight finish first.

    Raises:
        StoreError: the store is not on PostgreSQL, or it or the queue cannot be opened.
    """
    # procrastinate logs every job at INFO: at 100 jobs a second, keep its warnings only.
    logging.getLogger("procrastinate").setLevel(
        max(logging.WARNING, logging.getLogger().getEffectiveLevel())
    )
    with ingest_gc():
        asyncio.run(_run(config, concurrency or config.workers.concurrency))
