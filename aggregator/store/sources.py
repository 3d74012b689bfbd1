"""Sources: the configured set, each one's fetch state, and when it is due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import SourceSpec, SourceState, utc
from aggregator.store import entries as entry_ops
from aggregator.store import files as file_ops
from aggregator.store import polls as poll_ops
from aggregator.store.database import Database, chunks
from aggregator.store.polls import PollHistory
from aggregator.store.rows import state_from_row, state_values
from aggregator.store.rules import SourceRulesLog
from aggregator.store.schema import sources
from aggregator.store.values import IngestReport

__all__ = ["Sources", "write_state"]

_SAVE_STATE = sources.update().where(sources.c.name == sa.bindparam("k_name"))


def _active() -> sa.ColumnElement[bool]:
    """Neither gone, disabled in the config, nor put to rest: a source that is polled."""
    return sources.c.gone.is_(False) & sources.c.enabled.is_(True) & sources.c.disabled_at.is_(None)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return _active() & (sources.c.next_due_at.is_(None) | (sources.c.next_due_at <= now))


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sources.c.claimed_by.is_(None) | (sources.c.claim_expires_at <= now)


_SOONEST_FIRST = (sources.c.next_due_at.is_not(None), sources.c.next_due_at, sources.c.name)


class Sources:
    """Configured sources and their fetch state, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        #: each source's rules as last applied, and what they dropped
        self.rules = SourceRulesLog(db)
        #: each source's poll history
        self.polls = PollHistory(db)

    def sync_sources(self, specs: Sequence[SourceSpec], *, now: datetime) -> IngestReport:
        """Make the stored sources match the config; see :meth:`SQLStore.sync_sources`."""
        now = utc(now)
        report = IngestReport()
        wanted = {s.name: s for s in specs}
        with self._db.write() as conn:
            stored = {
                r.name: r
                for r in conn.execute(
                    sa.select(
                        sources.c.name,
                        sources.c.configured,
                        sources.c.enabled,
                        sources.c.keep_stories,
                    )
                )
            }
            for name, spec in wanted.items():
                _sync_one(conn, spec, stored.get(name))
            for name in sorted(set(stored) - set(wanted)):
                if not stored[name].keep_stories:
                    identities = entry_ops.identities_of(conn, name)
                    report += entry_ops.remove(conn, name, identities, now=now, reason="deleted")
                file_ops.delete_source(conn, name)
                poll_ops.delete_source(conn, name)
                conn.execute(sources.delete().where(sources.c.name == name))
        return report

    def enable_source(self, name: str) -> bool:
        """Bring a source put to rest (or gone) back: polled at once, its failures forgotten.

        Returns:
            False when the store holds no such source.
        """
        stmt = (
            sources.update()
            .where(sources.c.name == name)
            .values(
                gone=False,
                disabled_at=None,
                disabled_reason=None,
                failing_since=None,
                consecutive_failures=0,
                next_due_at=None,
                retry_after=None,
            )
        )
        with self._db.write() as conn:
            return conn.execute(stmt).rowcount == 1

    def keep_stories(self, name: str, keep: bool = True) -> bool:
        """Whether the source's entries stay when the config drops it (``remove --keep-stories``).

        Returns:
            False when the store holds no such source.
        """
        stmt = sources.update().where(sources.c.name == name).values(keep_stories=keep or None)
        with self._db.write() as conn:
            return conn.execute(stmt).rowcount == 1

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
        """Save a source's fetch state; this ends the update, so it releases the source's claim."""
        with self._db.write() as conn:
            write_state(conn, [state])

    def due_sources(self, now: datetime) -> list[str]:
        """Names of sources due at ``now`` (never polled, or next_due_at passed), soonest first."""
        query = sa.select(sources.c.name).where(_due(utc(now))).order_by(*_SOONEST_FIRST)
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def claim_due(
        self, now: datetime, *, owner: str, lease: timedelta, limit: int | None = None
    ) -> list[str]:
        """Claim the sources due at ``now`` that nobody holds, soonest first.

        Selecting and marking are one transaction (SQLite: ``BEGIN
        IMMEDIATE``; PostgreSQL: ``FOR UPDATE SKIP LOCKED``), so two
        dispatchers, threads or processes, never get the same source, and a
        source whose state was saved (which releases it) with a later due
        time is not handed out again.

        Args:
            now: the dispatch time (aware).
            owner: who claims: unique per dispatcher (e.g. host, pid and a counter).
            lease: how long the claim holds if the owner never saves the
                source's state (it died); then another owner may take it.
            limit: at most this many sources; None for all that are due.

        Returns:
            The names claimed, soonest due first.
        """
        now = utc(now)
        query = (
            sa.select(sources.c.name)
            .where(_due(now) & _free(now))
            .order_by(*_SOONEST_FIRST)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            # Rows another dispatcher is claiming are skipped, not waited for;
            # once it commits they are no longer free.
            query = query.with_for_update(skip_locked=True)
        with self._db.write() as conn:
            names = list(conn.execute(query).scalars())
            if names:
                conn.execute(
                    sources.update()
                    .where(sources.c.name.in_(names))
                    .values(claimed_by=owner, claim_expires_at=now + lease)
                )
        return names

    def claim(self, name: str, *, owner: str, lease: timedelta, now: datetime) -> bool:
        """Claim one source whether or not it is due (an explicit request: its seed folder changed).

        Args:
            name: the source.
            owner: who claims; holding the claim already renews it.
            lease: how long the claim holds without a save of the state.
            now: the time of the request (aware).

        Returns:
            True when claimed; False when another owner's claim is live (or
            there is no such source).
        """
        now = utc(now)
        stmt = (
            sources.update()
            .where(
                (sources.c.name == name)
                & _active()
                & (_free(now) | (sources.c.claimed_by == owner))
            )
            .values(claimed_by=owner, claim_expires_at=now + lease)
        )
        with self._db.write() as conn:
            return conn.execute(stmt).rowcount == 1

    def renew(self, names: Sequence[str], *, owner: str, lease: timedelta, now: datetime) -> int:
        """Extend the claims ``owner`` holds on ``names`` to ``now + lease``, while an update runs.

        Only a claim still held is extended: a source whose state was saved
        meanwhile (which released it) is not claimed again. One statement on
        rows alone: it takes no store lock (PostgreSQL), so it never waits
        for the batches being written.

        Returns:
            How many claims were extended.
        """
        stmt = (
            sources.update()
            .where(sources.c.name.in_(list(names)) & (sources.c.claimed_by == owner))
            .values(claim_expires_at=utc(now) + lease)
        )
        with self._db.write(keys=[]) as conn:
            return int(conn.execute(stmt).rowcount)

    def release(self, names: Sequence[str], *, owner: str) -> None:
        """Give back claims held by ``owner`` without saving a state (an update not started)."""
        with self._db.write() as conn:
            for chunk in chunks(names):
                conn.execute(
                    sources.update()
                    .where(sources.c.name.in_(chunk) & (sources.c.claimed_by == owner))
                    .values(claimed_by=None, claim_expires_at=None)
                )


#: a source's state when its configured location changes: it starts over
_STARTED_OVER = {
    "etag": None,
    "last_modified": None,
    "next_due_at": None,
    "consecutive_failures": 0,
    "moved_to": None,
    "moved_seen": 0,
    "discovered_feed": None,
    "gone": False,
    "body_hash": None,
    "problems": None,
    "failing_since": None,
    "disabled_at": None,
    "disabled_reason": None,
}


def _sync_one(conn: Connection, spec: SourceSpec, row: Any) -> None:
    """One configured source's row: inserted, enabled or disabled, or started over if moved."""
    by_name = sources.update().where(sources.c.name == spec.name)
    if row is None:
        conn.execute(
            sources.insert().values(
                name=spec.name,
                kind=spec.kind.value,
                configured=spec.location,
                location=spec.location,
                consecutive_failures=0,
                moved_seen=0,
                url_history=[],
                gone=False,
                enabled=spec.enabled,
            )
        )
        return
    if row.enabled != spec.enabled:
        # Enabled again: polled at once, not at the end of its old interval.
        again = {"next_due_at": None} if spec.enabled else {}
        conn.execute(by_name.values(enabled=spec.enabled, **again))
    if row.configured != spec.location:
        conn.execute(
            by_name.values(
                kind=spec.kind.value,
                configured=spec.location,
                location=spec.location,
                **_STARTED_OVER,
            )
        )


def write_state(conn: Connection, states: Sequence[SourceState]) -> None:
    """Save sources' fetch states, releasing their claims, inside the caller's transaction."""
    rows = []
    for state in states:
        values = state_values(state)
        values["k_name"] = values.pop("name")
        values["claimed_by"] = values["claim_expires_at"] = None
        rows.append(values)
    if rows:
        conn.execute(_SAVE_STATE, rows)
