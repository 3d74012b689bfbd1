"""Store contract: every backend (SQLite file, SQLite in memory, PostgreSQL) behaves the same."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aggregator.errors import StoreError
from aggregator.model import Outcome, SourceKind, SourceSpec, SourceState
from aggregator.store import FileChange, FileRecord, SQLStore, Store, open_store, stamps
from aggregator.store.database import is_memory_store
from aggregator.store.schema import metadata

from .factories import T0, later, make_item

ALL = {"karabakh": lambda item: "karabakh" in item.title.lower(), "all": lambda item: True}


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    yield s
    s.close()


def spec(name: str, location: str = "https://example.org/feed") -> SourceSpec:
    return SourceSpec(
        name=name,
        kind=SourceKind.URL,
        location=location,
        interval=timedelta(minutes=30),
        timeout=timedelta(seconds=20),
        max_bytes=2**20,
    )


def test_migrations_match_schema(store: SQLStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_processes_opening_a_new_file_at_once_all_get_it(tmp_path: Path) -> None:
    # The daemon starting while `aggregator status` opens the same new file:
    # one migrates, the others wait for it instead of creating the tables again.
    url = f"sqlite:///{tmp_path / 'var' / 'aggregator.db'}"
    code = (
        "import sys; from aggregator.store import open_store\n"
        "while not __import__('os').path.exists(sys.argv[2]): pass\n"
        "open_store(sys.argv[1]).close()"
    )
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, str(go)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    go.touch()  # all start migrating at once
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    store = open_store(url)
    try:
        assert store.states() == []
    finally:
        store.close()


def test_sql_store_is_a_store(store: SQLStore) -> None:
    assert isinstance(store, Store)


def test_reopen_is_idempotent(store_url: str) -> None:
    if store_url == "sqlite://":
        pytest.skip("an in-memory database does not outlive its engine")
    open_store(store_url).close()
    s = open_store(store_url)
    assert s.states() == []
    s.close()


def test_new_then_same_then_update(store: SQLStore) -> None:
    item = make_item()
    first = store.ingest([item], now=T0, matchers=ALL)
    assert (first.new, first.dirty_topics) == (1, {"karabakh", "all"})
    [story] = store.topic_stories("karabakh")
    assert story.id.startswith("urn:uuid:")
    assert story.updated == T0 and story.updated.tzinfo is UTC

    again = store.ingest([item], now=later(5), matchers=ALL)
    assert (again.new, again.unchanged, again.dirty_topics) == (0, 1, frozenset())

    edited = make_item(
        body="Negotiators met again on Tuesday and agreed on a timetable for the next round."
    )
    upd = store.ingest([edited], now=later(10), matchers=ALL)
    assert (upd.new, upd.updated) == (0, 1)
    [after] = store.topic_stories("karabakh")
    assert after.id == story.id
    assert after.updated > story.updated
    assert after.published == story.published
    assert "Tuesday" in after.item.content_html


def test_update_that_leaves_topic(store: SQLStore) -> None:
    store.ingest([make_item()], now=T0, matchers=ALL)
    moved = make_item(title="Geneva hosts a trade fair")
    report = store.ingest([moved], now=later(1), matchers=ALL)
    assert "karabakh" in report.dirty_topics
    assert store.topic_stories("karabakh") == []
    assert len(store.topic_stories("all")) == 1


def test_same_link_from_two_sources_is_one_story(store: SQLStore) -> None:
    a = make_item("a-1", source="wire", link="https://news.example/story/1")
    b = make_item(
        "b-9",
        source="other",
        link="https://news.example/story/1",
        title="Different headline",
        body="Other words.",
    )
    store.ingest([a], now=T0, matchers=ALL)
    report = store.ingest([b], now=later(1), matchers=ALL)
    assert (report.new, report.merged) == (0, 1)
    [story] = store.topic_stories("all")
    assert [o.source for o in story.provenance] == ["wire", "other"]
    assert story.item.source == "wire"


def test_same_text_from_two_sources_is_one_story(store: SQLStore) -> None:
    a = make_item("a-1", source="wire", link="https://wire.example/1")
    b = make_item("x", source="agency", link="https://agency.example/abc")
    store.ingest([a, b], now=T0, matchers=ALL)
    assert len(store.topic_stories("all")) == 1


def test_short_identical_text_is_not_merged(store: SQLStore) -> None:
    a = make_item("a", source="wire", title="Weather", body="Sunny.")
    b = make_item("b", source="agency", title="Weather", body="Sunny.")
    store.ingest([a, b], now=T0, matchers=ALL)
    assert len(store.topic_stories("all")) == 2


def test_delete_then_return_keeps_story_id(store: SQLStore) -> None:
    item = make_item("seed:abc", source="seeds")
    store.ingest([item], now=T0, matchers=ALL)
    [story] = store.topic_stories("all")
    gone = store.remove_entries("seeds", ["seed:abc"], now=later(1))
    assert (gone.removed, gone.dirty_topics) == (1, {"karabakh", "all"})
    assert store.topic_stories("all") == []
    store.ingest([item], now=later(2), matchers=ALL)
    assert [s.id for s in store.topic_stories("all")] == [story.id]


def test_pruned_entry_is_not_reimported(store: SQLStore) -> None:
    item = make_item()
    store.ingest([item], now=T0, matchers=ALL)
    store.remove_entries("wire", ["e1"], now=later(1), reason="pruned")
    report = store.ingest([item], now=later(2), matchers=ALL)
    assert report.skipped == 1
    assert store.topic_stories("all") == []


def test_removing_canonical_entry_keeps_story_from_other_source(store: SQLStore) -> None:
    a = make_item("a", source="wire", link="https://news.example/1")
    b = make_item(
        "b", source="other", link="https://news.example/1", title="Karabakh talks: second take"
    )
    store.ingest([a], now=T0, matchers=ALL)
    store.ingest([b], now=later(1), matchers=ALL)
    [before] = store.topic_stories("all")
    report = store.remove_entries("wire", ["a"], now=later(2))
    assert report.removed == 0 and "all" in report.dirty_topics
    [after] = store.topic_stories("all")
    assert after.id == before.id
    assert after.item.source == "other"
    assert after.updated > before.updated


def test_topic_query_change_recomputes_membership(store: SQLStore) -> None:
    store.ingest(
        [make_item("1"), make_item("2", title="Budget vote in parliament", body="x")],
        now=T0,
        matchers={},
    )
    dirty = store.sync_topics({"k": "karabakh"}, {"k": ALL["karabakh"]}, now=T0)
    assert dirty == {"k"}
    assert len(store.topic_stories("k")) == 1
    assert store.sync_topics({"k": "karabakh"}, {"k": ALL["karabakh"]}, now=later(1)) == frozenset()
    dirty = store.sync_topics({"k": "anything"}, {"k": ALL["all"]}, now=later(2))
    assert dirty == {"k"} and len(store.topic_stories("k")) == 2
    assert store.sync_topics({}, {}, now=later(3)) == {"k"}
    assert store.topic_stories("k") == []


def test_topic_stories_newest_first(store: SQLStore) -> None:
    items = [
        make_item(f"e{i}", title=f"Story {i}", body=f"body {i}", published=later(i))
        for i in range(5)
    ]
    store.ingest(items, now=later(10), matchers=ALL)
    assert [s.item.title for s in store.topic_stories("all")] == [
        f"Story {i}" for i in reversed(range(5))
    ]


def test_newest_story_ids_are_the_head_of_topic_stories(store: SQLStore) -> None:
    # Two stories share a published time: the id breaks the tie, as in topic_stories.
    items = [
        make_item(f"e{i}", title=f"Story {i}", body=f"body {i}", published=later(min(i, 3)))
        for i in range(6)
    ]
    store.ingest(items, now=later(10), matchers=ALL)
    every = [s.id for s in store.topic_stories("all")]
    assert len(every) == 6
    for limit in (1, 3, 4, 6, 10):
        assert store.newest_story_ids("all", limit) == every[:limit]
    assert store.newest_story_ids("nothing", 5) == []


def test_source_state_roundtrip_and_due(store: SQLStore) -> None:
    store.sync_sources([spec("a"), spec("b")], now=T0)
    assert store.due_sources(T0) == ["a", "b"]
    state = store.get_state("a")
    assert state == SourceState(name="a", location="https://example.org/feed")
    saved = replace(
        state,
        etag='"v1"',
        last_outcome=Outcome.ERROR,
        last_attempt_at=T0,
        next_due_at=later(30),
        consecutive_failures=2,
        last_error="a: boom",
        url_history=("https://old.example/feed",),
        body_hash="5f1c0a",
    )
    store.save_state(saved)
    assert store.get_state("a") == saved
    assert store.due_sources(later(1)) == ["b"]
    assert store.due_sources(later(31)) == ["b", "a"]


def test_removing_a_source_removes_its_stories(store: SQLStore) -> None:
    store.sync_sources([spec("wire"), spec("other")], now=T0)
    store.ingest(
        [make_item(source="wire"), make_item("z", source="other", title="Other", body="b")],
        now=T0,
        matchers=ALL,
    )
    report = store.sync_sources([spec("other")], now=later(1))
    assert report.removed == 1 and "all" in report.dirty_topics
    assert [s.item.source for s in store.topic_stories("all")] == ["other"]
    assert [s.name for s in store.states()] == ["other"]


def test_changed_location_resets_fetch_state(store: SQLStore) -> None:
    store.sync_sources([spec("a")], now=T0)
    store.save_state(replace(store.get_state("a"), etag='"x"', next_due_at=later(30)))
    store.sync_sources([spec("a", "https://moved.example/feed")], now=later(1))
    state = store.get_state("a")
    assert (
        state.location == "https://moved.example/feed"
        and state.etag is None
        and state.next_due_at is None
    )


def test_apply_files_records_and_entries_together(store: SQLStore) -> None:
    item = make_item("seed:1", source="seeds")
    rec = FileRecord("a.txt", 10, 111, "h1", ("seed:1",))
    store.apply_files("seeds", [FileChange("a.txt", rec, items=(item,))], now=T0, matchers=ALL)
    assert store.file_records("seeds") == {"a.txt": rec}
    report = store.apply_files(
        "seeds", [FileChange("a.txt", None, removed=("seed:1",))], now=later(1), matchers=ALL
    )
    assert report.removed == 1
    assert store.file_records("seeds") == {}


def test_file_stats_and_records_of_some_paths(store: SQLStore) -> None:
    recs = {
        name: FileRecord(name, size, size * 11, f"h{size}", (f"seed:{size}",))
        for name, size in (("a.txt", 10), ("b/c.md", 20), ("d.html", 30))
    }
    store.apply_files(
        "seeds",
        [
            FileChange(name, rec, items=(make_item(rec.identities[0], source="seeds"),))
            for name, rec in recs.items()
        ],
        now=T0,
        matchers=ALL,
    )
    assert store.file_stats("seeds") == {n: (r.size, r.mtime_ns) for n, r in recs.items()}
    assert store.file_stats("other") == {}
    assert store.file_records("seeds", ["b/c.md", "d.html", "gone.txt"]) == {
        "b/c.md": recs["b/c.md"],
        "d.html": recs["d.html"],
    }
    assert store.file_records("seeds", []) == {}
    assert store.file_records("seeds") == recs


def test_rename_in_one_batch_keeps_story(store: SQLStore) -> None:
    old = make_item("path:old.txt", source="seeds")
    store.apply_files(
        "seeds",
        [FileChange("old.txt", FileRecord("old.txt", 1, 1, "h", (old.identity,)), items=(old,))],
        now=T0,
        matchers=ALL,
    )
    [story] = store.topic_stories("all")
    new = replace(old, identity="path:new.txt")
    # Deletion listed first on purpose: the store applies additions first.
    store.apply_files(
        "seeds",
        [
            FileChange("old.txt", None, removed=(old.identity,)),
            FileChange("new.txt", FileRecord("new.txt", 1, 2, "h", (new.identity,)), items=(new,)),
        ],
        now=later(1),
        matchers=ALL,
    )
    assert [s.id for s in store.topic_stories("all")] == [story.id]


def test_naive_datetime_refused(store: SQLStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.ingest([make_item()], now=datetime(2026, 1, 1), matchers=ALL)


def test_bad_url_is_store_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(f"sqlite:///{blocker}/sub/aggregator.db")


def test_sqlite_uses_wal(tmp_path) -> None:
    s = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    s.close()


def test_old_entries_selects_by_story_publication(store: SQLStore) -> None:
    old = make_item(
        "old", title="Old talks", body="An old story about talks that ended long ago, kept here."
    )
    new = make_item(
        "new",
        title="New talks",
        body="A new story about talks that began this week in another city far away.",
        published=T0 + timedelta(days=100),
    )
    store.ingest([old, new], now=later(1), matchers=ALL)
    [(source, identity, story_id)] = store.old_entries(T0 + timedelta(days=50))
    assert (source, identity) == ("wire", "old")
    assert story_id in store.story_ids()
    assert store.old_entries(T0) == []


@contextmanager
def _at_revision(tmp_path: Path, revision: str) -> Iterator[tuple[str, sa.Connection]]:
    """A SQLite file migrated to ``revision`` only: its URL and a connection to fill it."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    import aggregator.store.database as database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(database._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        yield url, conn
    engine.dispose()


