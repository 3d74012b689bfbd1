"""Topic membership of stories (``story_topics``), inside a caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Item
from aggregator.store.schema import story_topics
from aggregator.store.values import TopicMatchers

__all__ = ["add", "drop_story", "matching", "rematch", "topics_of"]

_TOPICS_OF = sa.select(story_topics.c.topic).where(
    story_topics.c.story_id == sa.bindparam("k_story")
)


def matching(item: Item, matchers: TopicMatchers) -> frozenset[str]:
    """The topics whose predicate accepts ``item``."""
    return frozenset(name for name, match in matchers.items() if match(item))


def topics_of(conn: Connection, story_id: str) -> frozenset[str]:
    """The topics a story is in now."""
    return frozenset(conn.execute(_TOPICS_OF, {"k_story": story_id}).scalars())


def add(conn: Connection, story_id: str, names: Iterable[str], *, now: datetime) -> None:
    """Put a story into topics it is not in yet."""
    rows = [{"topic": t, "story_id": story_id, "matched_at": now} for t in sorted(names)]
    if rows:
        conn.execute(story_topics.insert(), rows)


def drop_story(conn: Connection, story_id: str) -> frozenset[str]:
    """Take a story out of every topic; return the topics it was in."""
    names = topics_of(conn, story_id)
    conn.execute(story_topics.delete().where(story_topics.c.story_id == story_id))
    return names


def rematch(
    conn: Connection,
    story_id: str,
    item: Item,
    old: frozenset[str],
    matchers: TopicMatchers,
    *,
    now: datetime,
) -> frozenset[str]:
    """Re-match a story whose canonical item changed; return the topics touched (old and new)."""
    new = matching(item, matchers)
    if old - new:
        conn.execute(
            story_topics.delete().where(
                (story_topics.c.story_id == story_id) & story_topics.c.topic.in_(sorted(old - new))
            )
        )
    add(conn, story_id, new - old, now=now)
    return old | new
