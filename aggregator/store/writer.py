"""Applying a batch of source writes: on PostgreSQL under its own keys' locks, retried when it must.

On SQLite a batch is one ``BEGIN IMMEDIATE`` transaction: one writer at a
time. On PostgreSQL several processes write at once; each batch locks only
the keys its items decide on (:func:`~aggregator.store.writes.lock_keys`)
and holds the store's lock *shared*, so two batches of unrelated stories
never wait for each other, and the decisions are those of one writer at a
time. A batch that must re-derive stories beyond its keys (a removal is
known before it starts; a changed entry or a merge only once it reads) runs
holding the store's lock alone: the shared attempt stops before writing any
of it (:class:`~aggregator.store.batch.NeedsExclusive`) and the batch is
applied again. A deadlock between two writers' row locks (two batches
joining the same two stories in opposite orders) is retried the same way.

Each transaction takes at most :data:`MAX_KEYS` advisory locks (an entry
with a near-duplicate sketch locks 35 keys); a larger batch is split between
writes, and a single write larger than that holds the store alone. The
locks live in PostgreSQL's shared lock table, which holds
``max_locks_per_transaction * max_connections`` (6,400 by default) for every
session at once: if it runs out ("out of shared memory"), the batch is
retried holding the store alone; ``docs/deploy.md`` says how to size it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa

from aggregator.model import NearDupSettings, utc
from aggregator.store import batch
from aggregator.store.database import Database
from aggregator.store.edits import enforce
from aggregator.store.values import IngestReport, TopicMatchers
from aggregator.store.writes import Pending, SourceWrite, count_keys, lock_keys, pending, removes

__all__ = ["MAX_KEYS", "SourceWrite", "apply"]

log = logging.getLogger(__name__)

#: advisory locks one PostgreSQL write transaction takes at most
MAX_KEYS = 4096
#: attempts of a batch that meets deadlocks (each retry holds the store alone)
ATTEMPTS = 5
#: SQLSTATEs retried: deadlock detected, serialization failure, out of shared memory (locks)
_RETRIED = frozenset({"40P01", "40001", "53200"})


def apply(
    db: Database,
    writes: Sequence[SourceWrite],
    *,
    now: datetime,
    matchers: TopicMatchers,
    near: NearDupSettings,
) -> list[IngestReport]:
    """Apply the writes in order; one report per write (see :meth:`SQLStore.apply`)."""
    now = utc(now)
    # The CPU work of the batch (keys, sketches, lock keys) is done before any lock is taken.
    planned = [pending(write, near) for write in writes]
    if db.dialect != "postgresql":
        with db.write() as conn:
            return _held(
                conn, batch.apply(conn, writes, planned, now=now, matchers=matchers, near=near), now
            )
    reports: list[IngestReport] = []
    for group in _groups(writes, planned):
        reports += _apply_group(db, group, now=now, matchers=matchers, near=near)
    return reports


def _held(conn: sa.Connection, reports: list[IngestReport], now: datetime) -> list[IngestReport]:
    """An editor's hides and pins hold whatever the batch re-matched, in its transaction."""
    held = enforce(conn, now=now)
    if held and reports:
        reports[-1] = reports[-1] + IngestReport(dirty_topics=held)
    return reports


_Group = tuple[list[SourceWrite], list[list[Pending]]]


def _groups(writes: Sequence[SourceWrite], planned: Sequence[list[Pending]]) -> Iterator[_Group]:
    """Consecutive writes whose key locks fit :data:`MAX_KEYS` (a larger single write alone)."""
    group: _Group = ([], [])
    held = 0
    for write, items in zip(writes, planned, strict=True):
        size = count_keys(items)
        if group[0] and held + size > MAX_KEYS:
            yield group
            group, held = ([], []), 0
        group[0].append(write)
        group[1].append(items)
        held += size
    if group[0]:
        yield group


def _apply_group(
    db: Database,
    group: _Group,
    *,
    now: datetime,
    matchers: TopicMatchers,
    near: NearDupSettings,
) -> list[IngestReport]:
    writes, planned = group
    items = [p for part in planned for p in part]
    shared = not any(removes(write) for write in writes) and count_keys(items) <= MAX_KEYS
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.write(keys=lock_keys(items) if shared else None) as conn:
                reports = batch.apply(
                    conn, writes, planned, now=now, matchers=matchers, near=near, shared=shared
                )
                return _held(conn, reports, now)
        except batch.NeedsExclusive as why:
            log.debug("batch of %d writes: %s; applied again holding the store", len(writes), why)
            shared = False
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRIED or attempt == ATTEMPTS:
                raise
            log.info("batch of %d writes: %s; retried", len(writes), type(exc.orig).__name__)
            shared = False
    raise AssertionError("unreachable: the last attempt returns or raises")
