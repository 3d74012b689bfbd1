"""Read-only listings for ``aggregator stories``: stories with their entries and topics,
seed files' paths, and how each entry joined its story. Re-exported by ``store.stories``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.schema import entries, files, stories, story_joins, story_topics

__all__ = ["find_story_ids", "join_rows", "seed_paths", "story_rows"]


def story_rows(conn: Connection, topic: str | None = None) -> list[dict[str, Any]]:
    """Every story (or a topic's) with its entries, oldest first, as plain mappings."""
    query = sa.select(stories).order_by(stories.c.published, stories.c.id)
    if topic is not None:
        query = query.join(story_topics, story_topics.c.story_id == stories.c.id).where(
            story_topics.c.topic == topic
        )
    out: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query):
        story = dict(row._mapping)
        story["entries"] = []
        story["topics"] = []
        by_id[row.id] = story
        out.append(story)
    ids = list(by_id)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for row in conn.execute(
            sa.select(
                entries.c.story_id,
                entries.c.source,
                entries.c.identity,
                entries.c.title,
                entries.c.link,
                entries.c.link_as_published,
                entries.c.guid,
                entries.c.origin,
                entries.c.published,
                entries.c.first_seen,
            )
            .where(entries.c.story_id.in_(chunk))
            .order_by(entries.c.first_seen, entries.c.source, entries.c.identity)
        ):
            by_id[row.story_id]["entries"].append(dict(row._mapping))
        for row in conn.execute(
            sa.select(story_topics.c.story_id, story_topics.c.topic)
            .where(story_topics.c.story_id.in_(chunk))
            .order_by(story_topics.c.topic)
        ):
            by_id[row.story_id]["topics"].append(row.topic)
    return out


def seed_paths(conn: Connection) -> dict[tuple[str, str], str]:
    """``(source, identity)`` -> the seed file's path relative to its folder."""
    paths: dict[tuple[str, str], str] = {}
    for rec in conn.execute(sa.select(files.c.source, files.c.relpath, files.c.identities)):
        for identity in rec.identities or ():
            paths[(rec.source, identity)] = rec.relpath
    return paths


def join_rows(conn: Connection, story_id: str) -> list[dict[str, Any]]:
    """How each entry of a story joined it, in the order they were stored."""
    query = (
        sa.select(story_joins)
        .where(story_joins.c.story_id == story_id)
        .order_by(story_joins.c.joined_at, story_joins.c.source, story_joins.c.identity)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def find_story_ids(conn: Connection, text: str, *, limit: int = 10) -> list[str]:
    """The stories ``text`` names: a whole id, with or without ``urn:uuid:``, or its start.

    Returns:
        The id itself when it is stored, else (sorted, at most ``limit``)
        every id that starts with ``text`` or with ``urn:uuid:`` + ``text``.
    """
    text = text.strip()
    if not text:
        return []
    starts = [text] if text.startswith("urn:") else [text, f"urn:uuid:{text}"]
    for whole in starts:
        held = conn.execute(sa.select(stories.c.id).where(stories.c.id == whole)).scalar()
        if held is not None:
            return [str(held)]
    found: set[str] = set()
    for start in starts:
        # A range, not LIKE: an id's own "_" or "%" would be wildcards there.
        rows = conn.execute(
            sa.select(stories.c.id)
            .where((stories.c.id >= start) & (stories.c.id < start + "\U0010ffff"))
            .order_by(stories.c.id)
            .limit(limit)
        )
        found.update(rows.scalars())
    return sorted(found)[:limit]
