"""A topic's stories as publishing pages them, read from one snapshot of the store.

Publishing cuts a topic into pages by position in the topic's published order
(newest first by ``(published, id)``, or by ``(updated, id)`` for a topic that
resurfaces updates). It reads only ids and versions here, never texts; and
when it knows the stamp it last published at, only what changed since
(:meth:`TopicView.changes`), where each change falls (:meth:`TopicView.newer_than`)
and the few pages that hold changes (:meth:`TopicView.slice`): all from
``story_topics``' own order index, so the cost follows what changed, not the
topic's size. Every read of one view sees the same state of the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import TopicChange, TopicOutline
from aggregator.store import stamps
from aggregator.store.database import chunks
from aggregator.store.schema import UTCDateTime, stories, story_topics

__all__ = ["TopicView"]

_ORDER = (story_topics.c.published.desc(), story_topics.c.story_id.desc())
_RESURFACED_ORDER = (stories.c.updated.desc(), stories.c.id.desc())
_MEMBERS = sa.select(story_topics.c.story_id, stories.c.version).join(
    stories, stories.c.id == story_topics.c.story_id
)


class TopicView:
    """One topic's order, read through ``conn`` (a :meth:`Database.snapshot` connection)."""

    def __init__(self, conn: Connection, topic: str) -> None:
        self._conn = conn
        self._topic = topic
        self._in_topic = story_topics.c.topic == topic

    def stamp(self) -> int:
        """The store's last change stamp, as this view sees it."""
        return stamps.current(self._conn)

    def count(self) -> int:
        """Stories in the topic."""
        query = sa.select(sa.func.count()).select_from(story_topics).where(self._in_topic)
        return int(self._conn.execute(query).scalar_one())

    def changes(self, since: int) -> list[TopicChange]:
        """The topic's stories stamped after ``since``: changed, or joined the topic."""
        conn = self._conn
        found: dict[str, TopicChange] = {}
        # Each step walks an index from ``since`` up: the stories stamped
        # since (of every topic), then their memberships of this one; and
        # this topic's memberships stamped since. A join would let the
        # planner walk the whole topic instead.
        changed = conn.execute(
            sa.select(
                stories.c.id, stories.c.version, stories.c.published, stories.c.updated
            ).where(stories.c.version > since)
        ).all()
        by_id = {row.id: row for row in changed}
        for chunk in chunks(sorted(by_id)):
            members = sa.select(story_topics.c.story_id, story_topics.c.seq).where(
                self._in_topic, story_topics.c.story_id.in_(chunk)
            )
            for sid, seq in conn.execute(members):
                row = by_id[sid]
                found[sid] = TopicChange(sid, row.version, row.published, row.updated, seq > since)
        entered = (
            sa.select(
                story_topics.c.story_id,
                stories.c.version,
                stories.c.published,
                stories.c.updated,
            )
            .select_from(story_topics)
            .join(stories, stories.c.id == story_topics.c.story_id)
            .where(self._in_topic, story_topics.c.seq > since)
        )
        for sid, version, published, updated in conn.execute(entered):
            found[sid] = TopicChange(sid, int(version), published, updated, True)
        return list(found.values())

    def newer_than(self, published: datetime, story_id: str) -> int:
        """How many of the topic's stories come before this one in published order."""
        after = sa.tuple_(story_topics.c.published, story_topics.c.story_id) > sa.tuple_(
            sa.literal(published, UTCDateTime()), sa.literal(story_id)
        )
        query = sa.select(sa.func.count()).select_from(story_topics).where(self._in_topic, after)
        return int(self._conn.execute(query).scalar_one())

    def slice(self, start: int, stop: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """Ids and versions at positions ``start`` to ``stop`` of the published order."""
        if stop <= start:
            return (), ()
        query = _MEMBERS.where(self._in_topic).order_by(*_ORDER).limit(stop - start).offset(start)
        rows = self._raw(query)
        if not rows:
            return (), ()
        ids, versions = zip(*rows, strict=True)
        return ids, versions

    def outline(self, *, resurface: bool = False) -> TopicOutline:
        """Every story of the topic, ids and versions in published order, and the newest date."""
        order = _RESURFACED_ORDER if resurface else _ORDER
        rows = self._raw(_MEMBERS.where(self._in_topic).order_by(*order))
        if not rows:
            return TopicOutline(ids=(), versions=(), updated=None)
        ids, versions = zip(*rows, strict=True)
        newest = self._conn.execute(
            sa.select(sa.func.max(stories.c.updated))
            .join(story_topics, stories.c.id == story_topics.c.story_id)
            .where(self._in_topic)
        ).scalar_one()
        return TopicOutline(ids=ids, versions=versions, updated=newest)

    def _raw(self, query: sa.Select[Any]) -> Sequence[Any]:
        # Tens of thousands of rows: read through the driver's cursor, without
        # SQLAlchemy's per-row result objects.
        compiled = query.compile(self._conn, compile_kwargs={"render_postcompile": True})
        params = (
            tuple(compiled.params[k] for k in compiled.positiontup or ())
            if compiled.positional
            else compiled.params
        )
        return self._conn.exec_driver_sql(str(compiled), params).fetchall()
