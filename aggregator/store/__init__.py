"""Persistence: SQLAlchemy 2 Core on SQLite (default, WAL) or PostgreSQL.

:func:`open_store` is the one factory; it applies the Alembic migrations on
open. :class:`Store` is the protocol callers depend on; every backend runs the
same contract tests (``tests/test_store.py``).
"""

from __future__ import annotations

from aggregator.store.api import Store
from aggregator.store.database import is_memory_store
from aggregator.store.sql import SQLStore, open_store
from aggregator.store.values import FileChange, FileRecord, IngestReport, TopicMatchers
from aggregator.store.writes import SourceWrite

__all__ = [
    "FileChange",
    "FileRecord",
    "IngestReport",
    "SQLStore",
    "SourceWrite",
    "Store",
    "TopicMatchers",
    "is_memory_store",
    "open_store",
]
