"""Sources: the configured set, each one's fetch state, and when it is due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import SourceSpec, SourceState, utc
from aggregator.store import entries as entry_ops
from aggregator.store import files as file_ops
from aggregator.store.database import Database
from aggregator.store.rows import state_from_row, state_values
from aggregator.store.schema import sources
from aggregator.store.values import IngestReport

__all__ = ["Sources", "write_state"]

_SAVE_STATE = sources.update().where(sources.c.name == sa.bindparam("k_name"))


class Sources:
    """Configured sources and their fetch state, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def sync_sources(self, specs: Sequence[SourceSpec], *, now: datetime) -> IngestReport:
        """Make the stored sources match the config; see :meth:`SQLStore.sync_sources`."""
        now = utc(now)
        report = IngestReport()
        wanted = {s.name: s for s in specs}
        with self._db.write() as conn:
            stored = {
                r.name: r for r in conn.execute(sa.select(sources.c.name, sources.c.configured))
            }
            for name, spec in wanted.items():
                row = stored.get(name)
                if row is None:
                    conn.execute(
                        sources.insert().values(
                            name=name,
                            kind=spec.kind.value,
                            configured=spec.location,
                            location=spec.location,
                            consecutive_failures=0,
                            moved_seen=0,
                            url_history=[],
                            gone=False,
                        )
                    )
                elif row.configured != spec.location:
                    conn.execute(
                        sources.update()
                        .where(sources.c.name == name)
                        .values(
                            kind=spec.kind.value,
                            configured=spec.location,
                            location=spec.location,
                            etag=None,
                            last_modified=None,
                            next_due_at=None,
                            consecutive_failures=0,
                            moved_to=None,
                            moved_seen=0,
                            discovered_feed=None,
                            gone=False,
                        )
                    )
            for name in sorted(set(stored) - set(wanted)):
                identities = entry_ops.identities_of(conn, name)
                report += entry_ops.remove(conn, name, identities, now=now, reason="deleted")
                file_ops.delete_source(conn, name)
                conn.execute(sources.delete().where(sources.c.name == name))
        return report

    def get_state(self, name: str) -> SourceState | None:
        """A source's fetch state; None for a source not in the store."""
        with self._db.read() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.name == name)).first()
        return None if row is None else state_from_row(row)

    def states(self) -> list[SourceState]:
        """Every source's fetch state, by name."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(sources).order_by(sources.c.name)).all()
        return [state_from_row(r) for r in rows]

    def save_state(self, state: SourceState) -> None:
        """Save a source's fetch state."""
        with self._db.write() as conn:
            write_state(conn, [state])

    def due_sources(self, now: datetime) -> list[str]:
        """Names of sources due at ``now`` (never polled, or next_due_at passed), soonest first."""
        query = (
            sa.select(sources.c.name)
            .where(sources.c.gone.is_(False))
            .where(sa.or_(sources.c.next_due_at.is_(None), sources.c.next_due_at <= now))
            .order_by(sources.c.next_due_at.is_not(None), sources.c.next_due_at, sources.c.name)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())


def write_state(conn: Connection, states: Sequence[SourceState]) -> None:
    """Save sources' fetch states, inside the caller's transaction."""
    rows = []
    for state in states:
        values = state_values(state)
        values["k_name"] = values.pop("name")
        rows.append(values)
    if rows:
        conn.execute(_SAVE_STATE, rows)
