"""Reload planning: what applying a new config changes, decided from the two configs alone."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aggregator.config import Config
from aggregator.model import SourceKind, SourceSpec

__all__ = ["FETCH_SETTINGS", "ReloadPlan", "plan_reload"]

#: the config fields the shared HTTP fetcher is built from
FETCH_SETTINGS = ("allow_networks", "user_agent", "max_connections", "max_per_host")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload does; the daemon carries it out."""

    #: the config to run on: the new one, with what needs a restart kept from the old
    config: Config
    #: one line per change refused until a restart
    warnings: tuple[str, ...] = ()
    #: sources in the new config only
    added: frozenset[str] = frozenset()
    #: sources in the old config only (their stories leave the feeds)
    removed: frozenset[str] = frozenset()
    #: sources in both whose spec changed (a new location starts the source over)
    changed: frozenset[str] = frozenset()
    #: topics new or changed: republished
    topics: frozenset[str] = frozenset()
    #: the fetch settings changed: updates from now on use a new fetcher
    new_fetcher: bool = False
    #: the set of watched seed folders changed
    rewatch: bool = False
    #: seed folders added or moved: reconciled at once
    reconcile: frozenset[str] = frozenset()


def _watched(sources: dict[str, SourceSpec]) -> dict[str, str]:
    """The seed folders watched: a disabled one is not (enabling it again reconciles it)."""
    return {n: s.location for n, s in sources.items() if s.kind is SourceKind.FILES and s.enabled}


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Decide what applying ``new`` over ``old`` changes (pure).

    The data folder, the store and the server address are bound at start: a
    new value is reported in ``warnings`` and the old one kept.

    Args:
        old: the config the daemon runs on.
        new: the config just loaded (with any ``--data-dir`` applied).

    Returns:
        The plan.
    """
    warnings: list[str] = []
    if (new.data_dir, new.store_url) != (old.data_dir, old.store_url):
        warnings.append(f"data_dir and store changes need a restart; keeping {old.data_dir}")
        new = dataclasses.replace(new, data_dir=old.data_dir, store_url=old.store_url)
    if (new.server.host, new.server.port) != (old.server.host, old.server.port):
        warnings.append(f"server address changes need a restart; serving {old.server.base_url}")
    if new.server.admin_token != old.server.admin_token:
        warnings.append("server.admin_token changes need a restart; /status keeps the old one")
    old_sources = {s.name: s for s in old.sources}
    new_sources = {s.name: s for s in new.sources}
    old_folders = _watched(old_sources)
    new_folders = _watched(new_sources)
    old_topics = {t.name: t for t in old.topics}
    return ReloadPlan(
        config=new,
        warnings=tuple(warnings),
        added=frozenset(new_sources.keys() - old_sources.keys()),
        removed=frozenset(old_sources.keys() - new_sources.keys()),
        changed=frozenset(
            n for n, s in new_sources.items() if n in old_sources and old_sources[n] != s
        ),
        topics=frozenset(t.name for t in new.topics if old_topics.get(t.name) != t),
        new_fetcher=any(getattr(new, k) != getattr(old, k) for k in FETCH_SETTINGS),
        rewatch=old_folders != new_folders,
        reconcile=frozenset(n for n, loc in new_folders.items() if old_folders.get(n) != loc),
    )
