"""The glue around updates: publishing, the operator's status and retention, from a context."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.config import Config
from aggregator.status.snapshot import Status
from aggregator.status.snapshot import build as build_status
from aggregator.store import Store
from aggregator.update.cadence import subscription_rows, webhook_rows
from aggregator.update.context import Context
from aggregator.update.retention import RetentionReport, prune

if TYPE_CHECKING:
    # Publishing loads on first use (in a worker process, for the daemon).
    from aggregator.publish import Document, Site, TopicFeed, WriteReport
    from aggregator.publish.export import PublishReport

__all__ = [
    "prune_old",
    "publish_export",
    "publish_static",
    "read_status",
    "render_all",
    "site_for",
    "topic_feeds",
]

log = logging.getLogger(__name__)


def site_for(config: Config) -> Site:
    """The publishing side's view of the config."""
    from aggregator.publish import Site

    s = config.site
    return Site(
        base_url=config.server.base_url,
        title=s.title,
        description=s.description,
        author_name=s.author_name,
        author_email=s.author_email,
        hub=s.hub,
        language=s.language,
    )


def topic_feeds(ctx: Context, names: Iterable[str] | None = None) -> list[TopicFeed]:
    """Every (or the named) configured topic with all its stories."""
    from aggregator.publish import TopicFeed

    wanted = set(names) if names is not None else None
    return [
        TopicFeed(topic=t, stories=tuple(ctx.store.topic_stories(t.name)))
        for t in ctx.config.topics
        if wanted is None or t.name in wanted
    ]


def render_all(ctx: Context) -> dict[str, Document]:
    """Every published document: index, OPML, and each topic's formats and archives."""
    from aggregator.publish import render_site

    return render_site(site_for(ctx.config), topic_feeds(ctx))


def publish_static(ctx: Context, out_dir: Path | None = None) -> WriteReport:
    """Bring the export under ``out_dir`` (default ``data_dir/public``) up to date.

    Every topic is checked, but only documents whose stories changed are
    rendered (:mod:`aggregator.publish.incremental`), and only changed bytes
    are written: unchanged files keep their bytes and mtimes.

    Raises:
        PublishError: the export cannot be written.
    """
    return publish_export(ctx, out_dir).files


def publish_export(ctx: Context, out_dir: Path | None = None) -> PublishReport:
    """:func:`publish_static`, returning the whole report (what the server then serves)."""
    from aggregator.publish.incremental import publish

    target = out_dir or ctx.config.data_dir / "public"
    return publish(target, site_for(ctx.config), ctx.config.topics, ctx.store)


def read_status(
    config: Config,
    store: Store,
    *,
    now: datetime,
    publishes: Iterable[tuple[datetime, float]] = (),
) -> Status:
    """The operator's snapshot of the configured sources and topics, read from the store.

    Blocking (it reads the store): run it in a thread from async code. It
    only reads, so it runs beside a daemon writing the same store.
    """
    return build_status(
        config.sources,
        config.topics,
        states={s.name: s for s in store.states()},
        history=store.poll_history([s.name for s in config.sources]),
        topic_counts=store.topic_counts(),
        now=now,
        publishes=publishes,
    )


def status_page(
    ctx: Context, *, now: datetime, publishes: Iterable[tuple[datetime, float]] = ()
) -> bytes:
    """The ``/status`` page of a context's config and store (blocking: it reads the store)."""
    # Jinja2 loads with the first request for the page, not with the daemon.
    from aggregator.publish import render_status_page

    status = read_status(ctx.config, ctx.store, now=now, publishes=publishes)
    return render_status_page(
        status,
        title=ctx.config.site.title,
        webhooks=webhook_rows(ctx.store),
        subscriptions=subscription_rows(ctx.store),
    )


def prune_old(ctx: Context, *, now: datetime) -> RetentionReport:
    """One retention pass with a context's store, topics and ``retention.max_age``, logged."""
    report = prune(
        ctx.store,
        ctx.config.topics,
        ctx.matchers,
        now=now,
        max_age=ctx.config.retention_max_age,
    )
    if report.pruned:
        log.info(
            "retention: pruned %d entries older than %s", report.pruned, report.before.isoformat()
        )
    return report
