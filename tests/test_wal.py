"""A SQLite store's write-ahead log stays bounded while readers overlap its writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.store import wal
from aggregator.store.database import Database

ROW = 65_536


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A store with a table of blobs, whose log is truncated past four rows."""
    monkeypatch.setattr(wal, "TRUNCATE_AT", 4 * ROW)
    store = Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    with store.write() as conn:
        conn.exec_driver_sql("CREATE TABLE blobs (b BLOB)")
    yield store
    store.close()


def _insert(db: Database) -> None:
    with db.write() as conn:
        conn.exec_driver_sql(f"INSERT INTO blobs VALUES (randomblob({ROW}))")


def _insert_past_a_reader(db: Database, rows: int) -> None:
    """``rows`` commits while a reader holds the snapshot from before them."""
    with db.snapshot() as reader:
        # This snapshot pins the log: no checkpoint may pass it, the file grows;
        # and each commit's attempt gives up after a moment, it does not wait it out.
        assert reader.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 0
        for _ in range(rows):
            _insert(db)
        assert reader.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 0


def test_the_log_is_truncated_once_the_reader_holding_it_lets_go(
    db: Database, tmp_path: Path
) -> None:
    """SQLite's own checkpoints never shrink the file: after a long reader it stays as big."""
    log = tmp_path / "store.db-wal"
    _insert_past_a_reader(db, 12)
    assert log.stat().st_size >= 12 * ROW
    # An attempt comes at the latest once the log has grown by another bound.
    sizes = []
    for _ in range(wal.TRUNCATE_AT // ROW + 1):
        _insert(db)
        sizes.append(log.stat().st_size)
    assert min(sizes) < wal.TRUNCATE_AT, sizes
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 12 + len(sizes)


def test_a_log_left_big_goes_at_a_later_commit_however_small(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest's last commits met a reader; the next small write after the retry time
    empties the log, though it has not grown by another bound."""
    monkeypatch.setattr(wal, "RETRY_S", 0.0)
    log = tmp_path / "store.db-wal"
    _insert_past_a_reader(db, 6)
    assert log.stat().st_size >= 6 * ROW
    with db.write() as conn:
        conn.exec_driver_sql("DELETE FROM blobs WHERE rowid = 1")
    assert log.stat().st_size < wal.TRUNCATE_AT


def test_a_log_under_the_bound_is_left_to_sqlite(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal, "TRUNCATE_AT", 64 * ROW)
    for _ in range(4):
        _insert(db)
    assert (tmp_path / "store.db-wal").stat().st_size >= 4 * ROW


def test_commits_leave_their_pages_in_the_log_until_the_bound(tmp_path: Path) -> None:
    """SQLite's own checkpoint after every commit past 1,000 pages is off: pages that many
    commits dirty are copied back once per bound, not at every commit."""
    store = Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with store.write() as conn:
            conn.exec_driver_sql("CREATE TABLE blobs (b BLOB)")
            page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
        assert page_size is not None
        for _ in range(6):  # 1.2 MiB each: 1,800 pages of log in all
            with store.write() as conn:
                conn.exec_driver_sql(f"INSERT INTO blobs VALUES (randomblob({300 * page_size}))")
        with store.engine.connect() as conn:
            busy, logged, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    finally:
        store.close()
    assert busy == 0
    assert logged >= 6 * 300  # SQLite's default would have started the log over by now
    assert copied == logged