def test_upgrade_from_0001_keeps_sources(tmp_path) -> None:
    with _at_revision(tmp_path, "0001") as (url, conn):
        conn.execute(
            sa.text(
                "INSERT INTO sources (name, kind, configured, location, consecutive_failures,"
                " moved_seen, url_history, gone) VALUES ('a', 'url', 'u', 'u', 0, 0, '[]', 0)"
            )
        )
    s = open_store(url)
    assert s.get_state("a") == SourceState(name="a", location="u", body_hash=None)
    s.close()


def test_returning_entry_rejoins_the_story_another_entry_kept(store: SQLStore) -> None:
    a = make_item("a", source="wire", link="https://news.example/1")
    b = make_item("b", source="other", link="https://news.example/1", title="Second take")
    store.ingest([a, b], now=T0, matchers=ALL)
    [story] = store.topic_stories("all")
    store.remove_entries("wire", ["a"], now=later(1))
    back = make_item("a", source="wire", title="Rewritten", body="Entirely new words here.")
    report = store.ingest([back], now=later(2), matchers=ALL)
    assert (report.new, report.merged) == (0, 1)
    assert [s.id for s in store.topic_stories("all")] == [story.id]


def test_upgrade_to_change_stamps_keeps_order_and_stamps_above_old_versions(tmp_path) -> None:
    with _at_revision(tmp_path, "0006") as (url, conn):
        for n, version in ((1, 5), (2, 9)):
            conn.execute(
                sa.text(
                    "INSERT INTO stories (id, canonical_source, canonical_identity, published,"
                    " updated, first_seen, content_hash, version) VALUES"
                    f" ('s{n}', 'wire', 'e{n}', '2025-01-0{n} 00:00:00.000000',"
                    " '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000', 'h', :v)"
                ),
                {"v": version},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO story_topics (topic, story_id, matched_at)"
                    f" VALUES ('all', 's{n}', '2025-01-01 00:00:00.000000')"
                )
            )
    s = open_store(url)
    try:
        with s.topic_view("all") as view:
            assert view.count() == 2
            assert view.slice(0, 2) == (("s2", "s1"), (9, 5))
            assert view.newer_than(datetime(2025, 1, 1, tzinfo=UTC), "s1") == 1
            assert view.stamp() == 0
            assert {(c.id, c.joined) for c in view.changes(0)} == {("s1", False), ("s2", False)}
        s.ingest([make_item("new")], now=T0, matchers=ALL)
        with s.topic_view("all") as view:
            stamp = view.stamp()
            assert stamp > 9  # above every version the store had
            [change] = view.changes(9)
            assert change.joined and change.version == 0
            assert view.changes(stamp) == []
    finally:
        s.close()


