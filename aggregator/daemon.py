"""``aggregator run``: the embedded daemon. The only module importing apscheduler and watchfiles.

One process, one asyncio loop holding:

* an APScheduler 3 ``AsyncIOScheduler`` (one, with its in-memory job store)
  running a dispatch tick every second and the daily retention job;
* a worker pool: each due source is an asyncio task, at most ``max_workers``
  at a time (the fetcher adds the global and per-host connection limits);
* a debounced republisher: topics made dirty by updates are re-rendered,
  swapped into the served set and written to ``data_dir/public``;
* watchers (watchfiles) on the seed folders and on the config file;
* the web server (``aggregator.web``) serving the documents from memory,
  ``/healthz`` and ``/metrics``.

Durability comes from the store: every update commits its entries and its
state in transactions, so a crash (even ``kill -9``) loses at most the work in
flight, which the next start redoes. ``SIGTERM``/``SIGINT`` stop the ticks, let
updates in flight finish within a deadline, publish once more and exit 0.
``SIGHUP`` (or an edit of the config file) reloads the config; an invalid one
is logged and the daemon keeps running on the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from watchfiles import awatch

from aggregator.config import Config, load_config
from aggregator.errors import AggregatorError, ConfigError, DataDirLockedError, StoreError
from aggregator.metrics import CONTENT_TYPE, Metrics
from aggregator.model import Outcome, SourceKind, SourceResult, SourceSpec, TopicSpec
from aggregator.pipeline import (
    Context,
    build_matchers,
    make_fetcher,
    open_context,
    render_all,
    site_for,
    update_source,
    utcnow,
)
from aggregator.publish import (
    Document,
    TopicFeed,
    render_site_pages,
    render_topic,
    write_tree,
)
from aggregator.publish.websub import changed_feeds, ping_hub
from aggregator.web import DocumentStore, create_app, serve

__all__ = [
    "Daemon",
    "DaemonSettings",
    "DataDirLock",
    "JsonFormatter",
    "configure_logging",
    "run_daemon",
    "serve_documents",
    "with_data_dir",
]

log = logging.getLogger(__name__)

LOCK_NAME = "aggregator.lock"


# -- logging ------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """JSON lines: time, level, logger, message, and source/outcome/duration when given."""

    _EXTRA = ("source", "outcome", "duration", "new", "updated", "removed", "topics")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self._EXTRA:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send logs to stderr as text (``LEVEL logger: message``) or JSON lines.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        fmt: ``text`` or ``json``.
        stream: where to write; default stderr.
    """
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler logs every tick at INFO: keep it for warnings.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    # watchfiles logs every change it sees at INFO.
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, root.level))


# -- the data folder lock -----------------------------------------------------


