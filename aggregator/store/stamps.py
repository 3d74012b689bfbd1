"""The store's change stamp: one increasing number per write transaction that changes a topic.

Whatever changes what a topic publishes writes the transaction's stamp: a
story's ``version`` when its entries, canonical entry or dates change, a
membership's ``seq`` when a story joins a topic. Publishing records the
stamp it read a topic at (:func:`current`); next time, the stories and
memberships stamped above it are all that changed (``ix_stories_version``,
``ix_story_topics_seq``), and a count tells whether any story left.

Two rules make that reading complete: stamps only grow, and no stamp
becomes visible after a reader recorded a :func:`current` at or above it.

* **SQLite** (one writer at a time): a counter row in ``counters``,
  incremented once per transaction; the write lock orders the commits, so
  the last value taken is also the last committed.
* **PostgreSQL** (many writers at once): a counter row would be a lock every
  writer queues on until it commits. The stamp is the transaction's own id
  (``pg_current_xact_id()``, assigned in start order, never contended) plus
  an offset (sequence ``stamp_offset``) that keeps it above every stamp the
  store held before (migration 0012, :func:`rebase`). Transactions commit in
  any order, so the stamp a reader may record is *below the oldest
  transaction still running* (``pg_snapshot_xmin`` of its snapshot, minus
  one): every stamp at or below it is committed (or rolled back), and
  visible to the same snapshot. A reader may see changes stamped above it
  (committed early); it records the lower value and reads them again next
  time: changes are never missed, at worst read twice. A long transaction
  anywhere in the cluster holds the recorded stamp back while it runs,
  which widens what the next read re-reads, never what it misses.

Which stamps another process took (:meth:`SQLStore.foreign_changes`) is
counted on PostgreSQL by sequence ``change_count``, one value per stamped
transaction: transaction ids also count writes that change no topic. A
stamped transaction that rolls back spends a value too, so a retried batch
can make a daemon republish once for nothing, never miss a change.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.database import OWN_SCOPE, TAKEN_SCOPE
from aggregator.store.database import STAMP_SCOPE as SCOPE
from aggregator.store.schema import counters, stories, story_topics

__all__ = ["changes_counted", "current", "rebase", "stamp"]

_NAME = "change"

_NEXT = (
    counters.update()
    .where(counters.c.name == _NAME)
    .values(value=counters.c.value + 1)
    .returning(counters.c.value)
)
_PG_OFFSET = "(SELECT last_value FROM stamp_offset)"
_PG_STAMP = sa.text(
    f"SELECT pg_current_xact_id()::text::bigint + {_PG_OFFSET}, nextval('change_count')"
)
_PG_CURRENT = sa.text(
    f"SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1 + {_PG_OFFSET}"
)
_PG_COUNTED = sa.text(
    "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM change_count"
)


def stamp(conn: Connection) -> int:
    """The stamp of the write transaction on ``conn``, taking one on first use."""
    held = conn.info.get(SCOPE)
    if held:
        return int(held)
    report = conn.info.get(TAKEN_SCOPE) if SCOPE in conn.info else None
    if report is not None:
        # PostgreSQL's readers count the change_count value once it is taken,
        # before it reaches this process: the store hears of the take first.
        conn.info[OWN_SCOPE] = None
        report(None)
    counted = None
    if conn.dialect.name == "postgresql":
        value, counted = conn.execute(_PG_STAMP).one()
    else:
        value = conn.execute(_NEXT).scalar()
        if value is None:
            # First stamp of this store: above every version it holds.
            value = _top(conn) + 1
            conn.execute(counters.insert().values(name=_NAME, value=value))
    if SCOPE in conn.info:
        conn.info[SCOPE] = value
        # What changes_counted counts of it (foreign_changes): the stamp on
        # SQLite, the change_count value on PostgreSQL.
        own = int(value if counted is None else counted)
        conn.info[OWN_SCOPE] = own
        if report is not None:
            report(own)
    return int(value)


def current(conn: Connection) -> int:
    """The stamp a reader may record: every stamp up to it is committed and visible to ``conn``.

    On PostgreSQL, call it first in a snapshot transaction (it reads that snapshot).
    """
    if conn.dialect.name == "postgresql":
        return int(conn.execute(_PG_CURRENT).scalar_one())
    value = conn.execute(sa.select(counters.c.value).where(counters.c.name == _NAME)).scalar()
    return int(value or 0)


def changes_counted(conn: Connection) -> int:
    """How many stamped transactions the store has counted (the stamp itself on SQLite)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(_PG_COUNTED).scalar_one())
    return current(conn)


def rebase(conn: Connection) -> None:
    """PostgreSQL: keep the next stamps above every stamp the store holds (after a copy)."""
    if conn.dialect.name != "postgresql":
        return
    top = _top(conn)
    conn.execute(
        sa.text(
            "SELECT setval('stamp_offset', GREATEST("
            f"{_PG_OFFSET}, :top + 1 - pg_current_xact_id()::text::bigint))"
        ),
        {"top": top},
    )


def _top(conn: Connection) -> int:
    """The highest stamp the store holds: its counter, story versions, memberships."""
    highest = [
        sa.select(sa.func.max(counters.c.value)).where(counters.c.name == _NAME),
        sa.select(sa.func.max(stories.c.version)),
        sa.select(sa.func.max(story_topics.c.seq)),
    ]
    return max(int(conn.execute(query).scalar() or 0) for query in highest)
