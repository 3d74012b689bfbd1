"""A SQLite store's write-ahead log kept to a bounded size while readers never stop.

SQLite starts its WAL file over only when a write begins with every frame
copied back into the database and no reader still using the log. Its
automatic checkpoints are passive: while the writer commits batch after batch
and readers overlap (a publish reading the stories, the web server, a
command beside the daemon), that moment never comes, and the log grows for
as long as the ingest lasts. Measured on the daemon's first ingest of the
benchmark corpus: 672 MB of WAL at 300 feeds, 6.2 GB at 1,000 (against a
database of 219 MB), every read slower as the log's index grows (the first
full publish took 397 s), and the file never shrinks.

So after a commit that left the log over :data:`TRUNCATE_AT`, the writer asks
for a ``TRUNCATE`` checkpoint: it copies what is left, waits a moment
(:data:`PATIENCE_MS`) for the readers still on old frames (new readers read
the database file then), and empties the file. A reader that holds its
snapshot longer makes the attempt give up; the next one comes after the log
has grown by another :data:`TRUNCATE_AT` or :data:`RETRY_S` later, whichever
is first, so a long reader costs the writer at most one short wait per that
much data or time, never the connection's whole busy timeout (and a log left
big by an ingest's last commits goes at a commit once the readers let go).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["PATIENCE_MS", "RETRY_S", "TRUNCATE_AT", "WalBound"]

log = logging.getLogger(__name__)

#: WAL size (bytes) past which a commit is followed by a truncating checkpoint
TRUNCATE_AT = 64 * 2**20
#: how long (ms) that checkpoint waits for the readers still using the log
PATIENCE_MS = 250
#: after an attempt gave up, the next comes no sooner than this (seconds), unless the
#: log has grown by another TRUNCATE_AT
RETRY_S = 5.0


class WalBound:
    """Truncates one SQLite database's WAL after the commits that left it too big.

    Args:
        database: the database file (its log is ``<database>-wal``).
        busy_ms: the connections' own busy timeout, restored after each attempt.
    """

    def __init__(self, database: Path, *, busy_ms: int) -> None:
        self.path = Path(f"{database}-wal")
        self.busy_ms = busy_ms
        #: the log's size and the monotonic time at the last attempt that gave up
        self._gave_up_at = 0
        self._gave_up_when = 0.0

    def after_commit(self, conn: Connection) -> None:
        """Check the log's size; truncate it if it is over the bound (on a connection
        whose transaction just committed, in the writing thread)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < TRUNCATE_AT:
            return
        if (
            size < self._gave_up_at + TRUNCATE_AT
            and time.monotonic() < self._gave_up_when + RETRY_S
        ):
            return
        try:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {PATIENCE_MS}")
            try:
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {self.busy_ms}")
                conn.rollback()  # the PRAGMAs' implicit transaction
        except SQLAlchemyError as exc:
            # The commit before stands: a log left big is no reason to fail it.
            log.warning("%s: cannot checkpoint the write-ahead log: %s", self.path, exc)
            self._gave_up(size)
            return
        busy = row is None or row[0] != 0
        if busy:
            self._gave_up(size)
        else:
            self._gave_up_at = 0
        log.debug(
            "%s: %d bytes, truncating checkpoint %s",
            self.path,
            size,
            "gave up (a reader held on)" if busy else "done",
        )

    def _gave_up(self, size: int) -> None:
        self._gave_up_at = size
        self._gave_up_when = time.monotonic()
