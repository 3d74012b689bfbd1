"""Seed-file records: what was seen of each file of a seed folder, for change detection."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.database import Database, chunks
from aggregator.store.schema import files
from aggregator.store.values import FileRecord

__all__ = ["SeedFiles", "delete_source", "write_records"]

_OF_SOURCE = files.c.source == sa.bindparam("k_source")
_STATS = sa.select(files.c.relpath, files.c.size, files.c.mtime_ns).where(_OF_SOURCE)
_RECORDS = sa.select(files).where(_OF_SOURCE)
_RECORDS_IN = _RECORDS.where(files.c.relpath.in_(sa.bindparam("k_relpaths", expanding=True)))

_DELETE = files.delete().where(
    (files.c.source == sa.bindparam("k_source")) & (files.c.relpath == sa.bindparam("k_relpath"))
)


class SeedFiles:
    """Seed-file records, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def file_stats(self, source: str) -> dict[str, tuple[int, int]]:
        """Each file's ``(size, mtime_ns)`` as last read, by path relative to the folder."""
        with self._db.read() as conn:
            return {
                relpath: (size, mtime_ns)
                for relpath, size, mtime_ns in conn.execute(_STATS, {"k_source": source})
            }

    def file_records(
        self, source: str, relpaths: Collection[str] | None = None
    ) -> dict[str, FileRecord]:
        """A seed folder's file records (of ``relpaths`` only, if given), by relative path."""
        with self._db.read() as conn:
            if relpaths is None:
                rows = list(conn.execute(_RECORDS, {"k_source": source}))
            else:
                rows = [
                    row
                    for part in chunks(sorted(relpaths))
                    for row in conn.execute(_RECORDS_IN, {"k_source": source, "k_relpaths": part})
                ]
            return {
                r.relpath: FileRecord(
                    relpath=r.relpath,
                    size=r.size,
                    mtime_ns=r.mtime_ns,
                    content_hash=r.content_hash,
                    identities=tuple(r.identities or ()),
                    error=r.error,
                )
                for r in rows
            }


def write_records(
    conn: Connection, source: str, records: Iterable[tuple[str, FileRecord | None]]
) -> None:
    """Replace (record) or forget (None) files' records, inside the caller's transaction."""
    final = dict(records)  # a path listed twice ends as its last record says
    drop, add = [], []
    for relpath, rec in final.items():
        drop.append({"k_source": source, "k_relpath": relpath})
        if rec is not None:
            add.append(
                {
                    "source": source,
                    "relpath": rec.relpath,
                    "size": rec.size,
                    "mtime_ns": rec.mtime_ns,
                    "content_hash": rec.content_hash,
                    "identities": list(rec.identities),
                    "error": rec.error,
                }
            )
    if drop:
        conn.execute(_DELETE, drop)
    if add:
        conn.execute(files.insert(), add)


def delete_source(conn: Connection, source: str) -> None:
    """Forget every record of a removed source."""
    conn.execute(files.delete().where(files.c.source == source))
