"""The one writer's batched apply gives what one-by-one ingest gives, on every backend."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.model import Item
from aggregator.store import (
    FileChange,
    FileRecord,
    IngestReport,
    SourceWrite,
    SQLStore,
    lookups,
    open_store,
)
from aggregator.store.rows import dedup_keys
from aggregator.store.schema import (
    entries,
    files,
    sources,
    stories,
    story_index,
    story_joins,
    story_topics,
    tombstones,
)

from .factories import T0, later, make_item, url_spec

MATCHERS = {
    "talks": lambda item: "talks" in item.title.lower(),
    "long": lambda item: len(item.content_html) > 120,
    "all": lambda item: True,
}
SOURCES = [f"feed{i}" for i in range(5)]
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]


def _body(rng: random.Random) -> str:
    # 40 words of a 13-word vocabulary: long enough to sketch, and near
    # duplicates of one another often enough to join stories within a batch.
    return " ".join(rng.choice(WORDS) for _ in range(rng.choice([3, 14, 20, 40])))


def _rounds(seed: int) -> list[list[SourceWrite]]:
    """Rounds of writes whose items collide: shared links and texts, repeats, updates,
    removals and returns, within a round and across rounds."""
    rng = random.Random(seed)
    links = [f"https://news.example/{i}" for i in range(8)]
    texts = [_body(rng) for _ in range(6)]
    rounds = []
    known: dict[str, list[str]] = {s: [] for s in SOURCES}
    for r in range(4):
        writes = []
        for source in rng.sample(SOURCES, k=4):
            items: list[Item] = []
            for _ in range(rng.randint(0, 7)):
                reuse = known[source] and rng.random() < 0.3
                identity = rng.choice(known[source]) if reuse else f"{source}-{rng.randrange(40)}"
                title = rng.choice(["Talks resume", "Weather", "Budget vote", f"Item {identity}"])
                items.append(
                    make_item(
                        identity,
                        source=source,
                        title=title,
                        body=rng.choice(texts) if rng.random() < 0.5 else _body(rng),
                        link=rng.choice(links) if rng.random() < 0.4 else None,
                        published=later(rng.randrange(100)),
                    )
                )
                known[source].append(identity)
            if items and rng.random() < 0.2:
                items.append(items[0])  # the same entry twice in one batch
            removed = tuple(
                sorted({rng.choice(known[source]) for _ in range(rng.randint(0, 2))})
                if known[source] and rng.random() < 0.4
                else ()
            )
            state = replace(_spec_state(source), etag=f'"r{r}"', next_due_at=later(30 * r))
            # Half the writes carry keys a worker computed; the writer computes the others.
            keys = tuple(dedup_keys(i) for i in items) if rng.random() < 0.5 else ()
            writes.append(
                SourceWrite(source, items=tuple(items), removed=removed, state=state, keys=keys)
            )
        rounds.append(writes)
    return rounds


def _spec_state(source: str) -> Any:
    from aggregator.model import SourceState

    return SourceState(name=source, location=f"https://example.org/{source}")


def _tables(store: SQLStore) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with store.engine.connect() as conn:
        for table in (
            stories,
            entries,
            story_topics,
            tombstones,
            sources,
            files,
            story_index,
            story_joins,
        ):
            # Change stamps count write transactions, which batching exists to
            # save: every other column must be equal.
            columns = [c for c in table.c if c.name not in ("version", "seq")]
            rows = conn.execute(sa.select(*columns)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


@pytest.fixture
def pair(store_url: str, tmp_path: Path) -> Iterator[tuple[SQLStore, SQLStore]]:
    batched = open_store(store_url)
    single = open_store(f"sqlite:///{tmp_path / 'one-by-one.db'}")
    for s in (batched, single):
        s.sync_sources([url_spec(n) for n in SOURCES], now=T0)
    yield batched, single
    batched.close()
    single.close()


@pytest.mark.parametrize("seed", range(3))
def test_batches_equal_one_by_one(pair: tuple[SQLStore, SQLStore], seed: int) -> None:
    batched, single = pair
    for r, writes in enumerate(_rounds(seed)):
        now = later(10 * r + 1)
        reports = batched.apply(writes, now=now, matchers=MATCHERS)
        for write, report in zip(writes, reports, strict=True):
            expected = IngestReport()
            for item in write.items:
                expected += single.ingest([item], now=now, matchers=MATCHERS)
            if write.removed:
                expected += single.remove_entries(
                    write.source, write.removed, now=now, matchers=MATCHERS
                )
            assert write.state is not None
            single.save_state(write.state)
            assert report == expected, (r, write.source)
    assert _tables(batched) == _tables(single)
    assert batched.topic_stories("all") == single.topic_stories("all")


def test_generated_rounds_collide() -> None:
    # The generator must produce what the equality is about.
    merged = updated = unchanged = removed = 0
    store = open_store("sqlite://")
    store.sync_sources([url_spec(n) for n in SOURCES], now=T0)
    for seed in range(3):
        for r, writes in enumerate(_rounds(seed)):
            for report in store.apply(writes, now=later(10 * r + 1), matchers=MATCHERS):
                merged += report.merged
                updated += report.updated
                unchanged += report.unchanged
                removed += report.removed
    store.close()
    assert min(merged, updated, unchanged, removed) > 0


def test_seed_folder_write_applies_files_and_releases_claim(store: SQLStore) -> None:
    store.sync_sources([url_spec("seeds")], now=T0)
    assert store.claim_due(T0, owner="w", lease=timedelta(minutes=5)) == ["seeds"]
    item = make_item("seed:1", source="seeds")
    rec = FileRecord("a.txt", 10, 111, "h1", (item.identity,))
    state = replace(_spec_state("seeds"), next_due_at=later(30))
    [report] = store.apply(
        [SourceWrite("seeds", files=(FileChange("a.txt", rec, items=(item,)),), state=state)],
        now=T0,
        matchers=MATCHERS,
    )
    assert report.new == 1
    assert store.file_records("seeds") == {"a.txt": rec}
    assert store.get_state("seeds") == state
    assert store.claim("seeds", owner="other", lease=timedelta(minutes=5), now=later(1))


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    yield s
    s.close()


def test_keys_must_match_items() -> None:
    with pytest.raises(ValueError, match="feed0: 1 keys for 2 items"):
        SourceWrite("feed0", items=(make_item("a"), make_item("b")), keys=((None, None),))


def test_each_write_may_carry_its_own_now(store: SQLStore) -> None:
    a = make_item("a", source="wire", title="Talks A", body="first " * 20)
    b = make_item("b", source="other", title="Talks B", body="second " * 20)
    store.apply(
        [SourceWrite("wire", items=(a,), now=later(1)), SourceWrite("other", items=(b,))],
        now=later(5),
        matchers=MATCHERS,
    )
    first_seen = {s.item.source: s.first_seen for s in store.topic_stories("all")}
    assert first_seen == {"wire": later(1), "other": later(5)}


def test_a_batch_finds_its_stored_entries_and_tombstones_by_key(store: SQLStore) -> None:
    odd = ["plain", "quote ' \" $[0] ,)", "ünïcode ✓", "tab\tand\nnewline", "x" * 500]
    store.sync_sources([url_spec("wire"), url_spec("other")], now=T0)
    items = tuple(make_item(i, source="wire", title=f"Item {n}") for n, i in enumerate(odd))
    store.apply([SourceWrite("wire", items=items)], now=T0, matchers=MATCHERS)
    store.apply([SourceWrite("wire", removed=(odd[1],))], now=later(1), matchers=MATCHERS)
    asked = [("wire", i) for i in odd] + [("other", "plain"), ("wire", "absent"), ("wire", "plain")]
    with store.engine.connect() as conn:
        found = lookups.entries_by_pair(conn, asked)
        tombs = lookups.tombs_by_pair(conn, asked)
        nothing = lookups.entries_by_pair(conn, [])
    assert set(found) == {("wire", i) for i in odd if i != odd[1]}
    assert set(tombs) == {("wire", odd[1])}
    assert nothing == {}


def test_a_batchs_lookups_search_the_key_never_scan_the_table(tmp_path: Path) -> None:
    """SQLite plans a row-value ``IN`` list as a scan of the whole table: 18 ms a batch at
    15,000 entries, growing with the store. The lookups go through the key."""
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with store.engine.connect() as conn:
            plans = [
                [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("[]",))]
                for sql in (lookups._SQLITE_ENTRIES_BY_PAIR, lookups._SQLITE_TOMBS_BY_PAIR)
            ]
    finally:
        store.close()
    for plan in plans:
        assert any(step.startswith("SEARCH t USING INDEX") for step in plan), plan
        assert not any(step.startswith("SCAN t") for step in plan), plan
