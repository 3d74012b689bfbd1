"""Merging stories that one entry bridges: the oldest story keeps its id, the others join it.

An entry that is a near-duplicate of two stored stories shows they are one
story told twice; which of them it met first depends only on arrival order.
Merging them makes the clusters the same whatever the order. The oldest
story (first seen, then the smaller id) wins, so a published id that
subscribers already hold survives; the younger stories' entries, join
records and tombstones move to it, and the younger ids leave their topics.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store import entries as entry_ops
from aggregator.store import membership
from aggregator.store.schema import entries, stories, story_joins, tombstones
from aggregator.store.values import TopicMatchers

__all__ = ["merge_stories"]


def merge_stories(
    conn: Connection,
    story_ids: Iterable[str],
    *,
    now: datetime,
    matchers: TopicMatchers | None,
) -> tuple[str, frozenset[str]]:
    """Merge stories into the oldest of them, inside the caller's transaction.

    The winner's canonical entry is then chosen again by the canonical rule
    (the fullest text, then the earliest seen), and its topics re-derived.

    Args:
        conn: a write transaction.
        story_ids: the stories to merge (ids that no longer exist are ignored).
        now: the time of the merge.
        matchers: topic predicates (None keeps the winner's topics as they are).

    Returns:
        The winning story id, and the topics to republish: the ones every
        merged story was in, and the winner's after the merge.
    """
    wanted = sorted(set(story_ids))
    rows = conn.execute(
        sa.select(stories.c.id, stories.c.first_seen).where(stories.c.id.in_(wanted))
    ).all()
    if not rows:
        raise ValueError(f"none of the stories to merge exist: {', '.join(wanted)}")
    winner = min(rows, key=lambda r: (r.first_seen, r.id)).id
    losers = sorted(r.id for r in rows if r.id != winner)
    dirty = membership.topics_of(conn, winner)
    if not losers:
        return winner, dirty
    for loser in losers:
        dirty |= membership.drop_story(conn, loser)
    for table in (entries, story_joins, tombstones):
        conn.execute(table.update().where(table.c.story_id.in_(losers)).values(story_id=winner))
    conn.execute(stories.delete().where(stories.c.id.in_(losers)))
    dirty |= entry_ops.recanonicalise(conn, winner, now=now, matchers=matchers, rematch=True)
    return winner, dirty | membership.topics_of(conn, winner)
