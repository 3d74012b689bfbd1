"""Multi-row INSERTs through the driver's ``executemany``, for the batch writer.

Values go through each column type's own bind processor, as SQLAlchemy
would apply them, without its per-row parameter handling. On PostgreSQL,
psycopg sends the rows of one ``executemany`` as a pipeline: one round trip.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.schema import UTCDateTime

__all__ = ["BulkInsert", "insert"]


class BulkInsert:
    """An INSERT of many rows: the driver's ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

    Values go through each column type's own bind processor, as SQLAlchemy
    would apply them, without its per-row parameter handling (profiled: that
    was a third of the writer's time). SQLite timestamps take a faster path
    to the same text SQLAlchemy stores. On PostgreSQL the rows stream in one
    ``COPY ... FROM STDIN`` (psycopg adapts each value as for a parameter):
    a pipelined ``executemany`` still runs one INSERT per row on the server,
    and a batch's band rows are sixteen per entry.
    """

    def __init__(self, table: sa.Table, dialect: sa.Dialect) -> None:
        # Every column but a generated key (poll_history.id): the database numbers those.
        keys = [c.name for c in table.c if c.autoincrement is not True]
        compiled = table.insert().compile(dialect=dialect, column_keys=keys)
        self.sql = str(compiled)
        processors = {c.name: _processor(c, dialect) for c in table.c}
        names = list(compiled.positiontup or compiled.params)
        self.names = names
        self.get = operator.itemgetter(*names)
        #: (position, processor) of the columns whose values need converting
        self.convert: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(names):
            process = processors[name]
            if process is not None:
                self.convert.append((i, process))
        self.positional = compiled.positional
        columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
        #: PostgreSQL: the COPY statement, the columns in ``names`` order
        self.copy = (
            f"COPY {dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN"
            if dialect.name == "postgresql"
            else None
        )

    def run_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows given as tuples in the table's column order, values needing no conversion."""
        if not rows:
            return
        if self.convert:
            raise ValueError(f"{self.sql}: columns need converting; use run()")
        if self.copy is not None:
            _copy(conn, self.copy, rows)
        elif self.positional:
            conn.exec_driver_sql(self.sql, list(rows))
        else:
            conn.exec_driver_sql(self.sql, [dict(zip(self.names, r, strict=True)) for r in rows])

    def run(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows given as dicts of column values (converted here)."""
        if not rows:
            return
        get, convert = self.get, self.convert
        params: list[Any] = []
        keyed = self.copy is None and not self.positional
        for row in rows:
            values = list(get(row))
            for i, process in convert:
                values[i] = process(values[i])
            params.append(dict(zip(self.names, values, strict=True)) if keyed else tuple(values))
        if self.copy is not None:
            _copy(conn, self.copy, params)
        else:
            conn.exec_driver_sql(self.sql, params)


def _copy(conn: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Stream rows into PostgreSQL with ``COPY``, inside the connection's transaction."""
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def _processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return _sqlite_stamp
    if dialect.name == "sqlite" and isinstance(column.type, sa.JSON):
        return _sqlite_json
    return column.type._cached_bind_processor(dialect)


@functools.lru_cache(maxsize=1024)
def _sqlite_stamp(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME text: naive UTC, always with microseconds.
    # Cached: a batch writes its ``now`` three times per entry.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime not allowed: {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_json(value: Any) -> str:
    # What SQLAlchemy's JSON type stores (None as JSON null), with the
    # commonest values spelled out: most entries have no tags, dateline...
    if value is None:
        return "null"
    if value == []:
        return "[]"
    return json.dumps(value)


_INSERTS: dict[tuple[str, str], BulkInsert] = {}


def insert(table: sa.Table, dialect: sa.Dialect) -> BulkInsert:
    """The table's bulk INSERT on the dialect (built once)."""
    key = (table.name, dialect.name)
    if key not in _INSERTS:
        _INSERTS[key] = BulkInsert(table, dialect)
    return _INSERTS[key]
