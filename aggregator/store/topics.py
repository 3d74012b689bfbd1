"""Topics: the stored queries, re-matching on a query change, stories per topic, counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from aggregator.model import Story, utc
from aggregator.store.database import Database
from aggregator.store.entries import provenance, via
from aggregator.store.rows import item_from_row
from aggregator.store.schema import entries, stories, story_topics, topics
from aggregator.store.values import TopicMatchers

__all__ = ["Topics"]

#: each story's canonical entry, with the story's id as ``sid``
_CANONICAL = sa.select(entries, stories.c.id.label("sid")).join(
    stories,
    (stories.c.canonical_source == entries.c.source)
    & (stories.c.canonical_identity == entries.c.identity),
)


class Topics:
    """Topic queries and membership, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def sync_topics(
        self, queries: Mapping[str, str], matchers: TopicMatchers, *, now: datetime
    ) -> frozenset[str]:
        """Recompute membership of topics that are new or whose query changed.

        Args:
            queries: topic name -> query text, as configured.
            matchers: topic name -> predicate (same keys).
            now: when the sync happens (aware).

        Returns:
            Topics whose membership was recomputed or dropped.
        """
        now = utc(now)
        dirty: set[str] = set()
        with self._db.write() as conn:
            stored = {
                r.name: r.query for r in conn.execute(sa.select(topics.c.name, topics.c.query))
            }
            changed = [name for name, q in queries.items() if stored.get(name) != q]
            for name in set(stored) - set(queries):
                conn.execute(story_topics.delete().where(story_topics.c.topic == name))
                conn.execute(topics.delete().where(topics.c.name == name))
                dirty.add(name)
            if changed:
                conn.execute(story_topics.delete().where(story_topics.c.topic.in_(changed)))
                batch: list[dict[str, Any]] = []
                for row in conn.execute(_CANONICAL):
                    item = item_from_row(row)
                    batch.extend(
                        {"topic": name, "story_id": row.sid, "matched_at": now}
                        for name in changed
                        if matchers[name](item)
                    )
                if batch:
                    conn.execute(story_topics.insert(), batch)
                for name in changed:
                    conn.execute(topics.delete().where(topics.c.name == name))
                    conn.execute(
                        topics.insert().values(name=name, query=queries[name], synced_at=now)
                    )
                dirty.update(changed)
        return frozenset(dirty)

    def topic_stories(self, topic: str) -> list[Story]:
        """Every story in a topic, newest first by (published, id)."""
        query = (
            _CANONICAL.add_columns(
                stories.c.published.label("s_published"),
                stories.c.updated.label("s_updated"),
                stories.c.first_seen.label("s_first_seen"),
            )
            .join(story_topics, story_topics.c.story_id == stories.c.id)
            .where(story_topics.c.topic == topic)
            .order_by(stories.c.published.desc(), stories.c.id.desc())
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
            origins = provenance(conn, [r.sid for r in rows])
            merged = via(conn, [r.sid for r in rows])
        return [
            Story(
                id=r.sid,
                item=item_from_row(r),
                published=r.s_published,
                updated=r.s_updated,
                first_seen=r.s_first_seen,
                provenance=origins.get(r.sid, ()),
                via=merged.get(r.sid, ()),
            )
            for r in rows
        ]

    def topic_counts(self) -> dict[str, int]:
        """Stories per topic."""
        query = sa.select(story_topics.c.topic, sa.func.count()).group_by(story_topics.c.topic)
        with self._db.read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}
