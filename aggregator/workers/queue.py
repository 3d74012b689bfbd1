"""The job queue on PostgreSQL: the one module that imports procrastinate.

procrastinate keeps its jobs in the store's database (its own tables, made
by its own schema, never by our Alembic migrations): workers take jobs with
``FOR UPDATE SKIP LOCKED``, wake on ``LISTEN/NOTIFY``, defer periodic jobs
once per tick whatever the number of workers, refuse a second queued job
under one queueing lock, and record a heartbeat per worker so the jobs of a
dead one can be found and retried.

Jobs and what they carry (names are stable: workers of two releases may share a queue):

* ``aggregator.dispatch`` (periodic): queue the due sources;
* ``aggregator.fetch`` ``source=NAME`` (and ``requested=true`` when its seed folder
  changed: run even if not due): one source's update, queueing lock ``fetch:NAME`` (one
  queued per source) and lock ``source:NAME`` (never two running);
* ``aggregator.publish`` ``topics=[...]`` on the ``publish`` queue, queueing
  lock ``publish:TOPIC``: the publisher re-renders these topics (``*``: all);
* ``aggregator.recover`` (periodic): retry the jobs of workers that stopped beating;
* ``aggregator.cleanup`` (periodic): delete finished jobs older than ``keep_jobs``;
* ``aggregator.update.retention`` (periodic, daily): prune old entries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as pexc
from procrastinate.jobs import Job

from aggregator.errors import StoreError

__all__ = [
    "ALL_TOPICS",
    "FETCH_QUEUE",
    "PUBLISH_QUEUE",
    "JobQueue",
    "conninfo",
]

log = logging.getLogger(__name__)

FETCH_QUEUE = "fetch"
PUBLISH_QUEUE = "publish"
#: a publish job's topic meaning every topic
ALL_TOPICS = "*"

DISPATCH = "aggregator.dispatch"
FETCH = "aggregator.fetch"
PUBLISH = "aggregator.publish"
RECOVER = "aggregator.recover"
CLEANUP = "aggregator.cleanup"
RETENTION = "aggregator.update.retention"

#: advisory lock keys (session level): applying the queue schema, the one publisher,
#: the one worker watching the seed folders
_SCHEMA_LOCK = 0x61677131
_PUBLISHER_LOCK = 0x61677132
_SEED_WATCH_LOCK = 0x61677133
#: periodic jobs go before the fetches queued behind them
_URGENT = 10
#: jobs queued per statement
_BATCH = 500


def conninfo(store_url: str) -> str:
    """A libpq URL from the store's SQLAlchemy URL (``postgresql+psycopg://`` -> ``postgresql://``).

    Raises:
        StoreError: the store is not on PostgreSQL.
    """
    if not store_url.startswith(("postgresql://", "postgresql+psycopg://")):
        raise StoreError("the job queue needs a PostgreSQL store (store: postgresql://...)")
    return store_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _every(period: timedelta) -> str:
    """A six-field cron (seconds last) firing every ``period`` (whole seconds, 1-60)."""
    seconds = int(period.total_seconds())
    return "* * * * * *" if seconds <= 1 else f"* * * * * */{seconds}"


class JobQueue:
    """The aggregator's jobs on procrastinate: defer them, and run a worker over them.

    Args:
        store_url: the store's URL (the queue lives in the same database).
        pool_size: connections the queue may hold (a worker needs its
            concurrency's worth at most, plus the listener).
    """

    def __init__(self, store_url: str, *, pool_size: int = 10) -> None:
        self._conninfo = conninfo(store_url)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self._conninfo, min_size=1, max_size=pool_size
            )
        )
        self._lock_conns: list[psycopg.AsyncConnection[Any]] = []

    async def open(self) -> None:
        """Connect, and create procrastinate's tables if this database has none yet.

        Raises:
            StoreError: the database cannot be reached or the schema applied.
        """
        try:
            await self.app.open_async()
            async with await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            ) as conn:
                # Several workers starting at once: one applies, the others wait and see it.
                await conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
                try:
                    row = await (
                        await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
                    ).fetchone()
                    if not (row and row[0]):
                        log.info("applying the job queue's schema (procrastinate)")
                        await self.app.schema_manager.apply_schema_async()
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
        except (psycopg.Error, pexc.ProcrastinateException) as exc:
            raise StoreError(f"job queue: cannot open: {exc}") from exc

    async def close(self) -> None:
        for conn in self._lock_conns:
            await conn.close()
        self._lock_conns = []
        await self.app.close_async()

    async def hold_publisher_lock(self) -> bool:
        """Take the one-publisher lock for as long as this queue is open; False if held."""
        return await self._hold(_PUBLISHER_LOCK)

    async def hold_seed_watch_lock(self) -> bool:
        """Take the one-seed-watcher lock for as long as this queue is open; False if held.

        Its session ends with the process (or its connection): another worker
        then takes the lock at its next try.
        """
        return await self._hold(_SEED_WATCH_LOCK)

    async def _hold(self, key: int) -> bool:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
        if not (row and row[0]):
            await conn.close()
            return False
        self._lock_conns.append(conn)
        return True

    # -- deferring ---------------------------------------------------------------------

    async def defer_fetches(self, sources: Sequence[str], *, requested: bool = False) -> int:
        """Queue one update per source unless one is queued already; returns how many were.

        Many per statement (a dispatch may queue thousands); a batch that meets
        a queued job is retried one job at a time, the queued ones skipped.
        ``requested``: the updates run even if their source is not due (a
        seed folder changed).
        """
        queued = 0
        for start in range(0, len(sources), _BATCH):
            jobs = [self._fetch_job(s, requested) for s in sources[start : start + _BATCH]]
            try:
                await self.app.job_manager.batch_defer_jobs_async(jobs)
            except pexc.AlreadyEnqueued:
                for job in jobs:
                    try:
                        await self.app.job_manager.defer_job_async(job)
                    except pexc.AlreadyEnqueued:
                        continue
                    queued += 1
            else:
                queued += len(jobs)
        return queued

    @staticmethod
    def _fetch_job(source: str, requested: bool = False) -> Job:
        kwargs: dict[str, Any] = {"source": source}
        if requested:
            kwargs["requested"] = True
        return Job(
            queue=FETCH_QUEUE,
            lock=f"source:{source}",
            queueing_lock=f"fetch:{source}",
            task_name=FETCH,
            task_kwargs=kwargs,
        )

    async def defer_publish(self, topics: Iterable[str]) -> int:
        """Queue a publish of each topic not queued for publishing yet; returns how many were.

        A topic already queued is covered: that job has not started, so it
        renders what is committed now.
        """
        queued = 0
        for topic in sorted(set(topics)):
            try:
                await self.app.configure_task(
                    PUBLISH, queue=PUBLISH_QUEUE, queueing_lock=f"publish:{topic}"
                ).defer_async(topics=[topic])
            except pexc.AlreadyEnqueued:
                continue
            queued += 1
        return queued

    async def recover_stalled(self, stalled_after: timedelta) -> int:
        """Put the running jobs of workers silent for ``stalled_after`` back in the queue.

        Returns:
            How many jobs were queued again.
        """
        manager = self.app.job_manager
        stalled = list(
            await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after.total_seconds())
        )
        for job in stalled:
            log.warning("job %s (%s) of a dead worker: queued again", job.id, job.call_string)
            await manager.retry_job(job)
        # Forget the dead workers themselves (their jobs are back in the queue).
        await manager.prune_stalled_workers(stalled_after.total_seconds())
        return len(stalled)

    async def delete_finished(self, older_than: timedelta) -> None:
        """Delete succeeded, failed and aborted jobs finished more than ``older_than`` ago."""
        await self.app.job_manager.delete_old_jobs(
            nb_hours=max(1, int(older_than.total_seconds() // 3600)),
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )

    # -- running -----------------------------------------------------------------------

    def register_worker_tasks(
        self,
        *,
        dispatch: Callable[[], Awaitable[object]],
        fetch: Callable[[str, int, bool], Awaitable[None]],
        recover: Callable[[], Awaitable[None]],
        cleanup: Callable[[], Awaitable[None]],
        retention: Callable[[], Awaitable[None]],
        dispatch_every: timedelta,
    ) -> None:
        """Bind the worker's jobs to these coroutines.

        Args:
            dispatch: queues the due sources (periodic, every ``dispatch_every``).
            fetch: updates one source; gets its name, the job's earlier attempts,
                and whether it was requested (run even if not due).
            recover: retries dead workers' jobs (periodic, with the dispatch).
            cleanup: deletes old finished jobs (periodic, hourly).
            retention: prunes old entries (periodic, daily).
        """
        app = self.app
        every = _every(dispatch_every)

        async def run_dispatch(timestamp: int) -> None:
            await dispatch()

        async def run_recover(timestamp: int) -> None:
            await recover()

        async def run_cleanup(timestamp: int) -> None:
            await cleanup()

        async def run_retention(timestamp: int) -> None:
            await retention()

        async def run_fetch(
            context: procrastinate.JobContext, source: str, requested: bool = False
        ) -> None:
            assert context.job is not None
            await fetch(source, context.job.attempts, requested)

        for name, func, cron in (
            (DISPATCH, run_dispatch, every),
            (RECOVER, run_recover, every),
            (CLEANUP, run_cleanup, "7 * * * *"),
            (RETENTION, run_retention, "17 3 * * *"),
        ):
            task = app.task(name=name, queue=FETCH_QUEUE, queueing_lock=name, priority=_URGENT)(
                func
            )
            app.periodic(cron=cron)(task)
        app.task(name=FETCH, queue=FETCH_QUEUE, pass_context=True)(run_fetch)

    def register_publish_task(self, publish: Callable[[list[str]], Awaitable[None]]) -> None:
        """Bind the publish job to ``publish`` (it gets the job's topic names)."""

        async def run_publish(topics: list[str]) -> None:
            await publish(topics)

        self.app.task(name=PUBLISH, queue=PUBLISH_QUEUE)(run_publish)

    async def work(
        self,
        queues: list[str],
        *,
        concurrency: int,
        stalled_after: timedelta,
        handle_signals: bool,
    ) -> None:
        """Take and run jobs from ``queues`` until stopped, then finish the jobs in flight.

        With ``handle_signals`` SIGTERM/SIGINT stop it; otherwise cancelling
        the calling task does (the jobs in flight still finish).
        """
        await self.app.run_worker_async(
            queues=queues,
            concurrency=concurrency,
            wait=True,
            install_signal_handlers=handle_signals,
            update_heartbeat_interval=stalled_after.total_seconds() / 3,
            stalled_worker_timeout=stalled_after.total_seconds(),
            fetch_job_polling_interval=stalled_after.total_seconds() / 3,
            abort_job_polling_interval=stalled_after.total_seconds(),
            delete_jobs="never",
        )
