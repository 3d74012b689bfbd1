"""Poll history: one row per poll of each source, the last :data:`POLLS_KEPT` kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Outcome, Poll, utc
from aggregator.store.database import Database, chunks
from aggregator.store.schema import poll_history

__all__ = ["POLLS_KEPT", "PollHistory", "delete_source", "write_polls"]

#: polls kept per source; older ones go when a newer one is written
POLLS_KEPT = 200

_NEWEST_DROPPED = (
    sa.select(poll_history.c.id)
    .where(poll_history.c.source == sa.bindparam("k_source"))
    .order_by(poll_history.c.id.desc())
    .offset(POLLS_KEPT)
    .limit(1)
    .scalar_subquery()
)
# Everything at or below the newest row past the kept ones; nothing when the
# source has no more than POLLS_KEPT rows (the comparison with NULL is false).
_BOUND = poll_history.delete().where(
    (poll_history.c.source == sa.bindparam("k_source")) & (poll_history.c.id <= _NEWEST_DROPPED)
)
_COLUMNS = (
    poll_history.c.source,
    poll_history.c.at,
    poll_history.c.outcome,
    poll_history.c.status,
    poll_history.c.seconds,
    poll_history.c.bytes,
    poll_history.c.new,
    poll_history.c.updated,
    poll_history.c.error_class,
)


def write_polls(conn: Connection, polls: Sequence[Poll]) -> None:
    """Record polls and drop each source's rows beyond the newest :data:`POLLS_KEPT`.

    Runs inside the caller's transaction: the writer's batch, which saves the
    sources' states in the same one.
    """
    if not polls:
        return
    conn.execute(
        poll_history.insert(),
        [
            {
                "source": p.source,
                "at": p.at,
                "outcome": p.outcome.value,
                "status": p.status,
                "seconds": p.seconds,
                "bytes": p.received,
                "new": p.new,
                "updated": p.updated,
                "error_class": p.error_class,
            }
            for p in polls
        ],
    )
    conn.execute(_BOUND, [{"k_source": s} for s in sorted({p.source for p in polls})])


def delete_source(conn: Connection, source: str) -> None:
    """Forget a removed source's polls."""
    conn.execute(poll_history.delete().where(poll_history.c.source == source))


def _poll(row: Any) -> Poll:
    return Poll(
        source=row.source,
        at=row.at,
        outcome=Outcome(row.outcome),
        status=row.status,
        seconds=row.seconds,
        received=row.bytes,
        new=row.new,
        updated=row.updated,
        error_class=row.error_class,
    )


class PollHistory:
    """Reading and pruning the poll history, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def poll_history(self, sources: Sequence[str] | None = None) -> dict[str, list[Poll]]:
        """Each source's recorded polls, oldest first (sources never polled are absent).

        Args:
            sources: only these; None for every source.
        """
        order = (poll_history.c.source, poll_history.c.id)
        found: dict[str, list[Poll]] = {}
        with self._db.read() as conn:
            if sources is None:
                rows = list(conn.execute(sa.select(*_COLUMNS).order_by(*order)))
            else:
                rows = []
                for chunk in chunks(sources):
                    query = sa.select(*_COLUMNS).where(poll_history.c.source.in_(chunk))
                    rows += conn.execute(query.order_by(*order))
        for row in rows:
            found.setdefault(row.source, []).append(_poll(row))
        return found

    def prune_polls(self, before: datetime) -> int:
        """Remove polls older than ``before`` (retention); returns how many went."""
        stmt = poll_history.delete().where(poll_history.c.at < utc(before))
        with self._db.write() as conn:
            return conn.execute(stmt).rowcount
