"""The validated configuration's frozen value types; re-exported by :mod:`aggregator.config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aggregator.model import NearDupSettings, SourceSpec, TopicSpec

__all__ = ["Config", "IngestSpec", "ServerSpec", "SiteSpec", "WebSubSpec", "WorkersSpec"]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    host: str
    port: int
    #: absolute URL ending in "/"
    base_url: str
    #: the token that opens ``/status``; None: the page is not served
    admin_token: str | None = field(default=None, repr=False)
    #: bytes of documents held in memory for serving (the rest are read from files)
    cache_size: int = 4 * 2**20


@dataclass(frozen=True, slots=True)
class SiteSpec:
    title: str
    description: str
    author_name: str
    author_email: str | None
    hub: str | None
    language: str | None


@dataclass(frozen=True, slots=True)
class IngestSpec:
    """How the ingest engine runs (``ingest:``); none of it changes a result."""

    #: parse/normalise processes; None = one per core (update: one fewer, at least one),
    #: 0 = threads in this process
    workers: int | None = None
    fast_parser: bool = True
    skip_unchanged_body: bool = True
    #: stop idle worker processes after this long; None keeps them
    idle_after: timedelta | None = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class WorkersSpec:
    """Scale-out settings (``workers:``); only meaningful with a PostgreSQL store."""

    #: workers poll; ``aggregator run`` serves and publishes only
    enabled: bool = False
    #: source updates one worker process runs at once
    concurrency: int = 32
    dispatch_every: timedelta = timedelta(seconds=5)
    stalled_after: timedelta = timedelta(seconds=30)
    keep_jobs: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WebSubSpec:
    """Subscribing to sources' WebSub hubs (``websub:``)."""

    #: subscribe at all (default: on when ``server.base_url`` is set)
    subscribe: bool = False
    #: the polling interval of a source while its subscription is active
    fallback_interval: timedelta = timedelta(hours=6)
    #: the lease asked of hubs
    lease: timedelta = timedelta(days=10)


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration."""

    #: the file it was loaded from
    path: Path
    data_dir: Path
    #: SQLAlchemy URL of the store
    store_url: str
    server: ServerSpec
    site: SiteSpec
    allow_networks: tuple[str, ...]
    user_agent: str | None
    max_connections: int
    max_per_host: int
    permanent_redirect_polls: int
    min_interval: timedelta
    max_interval: timedelta
    sources: tuple[SourceSpec, ...]
    topics: tuple[TopicSpec, ...]
    #: entries older than this are pruned by the daemon's retention job
    retention_max_age: timedelta = timedelta(days=90)
    #: near-duplicate story matching (the ``dedup:`` section)
    dedup: NearDupSettings = field(default_factory=NearDupSettings)
    ingest: IngestSpec = IngestSpec()
    workers: WorkersSpec = WorkersSpec()
    #: the files listed under ``include:``, resolved (a daemon watches them too)
    included: tuple[Path, ...] = ()
    websub: WebSubSpec = WebSubSpec()

    def source(self, name: str) -> SourceSpec | None:
        return next((s for s in self.sources if s.name == name), None)

    def topic(self, name: str) -> TopicSpec | None:
        return next((t for t in self.topics if t.name == name), None)
