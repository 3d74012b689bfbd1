"""Seed-file records: what was seen of each file of a seed folder, for change detection."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.database import Database
from aggregator.store.schema import files
from aggregator.store.values import FileRecord

__all__ = ["SeedFiles", "delete_source", "write_records"]

_DELETE = files.delete().where(
    (files.c.source == sa.bindparam("k_source")) & (files.c.relpath == sa.bindparam("k_relpath"))
)


class SeedFiles:
    """Seed-file records, on one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def file_records(self, source: str) -> dict[str, FileRecord]:
        """The records of a seed folder's files, by path relative to the folder."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(files).where(files.c.source == source))
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
