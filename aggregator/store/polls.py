"""Poll history: one row per poll of each source, the last :data:`POLLS_KEPT` kept."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Outcome, Poll, utc
from aggregator.store.database import Database, chunks
from aggregator.store.schema import poll_history, sources

__all__ = ["POLLS_KEPT", "PollHistory", "bound", "delete_source", "poll_rows"]

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
# Each source's newest poll's time: one index seek per source (``source, id``).
_LAST_SECONDS = sa.select(
    sources.c.name,
    sa.select(poll_history.c.seconds)
    .where(poll_history.c.source == sources.c.name)
    .order_by(poll_history.c.id.desc())
    .limit(1)
    .scalar_subquery(),
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
# On SQLite the time is read as its stored text and parsed here: SQLAlchemy's
# generic parse was most of the time of reading a full history (200k rows).
_SQLITE_COLUMNS = (_COLUMNS[0], sa.type_coerce(poll_history.c.at, sa.String), *_COLUMNS[2:])


def poll_rows(polls: Sequence[Poll]) -> list[dict[str, Any]]:
    """The ``poll_history`` rows of ``polls`` (the writer inserts them in bulk)."""
    return [
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
    ]


def bound(conn: Connection, sources: Iterable[str]) -> None:
    """Drop each source's rows beyond its newest :data:`POLLS_KEPT`, in the caller's transaction."""
    names = sorted(set(sources))
    if names:
        conn.execute(_BOUND, [{"k_source": s} for s in names])


def delete_source(conn: Connection, source: str) -> None:
    """Forget a removed source's polls."""
    conn.execute(poll_history.delete().where(poll_history.c.source == source))


_OUTCOMES = {o.value: o for o in Outcome}


def _poll(row: Any, at: datetime) -> Poll:
    source, _, outcome, status, seconds, received, new, updated, error_class = row
    return Poll(
        source, at, _OUTCOMES[outcome], status, seconds, received, new, updated, error_class
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
        text = self._db.dialect == "sqlite"
        select = sa.select(*(_SQLITE_COLUMNS if text else _COLUMNS))
        order = (poll_history.c.source, poll_history.c.id)
        with self._db.read() as conn:
            if sources is None:
                rows = list(conn.execute(select.order_by(*order)))
            else:
                rows = []
                for chunk in chunks(sources):
                    query = select.where(poll_history.c.source.in_(chunk)).order_by(*order)
                    rows += conn.execute(query)
        found: dict[str, list[Poll]] = {}
        for row in rows:
            at = datetime.fromisoformat(row[1]).replace(tzinfo=UTC) if text else row[1]
            found.setdefault(row[0], []).append(_poll(row, at))
        return found

    def last_seconds(self) -> dict[str, float]:
        """Each source's newest poll's fetch-and-parse time (sources never polled are absent)."""
        with self._db.read() as conn:
            return {name: t for name, t in conn.execute(_LAST_SECONDS) if t is not None}

    def prune_polls(self, before: datetime) -> int:
        """Remove polls older than ``before`` (retention); returns how many went."""
        stmt = poll_history.delete().where(poll_history.c.at < utc(before))
        with self._db.write() as conn:
            return conn.execute(stmt).rowcount
