"""One source's update, whatever its kind, and the context it runs in.

``update_source(spec, ctx)`` is one source's update. It never raises for a
problem of that source: a failure is a :class:`SourceResult` value, recorded
on the source's state with the time of the next attempt.

::

    context    the config, store, stages, fetcher and clock; apply_config
    resync     what a reload re-applies: topics' signatures, sources' rules
    kinds      the SourceUpdater Protocol, the registry by kind, what a config needs loaded
    runner     update_source and update_all over the registry, the schedule, the writer
    remote     URL sources: polling, redirects, cache hints (fetching: discovery;
               articles: full_content pages)
    seeds      seed folders
    write      one source's work for the one writer, one record per item
    service    publishing, status and retention from a context

A new kind of source is one module with a ``SourceUpdater`` and one
:func:`~aggregator.update.kinds.register` line below.
"""

from __future__ import annotations

from aggregator.engine.match import build_matchers
from aggregator.model import SourceKind
from aggregator.update.context import (
    Context,
    Stages,
    apply_config,
    load_again,
    make_fetcher,
    open_context,
    topic_signatures,
    utcnow,
)
from aggregator.update.fetching import discover_url
from aggregator.update.kinds import needs_fetcher, preload, register
from aggregator.update.remote import RemoteFeeds
from aggregator.update.runner import update_all, update_source
from aggregator.update.seeds import SeedFolders
from aggregator.update.service import (
    prune_old,
    publish_export,
    publish_static,
    read_status,
    render_all,
    site_for,
    status_page,
    topic_feeds,
)

__all__ = [
    "Context",
    "Stages",
    "apply_config",
    "build_matchers",
    "discover_url",
    "load_again",
    "make_fetcher",
    "needs_fetcher",
    "open_context",
    "preload",
    "prune_old",
    "publish_export",
    "publish_static",
    "read_status",
    "render_all",
    "site_for",
    "status_page",
    "topic_feeds",
    "topic_signatures",
    "update_all",
    "update_source",
    "utcnow",
]

register(SourceKind.URL, RemoteFeeds())
register(SourceKind.FILES, SeedFolders())
