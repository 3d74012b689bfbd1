"""An editor's hand over stories: split, merge, hide, pin, kept in ``story_edits``.

Each decision is a row, applied when made and kept: memberships are
enforced again after every write batch (:func:`enforce`: a hidden story
never comes back to a topic by re-matching, a pinned one stays in its topic
until its time), and ``stories --rebuild`` replays the splits and merges in
the order they were made (:func:`reapply`). Every change takes a change
stamp, so a running daemon republishes what changed on its next tick.

- **split** STORY ENTRY: the entry leaves for a story of its own, whose id is
  minted from the entry (stable: the same split gives the same id); STORY
  keeps its id.
- **merge** STORY STORY: the older story keeps its id, the other joins it
  (:func:`aggregator.store.merge.merge_stories`); the younger one's canonical
  entry is recorded, so a rebuild merges its story again.
- **hide** STORY [TOPIC]: out of one topic, or of every topic.
- **pin** STORY TOPIC [UNTIL]: in the topic whatever its query says, until then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store import entries as entry_ops
from aggregator.store import membership, merge
from aggregator.store.database import chunks
from aggregator.store.rows import item_from_row
from aggregator.store.schema import entries, stories, story_edits, story_joins, story_topics
from aggregator.store.values import TopicMatchers
from aggregator.stories.dedup import mint_story_id

__all__ = ["EditError", "edit_rows", "enforce", "hide", "merge_two", "pin", "reapply", "split"]


_HIDES_AND_PINS = (
    sa.select(story_edits).where(story_edits.c.kind.in_(["hide", "pin"])).order_by(story_edits.c.id)
)


class EditError(ValueError):
    """An edit that cannot be made (an entry not in the story, a story merged with itself)."""


def _record(conn: Connection, kind: str, story_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        story_edits.insert(), {"kind": kind, "story_id": story_id, "made_at": now, **values}
    )


def _story_of(conn: Connection, source: str, identity: str) -> str | None:
    where = (entries.c.source == source) & (entries.c.identity == identity)
    found = conn.execute(sa.select(entries.c.story_id).where(where)).scalar()
    return str(found) if found is not None else None


def _move_out(
    conn: Connection, source: str, identity: str, new_id: str, *, now: datetime, matchers: Any
) -> frozenset[str]:
    """Move an entry into story ``new_id`` (created from it when absent); the dirty topics."""
    old = _story_of(conn, source, identity)
    if old is None or old == new_id:
        return frozenset()
    where = (entries.c.source == source) & (entries.c.identity == identity)
    if conn.execute(sa.select(stories.c.id).where(stories.c.id == new_id)).first() is None:
        item = item_from_row(conn.execute(sa.select(entries).where(where)).one())
        row = entry_ops.story_row(item, new_id, now)
        conn.execute(stories.insert(), {**row, "content_hash": ""})
    conn.execute(entries.update().where(where).values(story_id=new_id))
    joins = (story_joins.c.source == source) & (story_joins.c.identity == identity)
    conn.execute(story_joins.update().where(joins).values(story_id=new_id, rule="split"))
    dirty = membership.topics_of(conn, old)
    if conn.execute(sa.select(entries.c.source).where(entries.c.story_id == old)).first() is None:
        dirty |= membership.drop_story(conn, old)
        conn.execute(stories.delete().where(stories.c.id == old))
    else:
        dirty |= entry_ops.recanonicalise(conn, old, now=now, matchers=matchers, rematch=True)
    dirty |= entry_ops.refresh_story(conn, new_id, now=now, matchers=matchers, rematch=True)
    return dirty


def split(
    conn: Connection,
    story_id: str,
    source: str,
    identity: str,
    *,
    now: datetime,
    matchers: TopicMatchers | None,
) -> tuple[str, frozenset[str]]:
    """Take an entry out of its story into one of its own; the new id and the dirty topics."""
    if _story_of(conn, source, identity) != story_id:
        raise EditError(f"{source}:{identity} is not an entry of story {story_id}")
    count = sa.select(sa.func.count()).where(entries.c.story_id == story_id)
    if conn.execute(count).scalar_one() < 2:
        raise EditError(f"story {story_id} has only that entry: nothing to split")
    new_id = mint_story_id(source, f"{identity}#split")
    dirty = _move_out(conn, source, identity, new_id, now=now, matchers=matchers)
    _record(conn, "split", story_id, now, other_story=new_id, source=source, identity=identity)
    return new_id, dirty | enforce(conn, now=now)


def merge_two(
    conn: Connection, first: str, second: str, *, now: datetime, matchers: TopicMatchers | None
) -> tuple[str, frozenset[str]]:
    """Merge two stories (the older keeps its id); the winner and the dirty topics."""
    if first == second:
        raise EditError(f"story {first} cannot be merged with itself")
    found = conn.execute(
        sa.select(stories.c.id, stories.c.canonical_source, stories.c.canonical_identity).where(
            stories.c.id.in_([first, second])
        )
    ).all()
    if len(found) != 2:
        raise EditError(f"both stories must exist: {first}, {second}")
    winner, dirty = merge.merge_stories(conn, [first, second], now=now, matchers=matchers)
    loser = next(r for r in found if r.id != winner)
    _record(
        conn,
        "merge",
        winner,
        now,
        other_story=loser.id,
        source=loser.canonical_source,
        identity=loser.canonical_identity,
    )
    return winner, dirty | enforce(conn, now=now)


def hide(conn: Connection, story_id: str, topic: str | None, *, now: datetime) -> frozenset[str]:
    """Keep a story out of one topic (or every topic); the topics it left."""
    _record(conn, "hide", story_id, now, topic=topic)
    return enforce(conn, now=now)


def pin(
    conn: Connection, story_id: str, topic: str, until: datetime | None, *, now: datetime
) -> frozenset[str]:
    """Keep a story in a topic until ``until`` (None: for good); the topics it joined."""
    _record(conn, "pin", story_id, now, topic=topic, until=until)
    return enforce(conn, now=now)


def enforce(conn: Connection, *, now: datetime) -> frozenset[str]:
    """Make memberships obey the hides and live pins; the topics changed.

    A hide made after a pin of the same story and topic wins, and the other
    way round: the later decision holds.
    """
    rows = conn.execute(_HIDES_AND_PINS).all()
    if not rows:
        return frozenset()
    #: (story, topic or None) -> "hide" or "pin"
    wanted: dict[tuple[str, str | None], str] = {}
    for row in rows:
        if row.kind == "pin" and row.until is not None and row.until <= now:
            wanted.pop((row.story_id, row.topic), None)
            continue
        if row.kind == "pin":
            wanted.pop((row.story_id, None), None)
        wanted[(row.story_id, row.topic)] = row.kind
    # Only the stories the edits name are looked up: this runs after every write batch.
    named = sorted({story_id for story_id, _topic in wanted})
    held: set[str] = set()
    for chunk in chunks(named):
        held.update(conn.execute(sa.select(stories.c.id).where(stories.c.id.in_(chunk))).scalars())
    dirty: set[str] = set()
    for (story_id, topic), kind in sorted(
        wanted.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        if story_id not in held:
            continue
        now_in = membership.topics_of(conn, story_id)
        if kind == "hide":
            gone = now_in if topic is None else now_in & {topic}
            if gone:
                stamp_leave(conn, story_id, gone)
                dirty |= gone
        elif topic is not None and topic not in now_in:
            membership.add(conn, story_id, [topic], now=now)
            dirty.add(topic)
    return frozenset(dirty)


def stamp_leave(conn: Connection, story_id: str, topics: frozenset[str]) -> None:
    """Take a story out of topics, taking a change stamp."""
    from aggregator.store import stamps

    stamps.stamp(conn)
    conn.execute(
        story_topics.delete().where(
            (story_topics.c.story_id == story_id) & story_topics.c.topic.in_(sorted(topics))
        )
    )


def reapply(conn: Connection, *, now: datetime, matchers: TopicMatchers | None) -> frozenset[str]:
    """Replay the splits and merges in the order made (after a rebuild), then enforce the rest."""
    dirty: set[str] = set()
    rows = conn.execute(
        sa.select(story_edits)
        .where(story_edits.c.kind.in_(["split", "merge"]))
        .order_by(story_edits.c.id)
    ).all()
    for row in rows:
        if row.kind == "split" and row.other_story:
            dirty |= _move_out(
                conn, row.source, row.identity, row.other_story, now=now, matchers=matchers
            )
            continue
        other = _story_of(conn, row.source, row.identity) if row.source else None
        present = conn.execute(sa.select(stories.c.id).where(stories.c.id == row.story_id)).first()
        if other and present and other != row.story_id:
            _winner, changed = merge.merge_stories(
                conn, [row.story_id, other], now=now, matchers=matchers
            )
            dirty |= changed
    return frozenset(dirty) | enforce(conn, now=now)


def edit_rows(conn: Connection, story_id: str) -> list[dict[str, Any]]:
    """The edits that name a story (as the one edited, or the other one), oldest first."""
    query = (
        sa.select(story_edits)
        .where((story_edits.c.story_id == story_id) | (story_edits.c.other_story == story_id))
        .order_by(story_edits.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]