def test_migrate_apart_migrates_in_a_child_and_fails_in_one_line(tmp_path: Path) -> None:
    from aggregator.store.database import head_revisions, migrate_apart

    url = f"sqlite:///{tmp_path / 'var' / 'aggregator.db'}"
    probe = (
        "import sys\n"
        "from aggregator.store.database import migrate_apart\n"
        "migrate_apart(sys.argv[1])\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, url], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"  # the child migrated, not this process
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert frozenset(current) == head_revisions()
    engine.dispose()
    migrate_apart(url)  # at head: nothing to do

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError) as failed:
        migrate_apart(f"sqlite:///{blocker / 'aggregator.db'}")
    message = str(failed.value)
    assert "\n" not in message and "cannot open store" in message and "a-file" in message


def test_in_lists_come_in_a_few_lengths_and_hold_every_value() -> None:
    # Every length of IN list is another prepared statement in the driver's
    # cache: slices are padded (repeating a value) to a few lengths.
    from aggregator.store.database import chunks

    lengths: set[int] = set()
    for n in range(1, 1200):
        values = [f"k{i}" for i in range(n)]
        parts = list(chunks(values, 500))
        assert [v for part in parts for v in dict.fromkeys(part)] == values
        assert all(set(part) <= set(values) for part in parts)
        lengths.update(len(part) for part in parts)
    assert lengths == {8, 16, 32, 64, 128, 256, 500}


