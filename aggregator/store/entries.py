"""Entries and stories: their rows, re-deriving a story, removals, tombstones, provenance.

The ingest decisions themselves are applied in batches by :mod:`aggregator.store.batch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Item, Origin, Via, utc
from aggregator.store import membership, stamps
from aggregator.store import stories as story_index
from aggregator.store.database import Database, chunks
from aggregator.store.rows import item_from_row
from aggregator.store.schema import entries, stories, tombstones
from aggregator.store.values import IngestReport, TopicMatchers
from aggregator.stories import dedup, neardup
from aggregator.stories.neardup import NearDupSettings

__all__ = [
    "Entries",
    "bump_versions",
    "delete_entry",
    "entry_row",
    "fullest_entry",
    "identities_of",
    "join_rule",
    "provenance_and_via",
    "recanonicalise",
    "refresh_story",
    "remove",
    "story_row",
    "update_entry",
]

_TOMB_KEY = (tombstones.c.source == sa.bindparam("k_source")) & (
    tombstones.c.identity == sa.bindparam("k_identity")
)
_DELETE_TOMBSTONE = tombstones.delete().where(_TOMB_KEY)


class Entries:
    """Entries and the stories they form, on one database."""

    def __init__(self, db: Database, *, near: NearDupSettings | None = None) -> None:
        self._db = db
        #: near-duplicate matching settings (the ``dedup:`` config section)
        self.near = near or NearDupSettings()

    def remove_entries(
        self,
        source: str,
        identities: Sequence[str],
        *,
        now: datetime,
        reason: str = "deleted",
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        """Remove entries in one transaction; see :meth:`SQLStore.remove_entries`."""
        now = utc(now)
        with self._db.write() as conn:
            return remove(conn, source, identities, now=now, reason=reason, matchers=matchers)

    def entry_counts(self) -> dict[str, int]:
        """Stored entries per source."""
        query = sa.select(entries.c.source, sa.func.count()).group_by(entries.c.source)
        with self._db.read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}

    def old_entries(self, before: datetime) -> list[tuple[str, str, str]]:
        """Entries of stories published before ``before``: ``(source, identity, story_id)``."""
        query = (
            sa.select(entries.c.source, entries.c.identity, entries.c.story_id)
            .join(stories, stories.c.id == entries.c.story_id)
            .where(stories.c.published < utc(before))
            .order_by(entries.c.source, entries.c.identity)
        )
        with self._db.read() as conn:
            return [(r.source, r.identity, r.story_id) for r in conn.execute(query)]

    def story_ids(self) -> set[str]:
        """Every stored story's id."""
        with self._db.read() as conn:
            return set(conn.execute(sa.select(stories.c.id)).scalars())

    def entry_contents(
        self, source: str, identities: Sequence[str]
    ) -> dict[str, tuple[str, str] | None]:
        """Which of ``identities`` the source holds: (content, hash), or None for a removed one."""
        wanted = list(dict.fromkeys(identities))
        found: dict[str, tuple[str, str] | None] = {}
        with self._db.read() as conn:
            for chunk in chunks(wanted):
                removed = sa.select(tombstones.c.identity).where(
                    (tombstones.c.source == source) & tombstones.c.identity.in_(chunk)
                )
                found.update(dict.fromkeys(conn.execute(removed).scalars()))
                held = sa.select(
                    entries.c.identity, entries.c.content_html, entries.c.content_hash
                ).where((entries.c.source == source) & entries.c.identity.in_(chunk))
                found.update(
                    {r.identity: (r.content_html, r.content_hash) for r in conn.execute(held)}
                )
        return found

    def recent_contents(self, source: str, limit: int) -> list[str]:
        """The content of the source's last ``limit`` entries, newest first."""
        query = (
            sa.select(entries.c.content_html)
            .where(entries.c.source == source)
            .order_by(entries.c.first_seen.desc(), entries.c.published.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def published_times(self, source: str, since: datetime) -> dict[str, datetime]:
        """Identity -> publication time of the source's entries published after ``since``."""
        query = sa.select(entries.c.identity, entries.c.published).where(
            (entries.c.source == source) & (entries.c.published > since)
        )
        with self._db.read() as conn:
            return {str(i): p for i, p in conn.execute(query)}


def identities_of(conn: Connection, source: str) -> list[str]:
    """The identities of a source's stored entries."""
    query = sa.select(entries.c.identity).where(entries.c.source == source)
    return list(conn.execute(query).scalars())


def story_row(item: Item, story_id: str, now: datetime) -> dict[str, Any]:
    """The ``stories`` row a new story's first item makes."""
    return {
        "id": story_id,
        "canonical_source": item.source,
        "canonical_identity": item.identity,
        "published": item.published,
        "updated": item.updated,
        "first_seen": now,
        "content_hash": item.content_hash,
        "version": 0,
    }


def bump_versions(conn: Connection, story_ids: Iterable[str]) -> None:
    """Mark stories as changed for publishing (their entries changed; see ``stories.version``)."""
    ids = sorted(set(story_ids))
    if not ids:
        return
    version = stamps.stamp(conn)
    for chunk in chunks(ids):
        conn.execute(stories.update().where(stories.c.id.in_(chunk)).values(version=version))


def entry_row(item: Item, story_id: str, values: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``entries`` row of a new entry, from its :func:`entry_values`."""
    return {
        "source": item.source,
        "identity": item.identity,
        "story_id": story_id,
        "first_seen": now,
        "last_seen": now,
        **values,
    }


def delete_entry(conn: Connection, source: str, identity: str) -> None:
    """Delete one entry's row (no tombstone: it is placed again at once)."""
    key = (entries.c.source == source) & (entries.c.identity == identity)
    conn.execute(entries.delete().where(key))


def update_entry(conn: Connection, item: Item, values: dict[str, Any], *, now: datetime) -> None:
    """Write a held entry's new :func:`~aggregator.store.rows.entry_values`."""
    key = (entries.c.source == item.source) & (entries.c.identity == item.identity)
    conn.execute(entries.update().where(key).values(**values, last_seen=now))


def join_rule(link_match: str | None, content_match: str | None) -> str:
    """How an entry joined a story, as ``stories --explain`` shows it."""
    return "link" if link_match else "content" if content_match else "near"


def recanonicalise(
    conn: Connection,
    story_id: str,
    *,
    now: datetime,
    matchers: TopicMatchers | None,
    rematch: bool = False,
) -> frozenset[str]:
    """Make the story's fullest entry canonical and re-derive the story; return dirty topics.

    ``rematch``: the story's entries changed (one joined or left), so its
    sources may have: decide its topics again even if its text is the same.
    """
    best = fullest_entry(conn, story_id)
    if best is None:
        return frozenset()
    conn.execute(
        stories.update()
        .where(stories.c.id == story_id)
        .values(canonical_source=best[0], canonical_identity=best[1])
    )
    return refresh_story(conn, story_id, now=now, matchers=matchers, rematch=rematch)


def fullest_entry(conn: Connection, story_id: str) -> tuple[str, str] | None:
    """The story's canonical entry by rule: the fullest body text, then the earliest seen.

    Ties go to the earliest first seen (then source and identity), so the
    canonical entry changes only when a fuller telling arrives.
    """
    rows = conn.execute(
        sa.select(entries.c.source, entries.c.identity, entries.c.content_html)
        .where(entries.c.story_id == story_id)
        .order_by(entries.c.first_seen, entries.c.source, entries.c.identity)
    ).all()
    best: tuple[str, str] | None = None
    most = -1
    for row in rows:
        words = neardup.body_words(row.content_html)
        if words > most:
            best, most = (row.source, row.identity), words
    return best


def refresh_story(
    conn: Connection,
    story_id: str,
    *,
    now: datetime,
    matchers: TopicMatchers | None,
    rematch: bool = False,
) -> frozenset[str]:
    """Re-derive a story from its canonical entry after a change; return dirty topics.

    Its topics are decided again when its text or canonical entry changed,
    or when ``rematch`` says its entries (so maybe its sources) did. With
    ``matchers`` None, topic membership is kept as it is.
    """
    story = conn.execute(sa.select(stories).where(stories.c.id == story_id)).first()
    if story is None:
        return frozenset()
    old_topics = membership.topics_of(conn, story_id)
    canonical = conn.execute(
        sa.select(entries).where(
            (entries.c.source == story.canonical_source)
            & (entries.c.identity == story.canonical_identity)
        )
    ).first()
    if canonical is None:
        # The canonical entry left: the next by the canonical rule takes over.
        best = fullest_entry(conn, story_id)
        if best is None:
            return old_topics
        canonical = conn.execute(
            sa.select(entries).where(
                (entries.c.source == best[0]) & (entries.c.identity == best[1])
            )
        ).first()
        if canonical is None:
            return old_topics
    item = item_from_row(canonical)
    changes: dict[str, Any] = {
        "canonical_source": item.source,
        "canonical_identity": item.identity,
        # Called after every change to the story's entries: its merged
        # sources, links or text may publish differently.
        "version": stamps.stamp(conn),
    }
    if item.content_hash != story.content_hash:
        changes["content_hash"] = item.content_hash
        changes["updated"] = dedup.next_updated(story.updated, item.updated, now)
    conn.execute(stories.update().where(stories.c.id == story_id).values(**changes))
    moved = changes["canonical_source"] != story.canonical_source
    if "content_hash" not in changes and not moved and not rematch:
        return frozenset()
    if matchers is None:
        return old_topics
    return membership.rematch(conn, story_id, item, old_topics, matchers, now=now)


def remove(
    conn: Connection,
    source: str,
    identities: Iterable[str],
    *,
    now: datetime,
    reason: str,
    matchers: TopicMatchers | None = None,
) -> IngestReport:
    """Remove entries, leaving tombstones, inside the caller's transaction.

    A story left without entries is deleted and leaves its topics; a story
    another source still carries stays, re-derived from what is left.
    """
    report = IngestReport()
    for identity in identities:
        key = (entries.c.source == source) & (entries.c.identity == identity)
        story_id = conn.execute(sa.select(entries.c.story_id).where(key)).scalar()
        if story_id is None:
            continue
        conn.execute(entries.delete().where(key))
        story_index.forget_entry(conn, source, identity)
        ident = {"k_source": source, "k_identity": identity}
        conn.execute(_DELETE_TOMBSTONE, ident)
        conn.execute(
            tombstones.insert().values(
                source=source, identity=identity, story_id=story_id, reason=reason, removed_at=now
            )
        )
        left = conn.execute(
            sa.select(sa.func.count()).select_from(entries).where(entries.c.story_id == story_id)
        ).scalar_one()
        if left:
            dirty = refresh_story(conn, story_id, now=now, matchers=matchers, rematch=True)
            dirty |= membership.topics_of(conn, story_id)
            report += IngestReport(dirty_topics=dirty)
            continue
        dirty = membership.drop_story(conn, story_id)
        conn.execute(stories.delete().where(stories.c.id == story_id))
        report += IngestReport(removed=1, dirty_topics=dirty)
    return report


#: each story's entries, first seen first: what its provenance and its via links are read from
_CARRIERS = (
    sa.select(entries.c.story_id, entries.c.source, entries.c.link, entries.c.origin)
    .where(entries.c.story_id.in_(sa.bindparam("k_ids", expanding=True)))
    .order_by(entries.c.story_id, entries.c.first_seen, entries.c.source, entries.c.identity)
)


def provenance_and_via(
    conn: Connection, story_ids: Sequence[str]
) -> tuple[dict[str, tuple[Origin, ...]], dict[str, tuple[Via, ...]]]:
    """Each story's provenance and via links, from one read of its entries.

    Provenance: every distinct origin that carried the story, in the order
    first seen. Via: every entry merged into it (source, feed title, canonical
    link), first seen first.
    """
    origins: dict[str, list[Origin]] = {}
    merged: dict[str, list[Via]] = {}
    for chunk in chunks(story_ids):
        for row in conn.execute(_CARRIERS, {"k_ids": list(chunk)}):
            origin = Origin(**row.origin) if row.origin else Origin(source=row.source)
            seen = origins.setdefault(row.story_id, [])
            if origin not in seen:
                seen.append(origin)
            title = (row.origin or {}).get("title")
            merged.setdefault(row.story_id, []).append(Via(row.source, title, row.link))
    return (
        {k: tuple(v) for k, v in origins.items()},
        {k: tuple(v) for k, v in merged.items()},
    )
