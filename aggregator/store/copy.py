"""Copying a whole store into an empty database (``aggregator migrate``), every row as it is.

Every table of :data:`~aggregator.store.schema.metadata` is copied, parents
before children, so a table another change adds is copied without a change
here. Rows go through the tables' own column types (aware UTC datetimes, JSON),
so what a backend stores differently (SQLite's naive datetimes) arrives as the
same values; story ids, dedup keys, tombstones and claims are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.errors import StoreError
from aggregator.store import stamps
from aggregator.store.database import Database
from aggregator.store.schema import metadata

__all__ = ["CopyReport", "copy_store"]

#: rows read and written per statement
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What :func:`copy_store` copied."""

    #: table name -> rows copied, in copy order
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _occupied(conn: Connection) -> list[tuple[str, int]]:
    """Tables of the target (any schema the connection searches) that hold rows."""
    inspector = sa.inspect(conn)
    found = []
    for name in sorted(inspector.get_table_names()):
        if name == "alembic_version":
            continue
        table = sa.table(name)
        count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        if count:
            found.append((name, int(count)))
    return found


def copy_store(
    source: Database,
    target: Database,
    *,
    target_name: str,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every table of ``source`` into ``target``, which must hold no row yet.

    The source is read in one transaction (a consistent snapshot) and the
    target written in one, so a failure leaves the target as empty as it was.

    Args:
        source: the store to copy (opened, so migrated to the newest schema).
        target: the empty database (opened, so migrated to the same schema).
        target_name: how to name the target in messages (its URL, password hidden).
        progress: called with each table's name and its rows once copied.

    Returns:
        Rows copied per table.

    Raises:
        StoreError: the target holds rows, or a read or write failed.
    """
    rows: dict[str, int] = {}
    try:
        with source.read() as src, target.write() as dst:
            occupied = _occupied(dst)
            if occupied:
                name, count = occupied[0]
                raise StoreError(
                    f"{target_name}: not empty (table {name} holds {count} rows); "
                    "migrate copies into an empty database only"
                )
            for table in metadata.sorted_tables:
                copied = 0
                result = src.execution_options(yield_per=CHUNK).execute(sa.select(table))
                for part in result.partitions():
                    dst.execute(table.insert(), [dict(row._mapping) for row in part])
                    copied += len(part)
                _advance_sequence(dst, table)
                rows[table.name] = copied
                if progress is not None:
                    progress(table.name, copied)
            # PostgreSQL stamps: the next ones above every copied stamp.
            stamps.rebase(dst)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"{target_name}: copying the store failed: {exc}") from exc
    return CopyReport(rows)


def _advance_sequence(conn: Connection, table: sa.Table) -> None:
    """After copying explicit ids into a serial column, start its sequence past them."""
    column = table.autoincrement_column
    if column is None or conn.dialect.name != "postgresql":
        return
    highest = conn.execute(sa.select(sa.func.max(column))).scalar()
    conn.execute(
        sa.text("SELECT setval(pg_get_serial_sequence(:table, :column), :next, false)"),
        {"table": table.name, "column": column.name, "next": (highest or 0) + 1},
    )