def _stamped_writes(store: SQLStore, count: int) -> None:
    """``count`` write transactions, each taking a change stamp, as a writer thread does."""
    for _ in range(count):
        with store.db.write(keys=[]) as conn:
            stamps.stamp(conn)


def test_the_stores_own_writes_are_never_foreign_even_mid_commit(store: SQLStore) -> None:
    # The daemon's writer thread commits while its dispatcher asks whether another
    # process changed the store; a commit seen before it was recorded as this
    # store's own made the daemon republish every topic for nothing.
    since, _ = store.foreign_changes(0)
    writer = threading.Thread(target=_stamped_writes, args=(store, 400))
    writer.start()
    foreign_seen = 0
    looks = 0
    while writer.is_alive():
        since, foreign = store.foreign_changes(since)
        foreign_seen += foreign
        looks += 1
    writer.join()
    since, foreign = store.foreign_changes(since)
    assert (foreign_seen, foreign) == (0, False), f"{foreign_seen} of {looks} looks"
    # And stamps this store took are all accounted for: another store's write is foreign.
    url = store.engine.url.render_as_string(hide_password=False)
    if not is_memory_store(url):
        other = open_store(url)
        try:
            _stamped_writes(other, 1)
        finally:
            other.close()
        assert store.foreign_changes(since)[1] is True


