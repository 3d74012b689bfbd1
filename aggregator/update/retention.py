"""Retention: prune entries older than the configured age, except stories still published.

The poll history older than the same age goes too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.model import Item, TopicSpec
from aggregator.store import Store

__all__ = ["RetentionReport", "prune"]


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one retention pass removed."""

    #: entries older than this were candidates
    before: datetime
    #: entries removed
    pruned: int = 0
    #: topics whose membership changed
    dirty_topics: frozenset[str] = frozenset()
    #: poll history rows removed
    polls: int = 0


def prune(
    store: Store,
    topics: Sequence[TopicSpec],
    matchers: Mapping[str, Callable[[Item], bool]],
    *,
    now: datetime,
    max_age: timedelta,
) -> RetentionReport:
    """Remove entries of stories published more than ``max_age`` before ``now``, and old polls.

    A story still in its topic's current feed (among its ``max_items`` newest)
    keeps its entries however old it is: pruning never changes a served feed's
    length. Pruned entries are never re-imported (the store keeps a tombstone).

    Args:
        store: the store to prune.
        topics: the configured topics, whose current feeds are kept.
        matchers: to re-match a story whose canonical entry is pruned.
        now: the current time.
        max_age: the configured ``retention.max_age``.

    Returns:
        How many entries went, and the topics to republish.
    """
    before = now - max_age
    polls = store.prune_polls(before)
    old = store.old_entries(before)
    if not old:
        return RetentionReport(before=before, polls=polls)
    kept: set[str] = set()
    for topic in topics:
        kept.update(store.newest_story_ids(topic.name, topic.max_items))
    by_source: dict[str, list[str]] = {}
    for source, identity, story_id in old:
        if story_id not in kept:
            by_source.setdefault(source, []).append(identity)
    pruned = 0
    dirty: frozenset[str] = frozenset()
    for source, identities in by_source.items():
        report = store.remove_entries(
            source, identities, now=now, reason="pruned", matchers=matchers
        )
        pruned += len(identities)
        dirty |= report.dirty_topics
    return RetentionReport(before=before, pruned=pruned, dirty_topics=dirty, polls=polls)
