"""Topics: the stored queries, re-matching on a query change, stories per topic, counts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from aggregator.model import Origin, Story, Via, utc
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


_NEWEST_FIRST = (stories.c.published.desc(), stories.c.id.desc())

#: stories with their canonical entry's columns, newest first by (published, id)
_STORIES = _CANONICAL.add_columns(
    stories.c.published.label("s_published"),
    stories.c.updated.label("s_updated"),
    stories.c.first_seen.label("s_first_seen"),
).order_by(*_NEWEST_FIRST)


def _story(
    row: Any, origins: Mapping[str, tuple[Origin, ...]], merged: Mapping[str, tuple[Via, ...]]
) -> Story:
    return Story(
        id=row.sid,
        item=item_from_row(row),
        published=row.s_published,
        updated=row.s_updated,
        first_seen=row.s_first_seen,
        provenance=origins.get(row.sid, ()),
        via=merged.get(row.sid, ()),
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
        query = _STORIES.join(story_topics, story_topics.c.story_id == stories.c.id).where(
            story_topics.c.topic == topic
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
            origins = provenance(conn, [r.sid for r in rows])
            merged = via(conn, [r.sid for r in rows])
        return [_story(r, origins, merged) for r in rows]

    def stories(self, ids: Sequence[str] | None = None) -> Iterator[Story]:
        """Every stored story (or those with the given ids), newest first by (published, id).

        Streams in chunks, so a preview over every stored story holds one
        chunk of texts at a time.
        """
        select_ids = sa.select(stories.c.id).order_by(*_NEWEST_FIRST)
        if ids is not None:
            select_ids = select_ids.where(stories.c.id.in_(list(ids)))
        with self._db.read() as conn:
            story_ids = list(conn.execute(select_ids).scalars())
        for start in range(0, len(story_ids), 500):
            chunk = story_ids[start : start + 500]
            with self._db.read() as conn:
                rows = conn.execute(_STORIES.where(stories.c.id.in_(chunk))).all()
                origins = provenance(conn, chunk)
                merged = via(conn, chunk)
            yield from (_story(r, origins, merged) for r in rows)

    def topic_counts(self) -> dict[str, int]:
        """Stories per topic."""
        query = sa.select(story_topics.c.topic, sa.func.count()).group_by(story_topics.c.topic)
        with self._db.read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}
