"""``aggregator stories --rebuild``: every stored entry re-clustered with the current settings.

Entries are replayed in the order they were first seen through the rules of
ingest (:mod:`aggregator.store.stories`), and ids are kept where a cluster
persists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store import semindex
from aggregator.store.rows import item_from_row
from aggregator.store.schema import (
    entries,
    stories,
    story_index,
    story_joins,
    story_topics,
    story_vectors,
)
from aggregator.store.stories import entry_key, find_near, index_entry, record_join, semantic_match
from aggregator.stories import neardup
from aggregator.stories.dedup import mint_story_id
from aggregator.stories.neardup import NearDupSettings

__all__ = ["RebuildReport", "rebuild"]


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What ``aggregator stories --rebuild`` changed."""

    stories_before: int
    stories_after: int
    #: entries now in another story than before
    moved: int
    #: stories of the new clustering that kept an id from before
    kept: int


def _assign_ids(
    clusters: Sequence[Sequence[tuple[str, str]]],
    old_id: dict[tuple[str, str], str],
    age: dict[str, datetime],
    canonical: dict[str, tuple[str, str]],
) -> tuple[list[str], int]:
    """Give each new cluster an id: an old id its entries had, else a minted one.

    Wishes are granted greedily: first the cluster holding the entry the old
    story was published as (its canonical entry: what subscribers hold under
    that id), then most entries, then the cluster holding the entry the id
    was minted from, then the older story's id, then the earlier cluster.
    """
    wishes: list[tuple[bool, int, bool, datetime, int, str]] = []
    for n, members in enumerate(clusters):
        votes: dict[str, int] = {}
        for key in members:
            votes[old_id[key]] = votes.get(old_id[key], 0) + 1
        founders = {mint_story_id(*key) for key in members}
        held = set(members)
        wishes.extend(
            (canonical.get(sid) not in held, -count, sid not in founders, age[sid], n, sid)
            for sid, count in votes.items()
        )
    chosen: dict[int, str] = {}
    taken: set[str] = set()
    for _published, _count, _not_founder, _age, n, sid in sorted(wishes):
        if n not in chosen and sid not in taken:
            chosen[n] = sid
            taken.add(sid)
    kept = len(chosen)
    for n, members in enumerate(clusters):
        if n in chosen:
            continue
        minted = (mint_story_id(*key) for key in members)
        fallback = mint_story_id(members[0][0], f"{members[0][1]}#rebuild{n}")
        new = next((m for m in minted if m not in taken), fallback)
        chosen[n] = new
        taken.add(new)
    return [chosen[n] for n in range(len(clusters))], kept