class DataDirLock:
    """An exclusive ``flock`` on ``data_dir/aggregator.lock``, holding the owner's pid.

    The kernel drops the lock when the process dies, so a ``kill -9`` never
    leaves a stale lock behind; the pid inside is only for the message.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            DataDirLockedError: another process holds it (its pid in the message).
            StoreError: the folder or lock file cannot be created.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the lock file: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirLockedError(str(self.path.parent), pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its pid no longer matters)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


# -- settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """How the daemon runs (not part of the YAML config)."""

    #: seconds between dispatch ticks
    tick_interval: float = 1.0
    #: source updates running at once
    max_workers: int = 32
    #: quiet time after the last change before republishing
    publish_debounce: float = 0.5
    #: longest a republish waits while changes keep coming
    publish_max_delay: float = 5.0
    #: seconds SIGTERM waits for updates in flight
    shutdown_deadline: float = 10.0
    #: how often the retention job runs
    retention_every: timedelta = timedelta(days=1)
    #: watch seed folders and the config file
    watch: bool = True


def with_data_dir(config: Config, data_dir: Path | None) -> Config:
    """``config`` with another data folder (``--data-dir``); a SQLite store moves with it."""
    if data_dir is None:
        return config
    data_dir = data_dir.resolve()
    store_url = config.store_url
    if store_url == f"sqlite:///{config.data_dir / 'aggregator.db'}":
        store_url = f"sqlite:///{data_dir / 'aggregator.db'}"
    return dataclasses.replace(config, data_dir=data_dir, store_url=store_url)


def _topic_map(config: Config) -> dict[str, TopicSpec]:
    return {t.name: t for t in config.topics}


def _post_form(url: str, form: Mapping[str, str]) -> int:
    """POST a form; the WebSub hub is the operator's own setting, not a source URL."""
    data = urllib.parse.urlencode(dict(form)).encode()
    req = urllib.request.Request(  # noqa: S310 - http(s) URL validated by the config
        url, data=data, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return int(resp.status)


async def _post(url: str, form: Mapping[str, str]) -> int:
    return await asyncio.to_thread(_post_form, url, form)


# -- the daemon -------------------------------------------------------------------


class Daemon:
    """The long-running process: scheduler, workers, republisher, watchers, web server.

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
        self.config = config
        # Config.source() is a linear scan: the tick looks sources up by name.
        self._specs = {s.name: s for s in config.sources}
        self.settings = settings or DaemonSettings()
        self._override = data_dir_override
        self._clock = clock
        self.metrics = Metrics()
        self.documents = DocumentStore(topics=_topic_map(config))
        self.ctx: Context | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._rerun: set[str] = set()
        self._dirty: set[str] = set()
        self._index_dirty = True
        self._topic_docs: dict[str, dict[str, Document]] = {}
        self._feeds: dict[str, TopicFeed] = {}
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._failing: dict[str, tuple[str, int]] = {}
        self._last_tick: float | None = None
        self._started = time.time()
        self._old_fetchers: list[Any] = []
        self._watch_stop: asyncio.Event | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._bg: set[asyncio.Task[Any]] = set()
        self.ticks = 0

    # -- health and metrics ----------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` body: ``ok``, or ``degraded`` (failing sources, stalled ticks)."""
        failing = [
            {"source": name, "error": error, "consecutive_failures": n}
            for name, (error, n) in sorted(self._failing.items())
        ]
        now = time.time()
        stall_after = max(10 * self.settings.tick_interval, 30.0)
        reference = self._last_tick if self._last_tick is not None else self._started
        stalled = now - reference > stall_after
        degraded = stalled or any(f["consecutive_failures"] >= 3 for f in failing)  # type: ignore[operator]
        return {
            "status": "degraded" if degraded else "ok",
            "failing": failing,
            "last_tick": (
                datetime.fromtimestamp(self._last_tick, UTC).isoformat()
                if self._last_tick
                else None
            ),
            "ticks_stalled": stalled,
            "in_flight": len(self._in_flight),
            "documents": len(self.documents),
        }

    def metrics_text(self) -> bytes:
        """``/metrics`` in the Prometheus text format."""
        self.metrics.in_flight.set(len(self._in_flight))
        return self.metrics.render()

    # -- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`stop`); return after a clean shutdown.

        Raises:
            StoreError: the store cannot be opened.
        """
        loop = asyncio.get_running_loop()
        ctx = await asyncio.to_thread(open_context, self.config, clock=self._clock)
        # One fetcher for every update: shared connections and per-host limits.
        self.ctx = dataclasses.replace(ctx, fetcher=make_fetcher(self.config))
        try:
            self._load_failing()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
            await self._publish(full=True)
            app = create_app(
                self.documents,
                health=self.health,
                metrics=lambda: (self.metrics_text(), CONTENT_TYPE),
            )
            server = serve(app, host=self.config.server.host, port=self.config.server.port)
            # The daemon owns the signals: uvicorn must not install its own handlers.
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            server_task = asyncio.create_task(server.serve(), name="web")
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
            scheduler.start()
            publisher = asyncio.create_task(self._publisher(), name="publisher")
            reloader = asyncio.create_task(self._reloader(), name="reloader")
            config_watch = asyncio.create_task(self._watch_config(), name="config-watch")
            self._restart_seed_watch()
            log.info(
                "running: %d sources, %d topics, serving %s",
                len(self.config.sources),
                len(self.config.topics),
                self.config.server.base_url,
            )
            await self._stopping.wait()
            log.info("stopping: %d updates in flight", len(self._in_flight))
            scheduler.shutdown(wait=False)
            for task in (reloader, config_watch):
                task.cancel()
            if self._watch_stop is not None:
                self._watch_stop.set()
            await self._drain()
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            for task in (reloader, config_watch, *([self._watch_task] if self._watch_task else [])):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._publish()
            server.should_exit = True
            await server_task
            log.info("stopped")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._close()

    def stop(self) -> None:
        """Begin a clean shutdown (what SIGTERM does)."""
        self._stopping.set()

    async def _drain(self) -> None:
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_deadline)
        if pending:
            log.warning(
                "shutdown deadline of %.0fs passed: abandoning %d updates (redone at next start)",
                self.settings.shutdown_deadline,
                len(pending),
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=2)

    async def _close(self) -> None:
        if self.ctx is None:
            return
        fetchers = [*self._old_fetchers, self.ctx.fetcher]
        for fetcher in fetchers:
            if fetcher is not None:
                with contextlib.suppress(Exception):
                    await fetcher.aclose()
        self.ctx.close()

    def _load_failing(self) -> None:
        assert self.ctx is not None
        for st in self.ctx.store.states():
            if st.consecutive_failures:
                self._failing[st.name] = (st.last_error or "", st.consecutive_failures)
        self.metrics.sources.set(len(self.config.sources))
        self.metrics.failing.set(len(self._failing))

    # -- dispatch --------------------------------------------------------------------

    async def _tick(self) -> None:
        """Start every due source not already running, up to the worker limit."""
        if self._stopping.is_set() or self.ctx is None:
            return
        started = time.perf_counter()
        due = await asyncio.to_thread(self.ctx.store.due_sources, self._clock())
        waiting = self.dispatch(due)
        self.ticks += 1
        self._last_tick = time.time()
        self.metrics.last_tick.set(self._last_tick)
        self.metrics.queue_depth.set(waiting)
        log.debug(
            "tick: %d due, %d waiting, %d in flight in %.1f ms",
            len(due),
            waiting,
            len(self._in_flight),
            (time.perf_counter() - started) * 1000,
        )

    def dispatch(self, due: Iterable[str]) -> int:
        """Start updates for ``due`` source names; return how many wait for a free worker.

        Sources already in flight and names no longer configured are skipped.
        """
        waiting = 0
        for name in due:
            if name in self._in_flight:
                continue
            spec = self._specs.get(name)
            if spec is None:
                continue
            if len(self._in_flight) >= self.settings.max_workers:
                waiting += 1
                continue
            self._start(spec)
        return waiting

    def request_update(self, name: str) -> None:
        """Update a source now (a seed file changed), or right after its update in flight."""
        if self._stopping.is_set():
            return
        if name in self._in_flight:
            self._rerun.add(name)
            return
        spec = self._specs.get(name)
        if spec is not None:
            self._start(spec)

    def _start(self, spec: SourceSpec) -> None:
        task = asyncio.create_task(self._work(spec), name=f"update:{spec.name}")
        self._in_flight[spec.name] = task

    async def _work(self, spec: SourceSpec) -> None:
        assert self.ctx is not None
        try:
            result = await update_source(spec, self.ctx)
            self._record(result)
        finally:
            self._in_flight.pop(spec.name, None)
        if spec.name in self._rerun and not self._stopping.is_set():
            self._rerun.discard(spec.name)
            self.request_update(spec.name)

    def _record(self, result: SourceResult) -> None:
        failed = result.outcome in (Outcome.ERROR, Outcome.GONE)
        extra = {
            "source": result.source,
            "outcome": result.outcome.value,
            "duration": round(result.duration, 3),
            "new": result.new,
            "updated": result.updated,
            "removed": result.removed,
        }
        if failed:
            previous = self._failing.get(result.source, ("", 0))[1]
            self._failing[result.source] = (result.error or result.outcome.value, previous + 1)
            log.warning(
                "%s: %s after %.2fs: %s",
                result.source,
                result.outcome.value,
                result.duration,
                result.error,
                extra=extra,
            )
        else:
            self._failing.pop(result.source, None)
            log.info(
                "%s: %s, %d new, %d updated, %d unchanged, %d removed, %d problems in %.2fs",
                result.source,
                result.outcome.value,
                result.new,
                result.updated,
                result.unchanged,
                result.removed,
                len(result.problems),
                result.duration,
                extra=extra,
            )
        for problem in result.problems:
            log.warning("%s", problem, extra={"source": result.source})
        self.metrics.record_update(
            result.outcome.value,
            entries=result.new + result.updated,
            merged=result.merged,
            seconds=result.duration,
        )
        self.metrics.failing.set(len(self._failing))
        if result.dirty_topics:
            self.mark_dirty(result.dirty_topics)

    # -- publishing ---------------------------------------------------------------------

    def mark_dirty(self, topics: Iterable[str], *, index: bool = True) -> None:
        """Republish these topics (and the index) after the debounce."""
        self._dirty.update(topics)
        self._index_dirty = self._index_dirty or index
        self._changed.set()

    async def _publisher(self) -> None:
        while True:
            await self._changed.wait()
            first = time.monotonic()
            # Debounce: wait for a quiet moment, but never longer than the cap.
            while True:
                self._changed.clear()
                remaining = self.settings.publish_max_delay - (time.monotonic() - first)
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(
                        self._changed.wait(), min(self.settings.publish_debounce, remaining)
                    )
                except TimeoutError:
                    break
            try:
                await self._publish()
            except Exception:  # a failed publish must not stop the daemon; retried on next change
                log.exception("publishing failed")

    async def _publish(self, *, full: bool = False) -> None:
        """Re-render dirty topics (or all), swap them into the served set, write the static tree."""
        assert self.ctx is not None
        if not full and not self._dirty and not self._index_dirty:
            return
        started = time.perf_counter()
        config = self.config
        topics = _topic_map(config)
        dirty = set(topics) if full else self._dirty & set(topics)
        self._dirty.clear()
        self._index_dirty = False
        before = dict(self.documents.documents)
        store = self.ctx.store

        def render() -> dict[str, Document]:
            site = site_for(config)
            for name in list(self._feeds):
                if name not in topics:
                    del self._feeds[name]
                    self._topic_docs.pop(name, None)
            for name, spec in topics.items():
                if name in dirty or name not in self._feeds or self._feeds[name].topic != spec:
                    feed = TopicFeed(topic=spec, stories=tuple(store.topic_stories(name)))
                    self._feeds[name] = feed
                    self._topic_docs[name] = render_topic(site, feed)
            feeds = [self._feeds[t.name] for t in config.topics]
            docs = render_site_pages(site, feeds)
            for name in topics:
                docs.update(self._topic_docs[name])
            return docs

        docs = await asyncio.to_thread(render)
        self.documents.replace(docs, topics=topics)
        out_dir = config.data_dir / "public"
        try:
            await asyncio.to_thread(write_tree, out_dir, docs)
        except (OSError, AggregatorError) as exc:
            log.error("%s: cannot write the published files: %s", out_dir, exc)
        elapsed = time.perf_counter() - started
        self.metrics.publish_seconds.observe(elapsed)
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
                self._bg.add(task)
                task.add_done_callback(self._bg.discard)

    async def _ping(self, hub: str, urls: list[str]) -> None:
        for result in await ping_hub(hub, urls, post=_post):
            if not result.ok:
                log.warning("%s", result.error)

    # -- retention -------------------------------------------------------------------

    async def _retention(self) -> None:
        """Prune entries older than ``retention.max_age``, except stories still published."""
        if self.ctx is None or self._stopping.is_set():
            return
        ctx = self.ctx
        now = self._clock()
        before = now - self.config.retention_max_age
        topics = list(self.config.topics)

        def prune() -> tuple[int, frozenset[str]]:
            old = ctx.store.old_entries(before)
            if not old:
                return 0, frozenset()
            kept: set[str] = set()
            for topic in topics:
                kept.update(s.id for s in ctx.store.topic_stories(topic.name)[: topic.max_items])
            by_source: dict[str, list[str]] = {}
            for source, identity, story_id in old:
                if story_id not in kept:
                    by_source.setdefault(source, []).append(identity)
            pruned = 0
            dirty: frozenset[str] = frozenset()
            for source, identities in by_source.items():
                report = ctx.store.remove_entries(
                    source, identities, now=now, reason="pruned", matchers=ctx.matchers
                )
                pruned += len(identities)
                dirty |= report.dirty_topics
            return pruned, dirty

        pruned, dirty = await asyncio.to_thread(prune)
        if pruned:
            log.info("retention: pruned %d entries older than %s", pruned, before.isoformat())
            self.mark_dirty(dirty)

    # -- reload -------------------------------------------------------------------------

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
        assert self.ctx is not None
        try:
            new = await asyncio.to_thread(load_config, self.config.path)
        except ConfigError as exc:
            log.error("reload refused, still running on the previous config: %s", exc)
            return False
        new = with_data_dir(new, self._override)
        old = self.config
        if (new.data_dir, new.store_url) != (old.data_dir, old.store_url):
            log.warning("data_dir and store changes need a restart; keeping %s", old.data_dir)
            new = dataclasses.replace(new, data_dir=old.data_dir, store_url=old.store_url)
        if (new.server.host, new.server.port) != (old.server.host, old.server.port):
            log.warning("server address changes need a restart; serving %s", old.server.base_url)
        ctx = self.ctx
        matchers = build_matchers(new.topics)
        now = self._clock()

        def apply() -> frozenset[str]:
            removed = ctx.store.sync_sources(new.sources, now=now)
            synced = ctx.store.sync_topics({t.name: t.query for t in new.topics}, matchers, now=now)
            return removed.dirty_topics | synced

        dirty = await asyncio.to_thread(apply)
        fetch_settings = ("allow_networks", "user_agent", "max_connections", "max_per_host")
        fetcher = ctx.fetcher
        if fetcher is not None and any(getattr(new, k) != getattr(old, k) for k in fetch_settings):
            # Updates in flight keep the old fetcher; it is closed at shutdown.
            self._old_fetchers.append(fetcher)
            fetcher = make_fetcher(new)
        self.ctx = dataclasses.replace(ctx, config=new, matchers=matchers, fetcher=fetcher)
        self.config = new
        self._specs = {s.name: s for s in new.sources}
        changed_topics = {t.name for t in new.topics if old.topic(t.name) != t}
        self.mark_dirty(dirty | changed_topics)
        self.metrics.sources.set(len(new.sources))
        for name in list(self._failing):
            if new.source(name) is None:
                del self._failing[name]
        self.metrics.failing.set(len(self._failing))
        old_folders = {s.name: s.location for s in old.sources if s.kind is SourceKind.FILES}
        new_folders = {s.name: s.location for s in new.sources if s.kind is SourceKind.FILES}
        if old_folders != new_folders:
            self._restart_seed_watch()
        log.info(
            "reloaded %s: %d sources, %d topics",
            new.path,
            len(new.sources),
            len(new.topics),
        )
        return True

    # -- watching ----------------------------------------------------------------------

    def _restart_seed_watch(self) -> None:
        if not self.settings.watch:
            return
        if self._watch_stop is not None:
            self._watch_stop.set()
        stop = asyncio.Event()
        self._watch_stop = stop
        self._watch_task = asyncio.create_task(self._watch_seeds(stop), name="seed-watch")

    async def _watch_seeds(self, stop: asyncio.Event) -> None:
        folders = {
            s.name: Path(s.location)
            for s in self.config.sources
            if s.kind is SourceKind.FILES and Path(s.location).is_dir()
        }
        if not folders:
            return
        try:
            async for changes in awatch(
                *folders.values(), stop_event=stop, debounce=200, step=50, recursive=True
            ):
                touched = {
                    name
                    for _change, path in changes
                    for name, folder in folders.items()
                    if Path(path).is_relative_to(folder)
                }
                for name in sorted(touched):
                    log.debug("%s: seed folder changed", name, extra={"source": name})
                    self.request_update(name)
        except Exception:  # watching is an accelerator: polling still picks changes up
            log.exception("watching the seed folders failed; changes are seen at the next poll")

    async def _watch_config(self) -> None:
        if not self.settings.watch:
            return
        path = Path(self.config.path).resolve()
        # Watch the folder, not the file: editors replace the file by renaming.
        try:
            async for changes in awatch(
                path.parent, stop_event=self._stopping, debounce=300, step=50, recursive=False
            ):
                if any(Path(p).resolve() == path for _c, p in changes):
                    log.info("%s changed: reloading", path)
                    self._reload_requested.set()
        except Exception:
            log.exception("watching the config file failed; use SIGHUP to reload")


# -- entry points ----------------------------------------------------------------


def run_daemon(
    config: Config,
    *,
    data_dir: Path | None = None,
    settings: DaemonSettings | None = None,
) -> None:
    """Take the data folder's lock and run the daemon until SIGTERM/SIGINT.

    Raises:
        DataDirLockedError: another daemon runs on the same data folder.
        StoreError: the store cannot be opened.
    """
    config = with_data_dir(config, data_dir)
    with DataDirLock(config.data_dir):
        daemon = Daemon(config, settings, data_dir_override=data_dir)
        asyncio.run(daemon.run())


def serve_documents(config: Config, *, data_dir: Path | None = None) -> None:
    """Serve what the store holds, rendered once, without polling (``aggregator serve``).

    Raises:
        StoreError: the store cannot be opened.
    """
    config = with_data_dir(config, data_dir)

    async def main() -> None:
        # open_context syncs the config into the store first, so a topic whose
        # query changed since the last run is served with its new membership.
        ctx = await asyncio.to_thread(open_context, config)
        try:
            docs = await asyncio.to_thread(render_all, ctx)
        finally:
            ctx.close()
        documents = DocumentStore(docs, topics=_topic_map(config))
        app = create_app(documents)
        server = serve(app, host=config.server.host, port=config.server.port)
        log.info("serving %d documents at %s", len(docs), config.server.base_url)
        await server.serve()

    asyncio.run(main())
