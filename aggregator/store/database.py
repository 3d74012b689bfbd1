"""Opening, migrating and transacting on one database (SQLite or PostgreSQL)."""

from __future__ import annotations

import ast
import fcntl
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from aggregator.errors import StoreError
from aggregator.store.wal import TRUNCATE_AT, WalBound

__all__ = ["Database", "chunks", "head_revisions", "is_memory_store", "migrate_apart"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_MEMORY = ("sqlite://", "sqlite:///:memory:")
#: how long a SQLite connection waits for another's lock (seconds)
_BUSY_S = 30
#: PostgreSQL advisory lock every write transaction takes first (the key spells "aggr")
WRITE_LOCK_KEY = 0x61676772
#: PostgreSQL advisory lock class (first of two int4 keys) of a batch's key locks ("ak")
KEY_LOCK_CLASS = 0x616B
#: ``Connection.info`` key of a write transaction's change stamp (:mod:`.stamps`)
STAMP_SCOPE = "aggregator.stamp"
#: ``Connection.info`` keys: the callable .stamps reports a stamp it takes to (None before
#: taking it, then its count), and what it reported
TAKEN_SCOPE = f"{STAMP_SCOPE}.taken"
OWN_SCOPE = f"{STAMP_SCOPE}.own"
#: PostgreSQL advisory lock held while migrating ("aggm")
MIGRATE_LOCK_KEY = 0x6167676D


class Database:
    """An engine and the two ways to use it: a read, or a write transaction.

    Write transactions on SQLite start with ``BEGIN IMMEDIATE``: the write lock
    is taken before the first read, so a transaction that reads and then
    writes never works on a stale snapshot and waits (busy timeout) instead
    of failing when another process writes. On PostgreSQL the same order is
    kept across processes (several workers sharing one store) by a
    transaction-level advisory lock: dedup decides on what the transaction
    reads, so two writers must never decide on the same snapshot. An
    in-memory database is one connection shared by every thread, so there
    each use holds a lock.
    """

    def __init__(
        self, engine: Engine, *, shared_connection: bool = False, wal: WalBound | None = None
    ) -> None:
        self.engine = engine
        #: a SQLite file's log, kept bounded after each write (:mod:`.wal`)
        self._wal = wal
        #: ``sqlite`` or ``postgresql``
        self.dialect = engine.dialect.name
        self._lock: threading.RLock | None = threading.RLock() if shared_connection else None
        #: change stamps this object's write transactions took and committed
        #: (:mod:`.stamps`), until :meth:`own_stamps` has counted them; kept
        #: only once :meth:`keep_own_stamps` asked (a process that never asks
        #: would gain one per write transaction for its whole life)
        self._own_stamps: list[int] = []
        self._keep_own = False
        #: the stamps of this object's write transactions running now (own_stamps)
        self._running: set[int] = set()
        #: how many of them are taking their stamp now (its value not known yet)
        self._taking = 0
        self._stamps_lock = threading.Lock()

    @classmethod
    def open(cls, url: str) -> Database:
        """Open (and migrate) the database at a SQLAlchemy URL.

        Args:
            url: ``sqlite:///path/to/file.db``, ``sqlite://`` (in memory) or
                ``postgresql+psycopg://...``.

        Raises:
            StoreError: the database cannot be opened or migrated.
        """
        try:
            lock: Path | None = None
            wal: WalBound | None = None
            if url.startswith("sqlite"):
                db = url.removeprefix("sqlite:///")
                if db and db != url and not db.startswith(":memory:"):
                    Path(db).parent.mkdir(parents=True, exist_ok=True)
                    lock = Path(f"{db}.migrate-lock")
                    wal = WalBound(Path(db), busy_ms=_BUSY_S * 1000)
                engine = sa.create_engine(
                    url,
                    connect_args={"check_same_thread": False, "timeout": _BUSY_S},
                    poolclass=sa.pool.StaticPool if url in _MEMORY else None,
                )
                event.listen(engine, "connect", _sqlite_pragmas)
                if url not in _MEMORY:  # there the pages are the database
                    event.listen(engine, "checkin", _empty_page_cache)
            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
            _migrate(engine, lock)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"{_safe_url(url)}: cannot open store: {exc.__class__.__name__}: {exc}"
            ) from exc
        except OSError as exc:
            raise StoreError(f"{_safe_url(url)}: cannot open store: {exc}") from exc
        return cls(engine, shared_connection=url in _MEMORY, wal=wal)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (rolled back on exit)."""
        with self._lock or nullcontext(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, *, keys: Sequence[int] | None = None) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on an exception.

        Args:
            keys: PostgreSQL: lock only these keys (signed 32-bit, see
                :func:`aggregator.store.writes.lock_keys`), with the store's
                lock shared, instead of the store's lock alone. Two such
                transactions wait for each other only if they share a key.
                SQLite has one writer at a time whatever ``keys`` says.
        """
        with self._lock or nullcontext(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql":
                _lock(conn, keys)
            # One change stamp for the whole transaction (taken on first use);
            # .stamps reports the one it takes, and it is this object's from then on.
            conn.info[STAMP_SCOPE] = 0
            conn.info[TAKEN_SCOPE] = self._taken
            try:
                yield conn
            except BaseException:
                conn.rollback()
                self._settle(conn, committed=False)
                raise
            try:
                conn.commit()
            except BaseException:
                self._settle(conn, committed=False)
                raise
            self._settle(conn, committed=True)
            if self._wal is not None:
                self._wal.after_commit(conn)

    def _taken(self, own: int | None) -> None:
        """A write transaction of this object's is taking a stamp (None), or took ``own``."""
        with self._stamps_lock:
            if own is None:
                self._taking += 1
            else:
                self._taking -= 1
                self._running.add(own)

    def _settle(self, conn: Connection, *, committed: bool) -> None:
        """The transaction on ``conn`` ended: its stamp is this object's if it committed."""
        conn.info.pop(STAMP_SCOPE, None)
        conn.info.pop(TAKEN_SCOPE, None)
        if OWN_SCOPE not in conn.info:
            return
        own = conn.info.pop(OWN_SCOPE)
        with self._stamps_lock:
            if own is None:  # the take failed
                self._taking -= 1
                return
            self._running.discard(own)
            if committed and self._keep_own:
                self._own_stamps.append(own)

    def keep_own_stamps(self) -> None:
        """Keep this object's committed stamps from now on, for :meth:`own_stamps`.

        Call it before reading the count that the first ``since`` comes
        from: a stamp committed before the call is not kept, and counts as
        another process's.
        """
        with self._stamps_lock:
            self._keep_own = True

    def own_stamps(self, since: int, upto: int) -> int | None:
        """How many of the stamps after ``since``, up to ``upto``, this object's writes took.

        Call it after reading ``upto`` (the store's count): every stamp of
        this object's that the count includes is known by then, committed or
        still running. A stamp is this object's from the moment it is taken,
        before a reader can count it on SQLite (at the commit), until its
        transaction rolls back. On PostgreSQL a reader counts a stamp as soon
        as it is taken, before its value reaches this object: while a take is
        on its way and stamps are left unexplained, the answer is None
        (undecided: ask again later with the same ``since``). Only stamps
        committed since :meth:`keep_own_stamps` are known once committed.
        """
        with self._stamps_lock:
            mine = sum(1 for stamp in (*self._own_stamps, *self._running) if since < stamp <= upto)
            if self._taking and mine < upto - since:
                return None
            self._own_stamps = [stamp for stamp in self._own_stamps if stamp > upto]
            return mine

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A connection whose reads all see one state of the store (rolled back on exit)."""
        with self._lock or nullcontext(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # pysqlite begins no transaction for a SELECT: each would see
                # the latest commit. A deferred BEGIN holds one WAL snapshot.
                conn.exec_driver_sql("BEGIN")
            elif self.dialect == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                yield conn
            finally:
                conn.rollback()

    def close(self) -> None:
        self.engine.dispose()


def _lock(conn: Connection, keys: Sequence[int] | None) -> None:
    """Take a PostgreSQL write transaction's advisory locks (released when it ends)."""
    if keys is None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
        return
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK_KEY})")
    if keys:
        # In the order given (sorted by the caller): two writers never wait in a circle.
        conn.exec_driver_sql(
            "SELECT count(pg_advisory_xact_lock(%(class)s, k)) FROM unnest(%(keys)s::int4[]) AS k",
            {"class": KEY_LOCK_CLASS, "keys": list(keys)},
        )


