"""Topics: the stored queries, re-matching on a query change, stories per topic, counts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Origin, Story, Via, utc
from aggregator.store import membership, stamps
from aggregator.store.database import Database
from aggregator.store.entries import provenance_and_via
from aggregator.store.outline import TopicView
from aggregator.store.rows import ITEM_COLUMNS, item_from_row
from aggregator.store.schema import entries, stories, story_topics, topics
from aggregator.store.values import TopicMatchers, TopicOutline

__all__ = ["TopicView", "Topics"]

_IS_CANONICAL = (stories.c.canonical_source == entries.c.source) & (
    stories.c.canonical_identity == entries.c.identity
)

#: each story's canonical entry, with the story's id as ``sid``
_CANONICAL = sa.select(entries, stories.c.id.label("sid")).join(stories, _IS_CANONICAL)


#: stories re-matched per transaction when a topic changes
SYNC_CHUNK = 1000

#: what re-matching reads of each story: its id and its canonical item
#: (no bookkeeping columns, whose dates would be converted for nothing), by id
_MATCHED = (
    sa.select(
        *(entries.c[name] for name in ITEM_COLUMNS),
        stories.c.id.label("sid"),
    )
    .join(stories, _IS_CANONICAL)
    .order_by(stories.c.id)
)

_NEWEST_FIRST = (stories.c.published.desc(), stories.c.id.desc())
_RESURFACED_FIRST = (stories.c.updated.desc(), stories.c.id.desc())

#: stories with their canonical entry's columns, newest first by (published, id)
_STORIES = _CANONICAL.add_columns(
    stories.c.published.label("s_published"),
    stories.c.updated.label("s_updated"),
    stories.c.first_seen.label("s_first_seen"),
).order_by(*_NEWEST_FIRST)
# Statements built once with an expanding IN: SQLAlchemy then compiles each once
# and binds the list when it runs (building an IN of 500 literals cost ~0.5 ms).
_STORIES_IN = _STORIES.where(stories.c.id.in_(sa.bindparam("k_ids", expanding=True)))
_ALL_IDS = sa.select(stories.c.id).order_by(*_NEWEST_FIRST)
_IDS_IN = _ALL_IDS.where(stories.c.id.in_(sa.bindparam("k_ids", expanding=True)))


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

        Stories are re-matched :data:`SYNC_CHUNK` at a time, one transaction
        each, so memory stays flat and ingests are not locked out for the
        whole pass; a topic's new query is recorded only in the last
        transaction, after every chunk, so a sync cut short is redone in
        full at the next start (the membership writes are differences, so
        redoing them is harmless).

        Args:
            queries: topic name -> query text, as configured.
            matchers: topic name -> predicate (same keys); when they
                implement :class:`~aggregator.store.values.MatchesMany`, each
                chunk is matched in one call.
            now: when the sync happens (aware).

        Returns:
            Topics whose membership was recomputed or dropped.
        """
        now = utc(now)
        with self._db.read() as conn:
            stored = {
                r.name: r.query for r in conn.execute(sa.select(topics.c.name, topics.c.query))
            }
        changed = sorted(name for name, q in queries.items() if stored.get(name) != q)
        removed = sorted(set(stored) - set(queries))
        if changed:
            after: str | None = None
            while True:
                with self._db.write() as conn:
                    after = self._rematch_chunk(conn, after, changed, matchers, now=now)
                if after is None:
                    break
        with self._db.write() as conn:
            gone = [*removed, *changed]
            if removed:
                conn.execute(story_topics.delete().where(story_topics.c.topic.in_(removed)))
            if gone:
                conn.execute(topics.delete().where(topics.c.name.in_(gone)))
            if changed:
                conn.execute(
                    topics.insert(),
                    [{"name": name, "query": queries[name], "synced_at": now} for name in changed],
                )
        return frozenset(gone)

    @staticmethod
    def _rematch_chunk(
        conn: Connection,
        after: str | None,
        names: Sequence[str],
        matchers: TopicMatchers,
        *,
        now: datetime,
    ) -> str | None:
        """Re-match the next chunk of stories by id after ``after``; return its last id.

        Returns:
            The last story id of the chunk, or None when no story is left.
        """
        query = _MATCHED.limit(SYNC_CHUNK)
        if after is not None:
            query = query.where(stories.c.id > after)
        rows = conn.execute(query).all()
        if not rows:
            return None
        ids = [row.sid for row in rows]
        carried = membership.sources_of(conn, ids)
        matched = membership.matching_stories(
            [item_from_row(r) for r in rows],
            [carried.get(sid, ()) for sid in ids],
            matchers,
            names,
        )
        membership.resync(conn, ids, matched, names, now=now)
        return str(ids[-1])

    def topic_stories(self, topic: str) -> list[Story]:
        """Every story in a topic, newest first by (published, id)."""
        query = _STORIES.join(story_topics, story_topics.c.story_id == stories.c.id).where(
            story_topics.c.topic == topic
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
            origins, merged = provenance_and_via(conn, [r.sid for r in rows])
        return [_story(r, origins, merged) for r in rows]

    @contextmanager
    def topic_view(self, topic: str) -> Iterator[TopicView]:
        """One topic's order for publishing, every read from one snapshot of the store."""
        with self._db.snapshot() as conn:
            yield TopicView(conn, topic)

    def foreign_changes(self, since: int) -> tuple[int, bool]:
        """Whether another process changed what topics publish since ``since``.

        Every write that may change a topic takes a change stamp
        (:mod:`aggregator.store.stamps`), counted once per transaction; the
        counts after ``since`` that this store's own writes did not take were
        taken elsewhere (a CLI command beside a running daemon).

        Returns:
            The current count (the next call's ``since``), and whether a
            count after ``since`` was taken by another process; ``since``
            and False while one of this store's own counts is being taken
            (PostgreSQL counts it before this process knows it). The first
            call's answer counts every earlier write as another process's.
        """
        self._db.keep_own_stamps()  # from now on, before the count is read
        with self._db.read() as conn:
            current = stamps.changes_counted(conn)
        # Asked after the read: each of this store's stamps the read counted is
        # known by now (a writer thread's commit may not have returned yet).
        mine = self._db.own_stamps(since, current)
        if mine is None:  # one of this store's stamps is on its way: decide next time
            return since, False
        return current, current - since > mine

    def topic_outline(self, topic: str, *, resurface: bool = False) -> TopicOutline:
        """A topic's stories as publishing pages them: ids and versions only, newest first.

        Ordered as :func:`~aggregator.publish.paginate` orders stories (by
        ``(published, id)``, or ``(updated, id)`` with ``resurface``), so the
        pages can be cut without reading a single text.
        """
        with self.topic_view(topic) as view:
            return view.outline(resurface=resurface)

    def newest_story_ids(self, topic: str, limit: int) -> list[str]:
        """The ids of a topic's ``limit`` newest stories, in :meth:`topic_stories` order."""
        query = (
            sa.select(stories.c.id)
            .join(story_topics, story_topics.c.story_id == stories.c.id)
            .where(story_topics.c.topic == topic)
            .order_by(*_NEWEST_FIRST)
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def stories(self, ids: Sequence[str] | None = None) -> Iterator[Story]:
        """Every stored story (or those with the given ids), newest first by (published, id).

        Streams in chunks, so a preview over every stored story holds one
        chunk of texts at a time.
        """
        with self._db.read() as conn:
            if ids is None:
                story_ids = list(conn.execute(_ALL_IDS).scalars())
            else:
                story_ids = list(conn.execute(_IDS_IN, {"k_ids": list(ids)}).scalars())
        for start in range(0, len(story_ids), 500):
            chunk = story_ids[start : start + 500]
            with self._db.read() as conn:
                rows = conn.execute(_STORIES_IN, {"k_ids": list(chunk)}).all()
                origins, merged = provenance_and_via(conn, chunk)
            yield from (_story(r, origins, merged) for r in rows)

    def topic_counts(self) -> dict[str, int]:
        """Stories per topic."""
        query = sa.select(story_topics.c.topic, sa.func.count()).group_by(story_topics.c.topic)
        with self._db.read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}
