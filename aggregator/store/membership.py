"""Topic membership of stories (``story_topics``), inside a caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Item
from aggregator.store import stamps
from aggregator.store.schema import UTCDateTime, entries, stories, story_topics
from aggregator.store.values import MatchesMany, TopicMatchers

__all__ = [
    "add",
    "drop_story",
    "matching",
    "matching_many",
    "matching_stories",
    "rematch",
    "resync",
    "sources_of",
    "topics_of",
]

_TOPICS_OF = sa.select(story_topics.c.topic).where(
    story_topics.c.story_id == sa.bindparam("k_story")
)


def matching(item: Item, matchers: TopicMatchers) -> frozenset[str]:
    """The topics whose predicate accepts ``item``."""
    if isinstance(matchers, MatchesMany):
        # Indexes the item once, not once per question.
        return matchers.matching_many((item,), matchers.keys())[0]
    return frozenset(name for name, match in matchers.items() if match(item))


def matching_many(
    items: Sequence[Item], matchers: TopicMatchers, names: Collection[str]
) -> list[frozenset[str]]:
    """For each item, the topics among ``names`` whose predicate accepts it."""
    if isinstance(matchers, MatchesMany):
        return matchers.matching_many(items, names)
    chosen = {name: matchers[name] for name in names}
    return [matching(item, chosen) for item in items]


def matching_stories(
    items: Sequence[Item],
    sources: Sequence[Iterable[str]],
    matchers: TopicMatchers,
    names: Collection[str],
) -> list[frozenset[str]]:
    """For each story (its canonical item), the topics among ``names`` it is in.

    A story is in a topic scoped to sources when *any* of its entries comes
    from one of them: which entry represents the story must not change its
    topics. So the canonical item is asked once as it is, then, for the
    topics it missed, once as told by each other source of the story.

    Args:
        items: each story's canonical item.
        sources: for each story, in the same order, the sources of its entries.
        matchers: the topic predicates.
        names: the topics to decide.
    """
    found = matching_many(items, matchers, names)
    for n, (item, carried) in enumerate(zip(items, sources, strict=True)):
        for source in sorted(set(carried) - {item.source}):
            missed = [name for name in names if name not in found[n]]
            if not missed:
                break
            found[n] |= matching_many([replace(item, source=source)], matchers, missed)[0]
    return found


def sources_of(conn: Connection, story_ids: Sequence[str]) -> dict[str, frozenset[str]]:
    """The sources of each story's entries."""
    out: dict[str, set[str]] = {}
    if story_ids:
        rows = conn.execute(
            sa.select(entries.c.story_id, entries.c.source)
            .where(entries.c.story_id.in_(list(story_ids)))
            .distinct()
        )
        for sid, source in rows:
            out.setdefault(sid, set()).add(source)
    return {sid: frozenset(found) for sid, found in out.items()}


def topics_of(conn: Connection, story_id: str) -> frozenset[str]:
    """The topics a story is in now."""
    return frozenset(conn.execute(_TOPICS_OF, {"k_story": story_id}).scalars())


def add(conn: Connection, story_id: str, names: Iterable[str], *, now: datetime) -> None:
    """Put a story into topics it is not in yet."""
    names = sorted(names)
    if not names:
        return
    published = conn.execute(
        sa.select(stories.c.published).where(stories.c.id == story_id)
    ).scalar_one()
    seq = stamps.stamp(conn)
    rows = [
        {"topic": t, "story_id": story_id, "matched_at": now, "published": published, "seq": seq}
        for t in names
    ]
    conn.execute(story_topics.insert(), rows)


def drop_story(conn: Connection, story_id: str) -> frozenset[str]:
    """Take a story out of every topic; return the topics it was in."""
    names = topics_of(conn, story_id)
    if names:
        _left(conn)
        conn.execute(story_topics.delete().where(story_topics.c.story_id == story_id))
    return names


def _left(conn: Connection) -> None:
    # A story leaving a topic writes no stamp on a row (the topic's count
    # tells its publish), but the transaction takes one all the same: a
    # process serving this store learns from the counter that it changed.
    stamps.stamp(conn)


def rematch(
    conn: Connection,
    story_id: str,
    item: Item,
    old: frozenset[str],
    matchers: TopicMatchers,
    *,
    now: datetime,
) -> frozenset[str]:
    """Re-match a story whose canonical item changed; return the topics touched (old and new).

    The story's other sources count for topics scoped to sources (see
    :func:`matching_stories`).
    """
    carried = sources_of(conn, [story_id]).get(story_id, frozenset())
    new = matching_stories([item], [carried], matchers, matchers.keys())[0]
    if old - new:
        _left(conn)
        conn.execute(
            story_topics.delete().where(
                (story_topics.c.story_id == story_id) & story_topics.c.topic.in_(sorted(old - new))
            )
        )
    add(conn, story_id, new - old, now=now)
    return old | new


def resync(
    conn: Connection,
    story_ids: Sequence[str],
    matched: Sequence[frozenset[str]],
    names: Collection[str],
    *,
    now: datetime,
) -> None:
    """Make the stories' membership in topics ``names`` what ``matched`` says.

    Only the difference is written: memberships that stay keep their
    ``matched_at``. One ``DELETE`` and one ``INSERT ... SELECT`` per topic
    that changed, whatever the number of stories, so ``now`` is converted
    once per statement rather than once per row; a story deleted meanwhile
    is skipped by the ``SELECT`` instead of failing its foreign key.

    Args:
        story_ids: the stories (at most a few thousand: they are bound
            parameters).
        matched: for each story, in the same order, the topics among
            ``names`` it is in now.
        names: the topics being re-matched.
        now: ``matched_at`` of the new memberships.
    """
    if not story_ids or not names:
        return
    pairs = zip(story_ids, matched, strict=True)
    wanted = {(topic, sid) for sid, topics in pairs for topic in topics}
    held = {
        (topic, sid)
        for topic, sid in conn.execute(
            sa.select(story_topics.c.topic, story_topics.c.story_id).where(
                story_topics.c.topic.in_(sorted(names)),
                story_topics.c.story_id.in_(list(story_ids)),
            )
        )
    }
    for topic, sids in _by_topic(held - wanted):
        _left(conn)
        conn.execute(
            story_topics.delete().where(
                (story_topics.c.topic == topic) & story_topics.c.story_id.in_(sids)
            )
        )
    joined = _by_topic(wanted - held)
    if not joined:
        return
    when = sa.literal(now, UTCDateTime())
    seq = sa.literal(stamps.stamp(conn), story_topics.c.seq.type)
    for topic, sids in joined:
        rows = sa.select(
            sa.literal(topic, story_topics.c.topic.type),
            stories.c.id,
            when,
            stories.c.published,
            seq,
        ).where(stories.c.id.in_(sids))
        conn.execute(
            story_topics.insert().from_select(
                ["topic", "story_id", "matched_at", "published", "seq"], rows
            )
        )


def _by_topic(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """``(topic, story_id)`` pairs grouped by topic, both sorted (stable statements)."""
    grouped: defaultdict[str, list[str]] = defaultdict(list)
    for topic, sid in pairs:
        grouped[topic].append(sid)
    return [(topic, sorted(grouped[topic])) for topic in sorted(grouped)]
