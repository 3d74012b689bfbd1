"""The story index in the store: LSH band rows, near-duplicate lookups, join records.

Every entry's text is indexed as one row per LSH band (``story_index``), so
finding a new entry's candidate stories is one indexed ``band IN (...)``
query in the ingest transaction, on SQLite and PostgreSQL alike: a restart
keeps the index and every worker sees the same one. The precise check is
:func:`aggregator.neardup.compare`; what joined each entry is kept in
``story_joins`` for ``aggregator stories --explain``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator import neardup
from aggregator.model import Item
from aggregator.neardup import NearDupSettings, Score, Sketch
from aggregator.store.schema import entries, stories, story_index, story_joins, story_topics

__all__ = [
    "NearMatch",
    "find_near",
    "find_near_many",
    "forget_entry",
    "index_entry",
    "join_rows",
    "record_join",
    "story_rows",
]

#: candidates checked per incoming entry, the ones sharing most bands first
MAX_CANDIDATES = 20


@dataclass(frozen=True, slots=True)
class NearMatch:
    """A stored entry the incoming one is a near-duplicate of."""

    story_id: str
    source: str
    identity: str
    score: Score


def index_entry(
    conn: Connection, item: Item, story_id: str, sketch: Sketch | None, *, now: datetime
) -> None:
    """(Re)write an entry's band rows; an entry too short to sketch gets none."""
    forget_entry(conn, item.source, item.identity, keep_join=True)
    if sketch is None:
        return
    conn.execute(
        story_index.insert(),
        [
            {
                "band": band,
                "source": item.source,
                "identity": item.identity,
                "story_id": story_id,
                "published": item.published,
                "seen": now,
            }
            for band in dict.fromkeys(sketch.bands)
        ],
    )


def forget_entry(conn: Connection, source: str, identity: str, *, keep_join: bool = False) -> None:
    """Drop an entry's band rows (and its join record unless ``keep_join``)."""
    conn.execute(
        story_index.delete().where(
            (story_index.c.source == source) & (story_index.c.identity == identity)
        )
    )
    if not keep_join:
        conn.execute(
            story_joins.delete().where(
                (story_joins.c.source == source) & (story_joins.c.identity == identity)
            )
        )


def find_near(
    conn: Connection, item: Item, sketch: Sketch, settings: NearDupSettings, *, now: datetime
) -> NearMatch | None:
    """The story a new entry is a near-duplicate of, if any (see :func:`find_near_many`)."""
    return find_near_many(conn, [(item, sketch)], settings, now=now).get(
        (item.source, item.identity)
    )


def find_near_many(
    conn: Connection,
    batch: Sequence[tuple[Item, Sketch]],
    settings: NearDupSettings,
    *,
    now: datetime,
) -> dict[tuple[str, str], NearMatch]:
    """Near-duplicate matches of a batch of new entries, with one index query for all.

    A candidate is a stored entry sharing at least one band with the new
    entry, published within ``settings.window`` of it or stored within the
    window before ``now`` (seed files have no date of their own). The
    candidates sharing most bands are checked with :func:`neardup.compare`.

    Args:
        conn: the ingest transaction's connection.
        batch: new entries with their sketches.
        settings: thresholds and window.
        now: the time of this ingest.

    Returns:
        ``(source, identity)`` of each new entry that matched -> the match.
    """
    if not batch:
        return {}
    wanted: dict[int, list[int]] = {}
    for n, (_item, sk) in enumerate(batch):
        for band in sk.bands:
            wanted.setdefault(band, []).append(n)
    shared: list[dict[tuple[str, str, str], int]] = [{} for _ in batch]
    rows: list[Any] = []
    bands = list(wanted)
    for i in range(0, len(bands), 500):
        rows.extend(
            conn.execute(
                sa.select(
                    story_index.c.band,
                    story_index.c.source,
                    story_index.c.identity,
                    story_index.c.story_id,
                    story_index.c.published,
                    story_index.c.seen,
                ).where(story_index.c.band.in_(bands[i : i + 500]))
            )
        )
    for row in rows:
        for n in wanted[row.band]:
            item = batch[n][0]
            if (row.source, row.identity) == (item.source, item.identity):
                continue
            near_in_time = abs(row.published - item.published) <= settings.window
            if not near_in_time and now - row.seen > settings.window:
                continue
            key = (row.source, row.identity, row.story_id)
            shared[n][key] = shared[n].get(key, 0) + 1
    needed = {
        (src, ident)
        for counts in shared
        for (src, ident, _sid), _c in sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_CANDIDATES]
    }
    sketches = _stored_sketches(conn, needed, settings)
    out: dict[tuple[str, str], NearMatch] = {}
    for n, (item, sk) in enumerate(batch):
        ranked = sorted(shared[n].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]
        best: NearMatch | None = None
        for (src, ident, story_id), _count in ranked:
            other = sketches.get((src, ident))
            if other is None:
                continue
            score = neardup.compare(sk, other, settings)
            if not score.same:
                continue
            if best is None or (score.containment, best.story_id) > (
                best.score.containment,
                story_id,
            ):
                best = NearMatch(story_id, src, ident, score)
        if best is not None:
            out[(item.source, item.identity)] = best
    return out


def _stored_sketches(
    conn: Connection, keys: Iterable[tuple[str, str]], settings: NearDupSettings
) -> dict[tuple[str, str], Sketch]:
    out: dict[tuple[str, str], Sketch] = {}
    by_source: dict[str, list[str]] = {}
    for src, ident in keys:
        by_source.setdefault(src, []).append(ident)
    for src, idents in by_source.items():
        for i in range(0, len(idents), 500):
            rows = conn.execute(
                sa.select(entries.c.source, entries.c.identity, entries.c.content_html).where(
                    (entries.c.source == src) & entries.c.identity.in_(idents[i : i + 500])
                )
            )
            for row in rows:
                sk = neardup.sketch_text(neardup.body_text_html(row.content_html), settings)
                if sk is not None:
                    out[(row.source, row.identity)] = sk
    return out


def record_join(
    conn: Connection,
    item: Item,
    story_id: str,
    rule: str,
    *,
    match: NearMatch | None = None,
    now: datetime,
) -> None:
    """Remember how an entry came to its story (``new``, ``link``, ``content``, ``near``)."""
    conn.execute(
        story_joins.delete().where(
            (story_joins.c.source == item.source) & (story_joins.c.identity == item.identity)
        )
    )
    conn.execute(
        story_joins.insert(),
        {
            "source": item.source,
            "identity": item.identity,
            "story_id": story_id,
            "rule": rule,
            "matched_source": match.source if match else None,
            "matched_identity": match.identity if match else None,
            "containment": match.score.containment if match else None,
            "resemblance": match.score.resemblance if match else None,
            "reason": match.score.reason if match else None,
            "joined_at": now,
        },
    )


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


def join_rows(conn: Connection, story_id: str) -> list[dict[str, Any]]:
    """How each entry of a story joined it, in the order they were stored."""
    query = (
        sa.select(story_joins)
        .where(story_joins.c.story_id == story_id)
        .order_by(story_joins.c.joined_at, story_joins.c.source, story_joins.c.identity)
    )
    return [dict(r._mapping) for r in conn.execute(query)]
