"""The reads a batch decides on: entries, tombstones and the entries behind keys, in bulk.

Each IN list is one expanding parameter, chunked (bound parameters per
statement are limited); the statements are built once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.database import chunks
from aggregator.store.schema import entries, stories, tombstones

__all__ = [
    "Holder",
    "Pair",
    "entries_by_pair",
    "entry_of",
    "holders",
    "lock_story",
    "story_exists",
    "story_is_shared",
    "tomb_of",
    "tombs_by_pair",
]

#: (source, identity)
Pair = tuple[str, str]
#: (first_seen, source, identity, story_id) of an entry behind a key: the oldest one wins
Holder = tuple[datetime, str, str, str]

_KEY_COLUMNS = (entries.c.first_seen, entries.c.source, entries.c.identity, entries.c.story_id)
_ENTRIES_BY_PAIR = sa.select(
    entries.c.source, entries.c.identity, entries.c.story_id, entries.c.content_hash
).where(
    sa.tuple_(entries.c.source, entries.c.identity).in_(sa.bindparam("k_pairs", expanding=True))
)
_TOMBS_BY_PAIR = sa.select(
    tombstones.c.source, tombstones.c.identity, tombstones.c.story_id, tombstones.c.reason
).where(
    sa.tuple_(tombstones.c.source, tombstones.c.identity).in_(
        sa.bindparam("k_pairs", expanding=True)
    )
)
_BY_KEY = {
    column.name: sa.select(column, *_KEY_COLUMNS).where(
        column.in_(sa.bindparam("k_keys", expanding=True))
    )
    for column in (entries.c.link_key, entries.c.content_key)
}


def entries_by_pair(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, tuple[str, str]]:
    """The stored entries among ``pairs``: ``(story_id, content_hash)`` by pair."""
    found = {}
    for chunk in chunks(pairs, 400):
        for row in conn.execute(_ENTRIES_BY_PAIR, {"k_pairs": chunk}):
            found[(row.source, row.identity)] = (row.story_id, row.content_hash)
    return found


def tombs_by_pair(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, tuple[str, str]]:
    """The tombstones among ``pairs``: ``(story_id, reason)`` by pair."""
    found = {}
    for chunk in chunks(pairs, 400):
        for row in conn.execute(_TOMBS_BY_PAIR, {"k_pairs": chunk}):
            found[(row.source, row.identity)] = (row.story_id, row.reason)
    return found


def holders(conn: Connection, column: str, keys: Sequence[str]) -> dict[str, Holder | None]:
    """The oldest stored entry behind each key of ``column`` (``link_key``, ``content_key``)."""
    found: dict[str, Holder | None] = dict.fromkeys(keys)
    for chunk in chunks(keys, 500):
        for row in conn.execute(_BY_KEY[column], {"k_keys": chunk}):
            holder = (row.first_seen, row.source, row.identity, row.story_id)
            held = found[row[0]]
            if held is None or holder < held:
                found[row[0]] = holder
    return found


def entry_of(conn: Connection, pair: Pair) -> tuple[str, str] | None:
    """One stored entry's ``(story_id, content_hash)``."""
    row = conn.execute(
        sa.select(entries.c.story_id, entries.c.content_hash).where(
            (entries.c.source == pair[0]) & (entries.c.identity == pair[1])
        )
    ).first()
    return (row.story_id, row.content_hash) if row else None


def tomb_of(conn: Connection, pair: Pair) -> tuple[str, str] | None:
    """One tombstone's ``(story_id, reason)``."""
    row = conn.execute(
        sa.select(tombstones.c.story_id, tombstones.c.reason).where(
            (tombstones.c.source == pair[0]) & (tombstones.c.identity == pair[1])
        )
    ).first()
    return (row.story_id, row.reason) if row else None


def story_exists(conn: Connection, story_id: str) -> bool:
    """Whether the story is stored."""
    query = sa.select(stories.c.id).where(stories.c.id == story_id)
    return conn.execute(query).first() is not None


def story_is_shared(conn: Connection, story_id: str) -> bool:
    """Whether a story holds more than one entry."""
    count = sa.select(sa.func.count()).where(entries.c.story_id == story_id)
    return bool(conn.execute(count).scalar_one() > 1)


def lock_story(conn: Connection, story_id: str) -> None:
    """Lock the story's row until the transaction ends (PostgreSQL; SQLite holds the database).

    A writer that re-derives a story from its entries takes this first: a
    second writer joining the same story waits, then reads the first one's
    entries too (each statement of a READ COMMITTED transaction sees the
    latest commits).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(stories.c.id).where(stories.c.id == story_id).with_for_update())