def is_memory_store(url: str) -> bool:
    """Whether ``url`` names an in-memory database (one no other process can open)."""
    return url in _MEMORY or url.startswith("sqlite:///:memory:")


def chunks(seq: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """``seq`` in slices of at most ``size`` for ``IN`` lists: bound parameters per
    statement are limited.

    A short slice is padded (its last value repeated, which an ``IN`` list
    ignores) to the next of a few lengths. Each length is a different SQL text,
    and the driver keeps a prepared statement per text (sqlite3: 128 per
    connection, ~100 KB each for a list of a few hundred pairs): lists of every
    length filled that cache with ~16 MiB per connection during an update.
    """
    for i in range(0, len(seq), size):
        part = seq[i : i + size]
        wanted = _padded_length(len(part), size)
        if wanted > len(part):
            part = [*part, *([part[-1]] * (wanted - len(part)))]
        yield part


def _padded_length(length: int, size: int) -> int:
    """The least of 8, 16, 32... (at most ``size``) that holds ``length`` values."""
    padded = 8
    while padded < length:
        padded *= 2
    return min(padded, size)


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _empty_page_cache(dbapi_connection: Any, _record: Any) -> None:
    """A connection back in the pool frees its page cache (up to 2 MiB each).

    The pool keeps a connection per thread that has read at once (``update``
    and the daemon read sources' states in ``asyncio.to_thread``: five or six
    connections), and each kept the pages it last read. Emptied, the next
    checkout reads them again from the OS's cache: ``update``'s main process
    at the peak of 300 feeds' first pass 75-76 MiB against 78-80, wall
    unchanged.
    """
    if dbapi_connection is not None:  # None: invalidated
        dbapi_connection.execute("PRAGMA shrink_memory")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web server read while an update writes; NORMAL sync is
    # durable across process crashes (only an OS crash can lose the last commit).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # SQLite copies the log back into the database (a passive checkpoint)
    # after every commit past 1,000 pages of log by default: a writer whose
    # batches each dirty ~3,000 pages of random-key indexes copied them all
    # back at every commit. Copied once per TRUNCATE_AT of log (which WalBound
    # then empties), a page dirtied by many commits reaches the database file
    # once: pwrite64 and pread64 over 300 feeds' first pass 1.07 M and
    # 0.93 M against 0.86 M and 0.72 M, 245 syncs against 68. The price: an OS
    # crash (not a process crash) can take back up to that much log, whose
    # sources are polled again.
    page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
    cursor.execute(f"PRAGMA wal_autocheckpoint={TRUNCATE_AT // page_size}")
    cursor.close()


# ``revision = "0001"`` / ``down_revision: str | None = None`` in a version file
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


def head_revisions() -> frozenset[str]:
    """The newest migration revision(s), read from the version files' text.

    Read rather than asked of alembic, whose import costs every command about
    0.2 s although a migration is needed once per release.

    Returns:
        The revisions no other revision names as its ``down_revision``.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        for key, literal in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            value = ast.literal_eval(literal)
            names = {value} if isinstance(value, str) else set(value or ())
            (revisions if key == "revision" else parents).update(names)
    return frozenset(revisions - parents)


def _current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return frozenset()
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        return frozenset(rows)


#: what :func:`migrate_apart`'s child runs: the store URL on stdin, one line on failure
_MIGRATE_CHILD = """
import sys
from aggregator.errors import StoreError
from aggregator.store.database import Database
try:
    Database.open(sys.stdin.read()).close()
except StoreError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
"""


def migrate_apart(url: str) -> None:
    """Bring the store at ``url`` to head in a child process, if it is behind.

    For a long-lived process (the daemon): migrating in its own process
    would leave alembic, and the SQLAlchemy PostgreSQL dialect alembic
    imports, loaded for the rest of its life (about 11 MiB at rest on the
    default config). A store already at head costs one query; an in-memory
    store is migrated where it lives, by :meth:`Database.open`. The URL goes
    to the child on stdin, never on its command line.

    Raises:
        StoreError: the store cannot be reached or migrated (the child's one line).
    """
    if is_memory_store(url):
        return
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() and _at_head(url):
            return
    elif _at_head(url):
        return
    done = subprocess.run(
        [sys.executable, "-c", _MIGRATE_CHILD],
        input=url,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise StoreError(
            lines[-1] if lines else f"{_safe_url(url)}: cannot migrate (exit {done.returncode})"
        )


def _at_head(url: str) -> bool:
    """Whether the store at ``url`` is at the newest revision (False when it cannot tell)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        heads = head_revisions()
        return bool(heads) and _current_revisions(engine) == heads
    except sa.exc.SQLAlchemyError:
        return False  # the child will say what is wrong
    finally:
        engine.dispose()


def _migrate(engine: Engine, lock: Path | None = None) -> None:
    """Bring the schema to head; ``lock``: a SQLite file's lock file for migrating."""
    heads = head_revisions()
    if heads and _current_revisions(engine) == heads:
        return
    if lock is None:
        _upgrade(engine)
        return
    # SQLite runs DDL outside a transaction: two processes opening a new file
    # at once (the daemon starting, `aggregator status` beside it) would both
    # create the tables. One migrates; the other waits, then finds it at head.
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            if not (heads and _current_revisions(engine) == heads):
                _upgrade(engine)
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def _upgrade(engine: Engine) -> None:
    # Alembic says each plugin it loads and each revision it runs at INFO: a
    # first run would print a dozen lines. Quiet unless debugging.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    if not alembic_log.isEnabledFor(logging.DEBUG):
        alembic_log.setLevel(logging.WARNING)
    try:
        _run_upgrade(engine)
    finally:
        alembic_log.setLevel(level)


def _run_upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several workers opening one new database at once: one migrates, the
            # others wait here and then find it at head.
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK_KEY})"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