def test_a_store_keeps_its_own_stamps_only_for_a_process_that_asks(store: SQLStore) -> None:
    # A worker process writes for months and never asks foreign_changes: its
    # store must not keep one stamp per write transaction for its whole life.
    _stamped_writes(store, 50)
    assert store.db.own_stamps(0, 10**9) == 0  # none kept: nobody asked
    since, _ = store.foreign_changes(0)  # the daemon's first look starts the keeping
    _stamped_writes(store, 50)
    assert store.db.own_stamps(since, since + 50) == 50
    assert store.foreign_changes(since + 50) == (since + 50, False)


def _sqlite_memory_used() -> int | None:
    """Bytes SQLite has allocated in this process (its page caches above all), if measurable."""
    import ctypes
    import ctypes.util
    import sqlite3  # noqa: F401  (loads the SQLite library, when Python links it)

    name = ctypes.util.find_library("sqlite3")
    if name is None or name.split(".so")[0] not in Path("/proc/self/maps").read_text():
        return None  # SQLite built into Python's module: not the library ctypes would load
    used = ctypes.CDLL(name).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return int(used())


def test_a_pooled_sqlite_connection_holds_no_page_cache(tmp_path: Path) -> None:
    """A connection back in the pool frees the pages it read (the daemon keeps several)."""
    if _sqlite_memory_used() is None:
        pytest.skip("SQLite is linked into Python's sqlite3 module here: its memory is not visible")
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        db = store.db
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE bulk (body BLOB)")
            conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)"
                " INSERT INTO bulk SELECT randomblob(1000) FROM n"
            )
        db.engine.dispose()  # start from fresh connections
        before = _sqlite_memory_used()
        with db.read() as conn:
            conn.exec_driver_sql("SELECT max(body) FROM bulk").scalar()  # reads every page
            reading = _sqlite_memory_used()
        after = _sqlite_memory_used()
    finally:
        store.close()
    assert before is not None and reading is not None and after is not None
    # the scan filled the connection's page cache (2 MiB at most) ...
    assert reading - before > 1 << 20
    # ... which it gave back on its way into the pool
    assert after - before < (reading - before) // 4