def rebuild(
    conn: Connection,
    settings: NearDupSettings,
    *,
    now: datetime,
    refresh: Callable[[Connection, str], frozenset[str]],
) -> tuple[RebuildReport, frozenset[str]]:
    """Re-cluster every stored entry with ``settings``, keeping ids where a cluster persists.

    Entries are replayed in the order they were first seen through the same
    rules as ingest (same link, same text, near duplicate; an entry that
    nearly repeats entries of several clusters merges them). An old story's
    id goes to the cluster holding its canonical entry (the one published
    under that id), else to the cluster holding most of its entries; a
    cluster left without one gets the id minted from its first entry.

    Args:
        conn: a write transaction.
        settings: the (new) thresholds.
        now: the time of the rebuild.
        refresh: re-derives one story (canonical entry, content, topics); returns dirty topics.

    Returns:
        The counts, and the topics whose documents changed.
    """
    rows = conn.execute(
        sa.select(entries).order_by(entries.c.first_seen, entries.c.source, entries.c.identity)
    ).all()
    before = conn.execute(sa.select(sa.func.count()).select_from(stories)).scalar_one()
    conn.execute(story_index.delete())
    conn.execute(story_joins.delete())
    conn.execute(story_vectors.delete())
    meaning = semindex.SemanticView(conn, settings, replay=True) if settings.semantic else None
    # Clusters are merged as ingest merges stories an entry bridges: a
    # union-find over cluster numbers, the lowest (oldest) number the root.
    parent: list[int] = []

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    cluster_of: dict[tuple[str, str], int] = {}
    old_id: dict[tuple[str, str], str] = {}
    by_link: dict[str, int] = {}
    by_content: dict[str, int] = {}
    for row in rows:
        item = item_from_row(row)
        key = (item.source, item.identity)
        old_id[key] = row.story_id
        rule, match = "new", None
        targets: list[int] = []
        if row.link_key and row.link_key in by_link:
            rule, targets = "link", [by_link[row.link_key]]
        elif row.content_key and row.content_key in by_content:
            rule, targets = "content", [by_content[row.content_key]]
        sketch = neardup.sketch(item, settings) if settings.enabled else None
        if sketch is not None:
            match = find_near(conn, item, sketch, settings, now=now)
            match = semantic_match(match, meaning, item, now=now, sketch=sketch)
            if match is not None:
                rule = rule if targets else "near"
                matched = [(match.source, match.identity), *((s, i) for _, s, i in match.others)]
                targets += [cluster_of[m] for m in matched]
        roots = sorted({root(t) for t in targets})
        if roots:
            target = roots[0]
            for other in roots[1:]:
                parent[other] = target
        else:
            target = len(parent)
            parent.append(target)
        cluster_of[key] = target
        if row.link_key:
            by_link.setdefault(row.link_key, target)
        if row.content_key:
            by_content.setdefault(row.content_key, target)
        index_entry(conn, item, sketch)
        rule = match.rule if rule == "near" and match else rule
        shown = match if rule in ("near", "semantic") else None
        record_join(conn, item, row.story_id, rule, match=shown, now=now)
        if meaning is not None:
            meaning.add(item, row.story_id, entry_key(*key), sketch)
    grouped: dict[int, list[tuple[str, str]]] = {}
    for key, n in cluster_of.items():
        grouped.setdefault(root(n), []).append(key)
    clusters = [grouped[n] for n in sorted(grouped)]
    age: dict[str, datetime] = {}
    canonical: dict[str, tuple[str, str]] = {}
    for r in conn.execute(
        sa.select(
            stories.c.id,
            stories.c.first_seen,
            stories.c.canonical_source,
            stories.c.canonical_identity,
        )
    ):
        age[r.id] = r.first_seen
        canonical[r.id] = (r.canonical_source, r.canonical_identity)
    new_ids, kept = _assign_ids(clusters, old_id, age, canonical)
    existing = set(conn.execute(sa.select(stories.c.id)).scalars())
    for members, sid in zip(clusters, new_ids, strict=True):
        if sid in existing:
            continue
        first = conn.execute(
            sa.select(entries).where(
                (entries.c.source == members[0][0]) & (entries.c.identity == members[0][1])
            )
        ).one()
        # An empty content hash makes refresh() re-derive content and topics.
        conn.execute(
            stories.insert(),
            {
                "id": sid,
                "canonical_source": first.source,
                "canonical_identity": first.identity,
                "published": first.published,
                "updated": now,
                # A story the rebuild split off is younger than the one it left:
                # a later rebuild that merges them again keeps the older id.
                "first_seen": now,
                "content_hash": "",
            },
        )
    moved, dirty = _move_entries(conn, clusters, new_ids, old_id, existing, refresh)
    report = RebuildReport(before, len(new_ids), moved, kept)
    return report, frozenset(dirty)


def _move_entries(
    conn: Connection,
    clusters: Sequence[Sequence[tuple[str, str]]],
    new_ids: Sequence[str],
    old_id: dict[tuple[str, str], str],
    existing: set[str],
    refresh: Callable[[Connection, str], frozenset[str]],
) -> tuple[int, set[str]]:
    """Move every entry to its cluster's story, drop the stories left empty; moved and dirty."""
    dirty: set[str] = set()
    moved = 0
    touched: set[str] = set()
    for members, sid in zip(clusters, new_ids, strict=True):
        for source, identity in members:
            if old_id[(source, identity)] == sid:
                continue
            moved += 1
            touched.update((sid, old_id[(source, identity)]))
            where = (entries.c.source == source) & (entries.c.identity == identity)
            conn.execute(entries.update().where(where).values(story_id=sid))
            conn.execute(
                story_joins.update()
                .where((story_joins.c.source == source) & (story_joins.c.identity == identity))
                .values(story_id=sid)
            )
    for sid in sorted(touched & set(new_ids)):
        dirty |= refresh(conn, sid)
    for sid in sorted(existing - set(new_ids)):
        dirty |= frozenset(
            conn.execute(
                sa.select(story_topics.c.topic).where(story_topics.c.story_id == sid)
            ).scalars()
        )
        conn.execute(story_topics.delete().where(story_topics.c.story_id == sid))
        conn.execute(stories.delete().where(stories.c.id == sid))
    return moved, dirty
