"""The store's change stamp: one increasing number per write transaction that changes a topic.

Whatever changes what a topic publishes writes the transaction's stamp: a
story's ``version`` when its entries, canonical entry or dates change, a
membership's ``seq`` when a story joins a topic. Publishing records the
stamp it read a topic at; next time, the stories and memberships stamped
above it are all that changed (``ix_stories_version``,
``ix_story_topics_seq``), and a count tells whether any story left.

Stamps only grow: the counter row is never decremented, and its first value
is above every version a store had before stamps (migration 0007). Within
one :meth:`~aggregator.store.database.Database.write` transaction every call
returns the same value, so a busy store spends one counter step per commit.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.database import STAMP_SCOPE as SCOPE
from aggregator.store.schema import counters, stories

__all__ = ["current", "stamp"]

_NAME = "change"

_NEXT = (
    counters.update()
    .where(counters.c.name == _NAME)
    .values(value=counters.c.value + 1)
    .returning(counters.c.value)
)


def stamp(conn: Connection) -> int:
    """The stamp of the write transaction on ``conn``, taking one on first use."""
    held = conn.info.get(SCOPE)
    if held:
        return int(held)
    value = conn.execute(_NEXT).scalar()
    if value is None:
        # First stamp of this store: above every version it holds.
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(stories.c.version), 0)))
        value = int(top.scalar_one()) + 1
        conn.execute(counters.insert().values(name=_NAME, value=value))
    if SCOPE in conn.info:
        conn.info[SCOPE] = value
    return int(value)


def current(conn: Connection) -> int:
    """The last stamp taken (0 before the first)."""
    value = conn.execute(sa.select(counters.c.value).where(counters.c.name == _NAME)).scalar()
    return int(value or 0)
