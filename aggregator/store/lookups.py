"""The reads a batch decides on: entries, tombstones and the entries behind keys, in bulk.

On SQLite each IN list is one expanding parameter, chunked (bound
parameters per statement are limited). On PostgreSQL the lists are arrays
(``= ANY(:keys)``, ``IN (SELECT unnest(...))``): one statement text
whatever the length, so the server prepares it once, and one round trip
per lookup for a whole batch. The statements are built once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

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
# SQLite: a batch's pairs as one JSON parameter, joined to the table's
# (source, identity) key. A row-value IN list, ``(source, identity) IN
# (VALUES ...)``, scanned the whole table for each batch instead (SQLite
# plans it as a scan): 18 ms a batch at 15,000 entries, growing with the store.
_SQLITE_BY_PAIR = (
    "SELECT t.source, t.identity, t.{0}, t.{1} FROM json_each(?) AS j JOIN {2} AS t"
    " ON t.source = json_extract(j.value, '$[0]') AND t.identity = json_extract(j.value, '$[1]')"
)
_SQLITE_ENTRIES_BY_PAIR = _SQLITE_BY_PAIR.format("story_id", "content_hash", entries.name)
_SQLITE_TOMBS_BY_PAIR = _SQLITE_BY_PAIR.format("story_id", "reason", tombstones.name)
_BY_KEY = {
    column.name: sa.select(column, *_KEY_COLUMNS).where(
        column.in_(sa.bindparam("k_keys", expanding=True))
    )
    for column in (entries.c.link_key, entries.c.content_key)
}
_TEXTS = sa.ARRAY(sa.Text)


def _pg_pairs(columns: tuple[sa.Column[str], sa.Column[str]]) -> sa.ColumnElement[bool]:
    unnested = sa.select(
        sa.func.unnest(sa.bindparam("k_sources", type_=_TEXTS)),
        sa.func.unnest(sa.bindparam("k_identities", type_=_TEXTS)),
    )
    return sa.tuple_(*columns).in_(unnested)


_PG_ENTRIES_BY_PAIR = sa.select(
    entries.c.source, entries.c.identity, entries.c.story_id, entries.c.content_hash
).where(_pg_pairs((entries.c.source, entries.c.identity)))
_PG_TOMBS_BY_PAIR = sa.select(
    tombstones.c.source, tombstones.c.identity, tombstones.c.story_id, tombstones.c.reason
).where(_pg_pairs((tombstones.c.source, tombstones.c.identity)))
_PG_BY_KEY = {
    column.name: sa.select(column, *_KEY_COLUMNS).where(
        column == sa.any_(sa.bindparam("k_keys", type_=_TEXTS))
    )
    for column in (entries.c.link_key, entries.c.content_key)
}
#: PostgreSQL: values per array parameter (a batch is far smaller)
_PG_CHUNK = 20_000


def _by_pair(
    conn: Connection, sqlite: str, pg: sa.Select[Any], pairs: Sequence[Pair]
) -> Iterator[Any]:
    if conn.dialect.name == "postgresql":
        for chunk in chunks(pairs, _PG_CHUNK):
            sources = [p[0] for p in chunk]
            identities = [p[1] for p in chunk]
            yield from conn.execute(pg, {"k_sources": sources, "k_identities": identities})
        return
    if pairs:
        yield from conn.exec_driver_sql(sqlite, (json.dumps(pairs),))


def entries_by_pair(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, tuple[str, str]]:
    """The stored entries among ``pairs``: ``(story_id, content_hash)`` by pair."""
    return {
        (row.source, row.identity): (row.story_id, row.content_hash)
        for row in _by_pair(conn, _SQLITE_ENTRIES_BY_PAIR, _PG_ENTRIES_BY_PAIR, pairs)
    }


def tombs_by_pair(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, tuple[str, str]]:
    """The tombstones among ``pairs``: ``(story_id, reason)`` by pair."""
    return {
        (row.source, row.identity): (row.story_id, row.reason)
        for row in _by_pair(conn, _SQLITE_TOMBS_BY_PAIR, _PG_TOMBS_BY_PAIR, pairs)
    }


def holders(conn: Connection, column: str, keys: Sequence[str]) -> dict[str, Holder | None]:
    """The oldest stored entry behind each key of ``column`` (``link_key``, ``content_key``)."""
    found: dict[str, Holder | None] = dict.fromkeys(keys)
    pg = conn.dialect.name == "postgresql"
    statement = (_PG_BY_KEY if pg else _BY_KEY)[column]
    for chunk in chunks(keys, _PG_CHUNK if pg else 500):
        for row in conn.execute(statement, {"k_keys": list(chunk)}):
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
