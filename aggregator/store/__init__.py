"""Persistence: SQLAlchemy 2 Core on SQLite (default, WAL) or PostgreSQL.

:func:`open_store` is the one factory; it applies the Alembic migrations on
open. Every backend runs the same contract tests (``tests/test_store.py``).
"""

from __future__ import annotations

from aggregator.store.sql import FileChange, FileRecord, IngestReport, SQLStore, open_store

__all__ = ["FileChange", "FileRecord", "IngestReport", "SQLStore", "open_store"]
