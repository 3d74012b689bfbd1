"""What an update runs in: the config, the store, the engine's stages, the fetcher and the clock.

:func:`open_context` makes one at start-up; :func:`apply_config` brings a
context to a (new) config, at start-up and at every reload alike: the
store's sources and topics are synced and the topic predicates rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aggregator.config import Config, load_config
from aggregator.engine import CpuPool, Writer, default_workers, release_memory
from aggregator.engine.heap import malloc_trim
from aggregator.engine.match import build_matchers
from aggregator.errors import AggregatorError
from aggregator.model import Item
from aggregator.store import IngestReport, Store, database, open_store
from aggregator.update.resync import rule_judge, rule_signatures, topic_signatures
from aggregator.update.write import Write, applier, weigh

if TYPE_CHECKING:
    from aggregator.sources.http import Fetcher

__all__ = [
    "Context",
    "Stages",
    "apply_config",
    "load_again",
    "make_fetcher",
    "open_context",
    "stages_of",
    "topic_signatures",
    "utcnow",
]

log = logging.getLogger(__name__)

#: Entries committed in one transaction at most. Everything a batch decides
#: on (its items, their lookups, the story index rows) is held at once, so
#: this bounds the writer's memory; past a few hundred entries a bigger batch
#: saves no measurable time on either store.
WRITE_BATCH = 1000
#: Source updates parsed and waiting for the writer at most: each holds its
#: parsed entries, so this bounds the memory between the stages. A source
#: waits for room here while the writer is behind, which is all a queue
#: longer than a batch or two could do.
WRITES_QUEUED = 8
#: what the daemon's publishing process imports as it starts: the exports it
#: runs (``aggregator.runtime.publishing:publish_store``), not the parsers
PUBLISHER_PRELOAD = ("aggregator.runtime.publishing",)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Stages:
    """The ingest engine's stages behind the fetch: parse/normalise workers and one writer.

    Shared by every :class:`Context` derived from one :func:`open_context`
    (a reload replaces the config, not the stages).
    """

    pool: CpuPool
    writer: Writer[Write, IngestReport]
    #: the daemon's exports run in a process of their own (None: in ``pool``)
    publisher: CpuPool | None = None
    #: skip parsing a 200 body identical to the last one parsed
    skip_unchanged_body: bool = True
    #: let the strict fast parser take the documents it can
    fast_parser: bool = True

    @classmethod
    def for_store(
        cls, store: Store, config: Config, *, worker_niceness: int = 0, publish_apart: bool = False
    ) -> Stages:
        """The stages for ``store``; ``publish_apart``: a publishing process beside the parse
        workers (see :func:`open_context`)."""
        workers = config.ingest.workers
        if workers is None:
            # One worker per core but one: the process owning the pool
            # fetches, decodes and writes beside them (300 feeds on 2 cores:
            # one worker as fast as two, 30 MiB less at the peak), and a
            # daemon's publisher takes the place of the last one.
            workers = default_workers(spare=1)
        idle_after = (
            config.ingest.idle_after.total_seconds()
            if config.ingest.idle_after is not None
            else None
        )
        pool = CpuPool(workers, niceness=worker_niceness, idle_after=idle_after)
        publisher = None
        if publish_apart and pool.processes:
            publisher = CpuPool(
                1,
                niceness=worker_niceness,
                idle_after=idle_after,
                preload=PUBLISHER_PRELOAD,
                name="publishing worker",
            )
            publisher.take_turns_with(pool)
        return cls(
            pool=pool,
            writer=Writer(
                applier(store),
                weigh=weigh,
                max_batch=WRITE_BATCH,
                capacity=WRITES_QUEUED,
                # A batch's rows, lookups and parsed entries leave holes all
                # over the C heap once freed; glibc keeps those pages mapped
                # until asked (0.5 ms a call, the GIL released): update's main
                # process at the peak of 300 feeds' first pass 74.0-74.4 MiB
                # against 75-76.
                after_batch=malloc_trim,
            ),
            publisher=publisher,
            skip_unchanged_body=config.ingest.skip_unchanged_body,
            fast_parser=config.ingest.fast_parser,
        )

    def close(self) -> None:
        self.writer.close()
        self.pool.close()
        if self.publisher is not None:
            self.publisher.close()


@dataclass(frozen=True)
class Context:
    """What an update needs: the config, the store, the engine's stages and the clock.

    Immutable: a reload derives a new one with :func:`dataclasses.replace`.
    """

    config: Config
    store: Store
    matchers: dict[str, Callable[[Item], bool]] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    #: shared HTTP client; made on demand for remote sources
    fetcher: Fetcher | None = None
    #: made by open_context; a bare Context gets its own on first use
    stages: Stages | None = None

    def close(self) -> None:
        """Finish queued writes, stop the workers and close the store."""
        if self.stages is not None:
            self.stages.close()
        self.store.close()


def stages_of(ctx: Context) -> Stages:
    """The context's stages.

    Raises:
        RuntimeError: a bare context, not made by :func:`open_context`.
    """
    if ctx.stages is None:
        raise RuntimeError("this Context has no ingest stages: make it with open_context")
    return ctx.stages


def open_context(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    worker_niceness: int = 0,
    migrate_apart: bool = False,
    release_when_idle: bool = False,
    publish_apart: bool = False,
) -> Context:
    """Open the store, sync configured sources and topics into it, and set up the stages.

    The stages start lazily: worker processes on the first document to parse,
    the writer thread on the first write. ``worker_niceness``: see :class:`CpuPool`.
    ``migrate_apart``: a store behind the newest schema is migrated in a child
    process (see :func:`aggregator.store.database.migrate_apart`), for a
    process that lives long. ``release_when_idle``: the worker pool gives memory
    back (:func:`~aggregator.engine.collector.release_memory`) when it stops idle.
    ``publish_apart``: exports run in a worker process of their own (the
    daemon's), never in a parse worker: only that process then imports the
    renderer and opens the store, where each parse worker did as soon as it
    ran one export (about 25 MiB each, at the ingest's peak).

    Raises:
        StoreError: the store cannot be opened.
    """
    if migrate_apart:
        database.migrate_apart(config.store_url)
    store = open_store(config.store_url, near=config.dedup)
    stages = Stages.for_store(
        store, config, worker_niceness=worker_niceness, publish_apart=publish_apart
    )
    if release_when_idle:
        # A burst of work over, a long-lived process gives back what it held for it.
        stages.pool.on_stop = release_memory
        if stages.publisher is not None:
            stages.publisher.on_stop = release_memory
    ctx = Context(config=config, store=store, clock=clock, stages=stages)
    ctx, _dirty = apply_config(ctx, config, now=clock())
    return ctx


def load_again(current: Config) -> Config | None:
    """The config file of ``current`` read again, for a process bound to its store (SIGHUP).

    The store and the data folder are bound at start: a change to either is
    logged and the running ones kept. None, logged, when the file does not
    load: the caller keeps ``current``.
    """
    try:
        new = load_config(current.path)
    except AggregatorError as exc:
        log.error("reload refused, the running config is kept: %s", exc)
        return None
    if (new.store_url, new.data_dir) != (current.store_url, current.data_dir):
        log.warning("store and data_dir changes need a restart; keeping %s", current.data_dir)
        new = replace(new, store_url=current.store_url, data_dir=current.data_dir)
    return new


def apply_config(ctx: Context, config: Config, *, now: datetime) -> tuple[Context, frozenset[str]]:
    """Bring the store and the topic predicates to ``config``; blocking (it writes the store).

    The stored sources become the configured ones (a removed source's
    entries go, unless ``remove --keep-stories`` kept them); a topic whose
    signature changed re-matches every stored story, in the stages' worker
    processes; a source whose ``rules`` changed has them re-applied to its
    stored entries (here), and its next poll reads everything again.

    Returns:
        The context on ``config`` with its new predicates (the fetcher is
        the caller's to replace), and the topics whose stories changed.
    """
    matchers = build_matchers(config.topics, clock=ctx.clock)
    removed = ctx.store.sync_sources(config.sources, now=now)
    rematch = matchers.in_pool(ctx.stages.pool) if ctx.stages else matchers
    synced = ctx.store.sync_topics(topic_signatures(config.topics), rematch, now=now)
    ruled = ctx.store.sync_rules(
        rule_signatures(config.sources),
        rule_judge(config.sources, now),
        now=now,
        matchers=matchers,
    )
    dirty = removed.dirty_topics | synced | ruled.dirty_topics
    return replace(ctx, config=config, matchers=matchers), dirty


def make_fetcher(config: Config) -> Fetcher:
    """The HTTP fetcher configured from the config's fetch settings."""
    # httpx loads with the first fetcher: a daemon of seed folders never needs it.
    from aggregator.sources.http import Fetcher

    kwargs: dict[str, object] = {}
    if config.user_agent:
        kwargs["user_agent"] = config.user_agent
    return Fetcher(
        allow_networks=config.allow_networks,
        max_connections=config.max_connections,
        max_per_host=config.max_per_host,
        **kwargs,  # type: ignore[arg-type]
    )
