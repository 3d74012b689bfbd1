"""Poll history in the store: written with the state, counted, bounded, pruned (every backend)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.config import load_config
from aggregator.model import Outcome, Poll, SourceState
from aggregator.store import SourceWrite, SQLStore, open_store
from aggregator.store.polls import POLLS_KEPT
from aggregator.store.schema import poll_history
from aggregator.update import open_context, update_source
from aggregator.update.retention import prune

from .factories import T0, later, make_item, url_spec


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    s.sync_sources([url_spec("a"), url_spec("b")], now=T0)
    yield s
    s.close()


def _write(
    source: str,
    minutes: int,
    outcome: Outcome = Outcome.OK,
    seconds: float = 0.25,
    **kw: object,
) -> SourceWrite:
    at = later(minutes=minutes)
    state = SourceState(
        name=source,
        location=f"https://example.org/{source}",
        last_outcome=outcome,
        last_attempt_at=at,
    )
    poll = Poll(source, at, outcome, status=200, seconds=seconds, received=1234)
    return SourceWrite(source, state=state, poll=poll, now=at, **kw)  # type: ignore[arg-type]


def test_a_poll_is_recorded_with_its_state_and_counts(store: SQLStore) -> None:
    items = (make_item(source="a", identity="1"), make_item(source="a", identity="2"))
    store.apply([_write("a", 1, items=items)], now=later(minutes=1), matchers={})
    changed = (make_item(source="a", identity="1", title="Changed title"),)
    store.apply([_write("a", 31, items=changed)], now=later(minutes=31), matchers={})
    store.apply([_write("a", 61, Outcome.ERROR)], now=later(minutes=61), matchers={})

    [first, second, third] = store.poll_history()["a"]
    assert (first.new, first.updated, first.received, first.status) == (2, 0, 1234, 200)
    assert (second.new, second.updated) == (0, 1)
    assert third.outcome is Outcome.ERROR
    assert first.at == later(minutes=1)
    assert store.get_state("a").last_attempt_at == later(minutes=61)  # type: ignore[union-attr]
    assert "b" not in store.poll_history()


def test_history_keeps_the_last_polls_of_each_source(store: SQLStore) -> None:
    total = POLLS_KEPT + 15
    for start in range(0, total, 50):
        writes = [_write("a", m) for m in range(start, min(start + 50, total))]
        store.apply([*writes, _write("b", start)], now=later(minutes=start), matchers={})

    history = store.poll_history()
    assert len(history["a"]) == POLLS_KEPT
    assert [p.at for p in history["a"]] == [later(minutes=m) for m in range(15, total)]
    assert len(history["b"]) == len(range(0, total, 50))
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(poll_history)).scalar()
    assert rows == POLLS_KEPT + len(history["b"])


def test_each_sources_last_poll_time(store: SQLStore) -> None:
    assert store.last_poll_seconds() == {}
    store.apply(
        [_write("a", 1, seconds=4.0), _write("b", 1, seconds=0.5)],
        now=later(minutes=1),
        matchers={},
    )
    store.apply([_write("a", 31, seconds=0.75)], now=later(minutes=31), matchers={})
    assert store.last_poll_seconds() == {"a": 0.75, "b": 0.5}


def test_history_of_some_sources(store: SQLStore) -> None:
    store.apply([_write("a", 1), _write("b", 2)], now=later(minutes=2), matchers={})
    assert list(store.poll_history(["b"])) == ["b"]


def test_retention_prunes_old_polls_and_a_removed_source_forgets_them(store: SQLStore) -> None:
    store.apply([_write("a", 0), _write("a", 600), _write("b", 0)], now=T0, matchers={})
    assert store.prune_polls(later(minutes=300)) == 2
    assert [p.at for p in store.poll_history()["a"]] == [later(minutes=600)]

    store.sync_sources([url_spec("b")], now=later(minutes=700))
    assert store.poll_history() == {}


def test_the_retention_pass_prunes_the_history(store: SQLStore) -> None:
    store.apply([_write("a", 0), _write("b", 0), _write("a", 3000)], now=T0, matchers={})
    report = prune(store, [], {}, now=later(minutes=3000), max_age=timedelta(days=1))
    assert report.polls == 2
    assert {k: len(v) for k, v in store.poll_history().items()} == {"a": 1}


def test_a_seed_folder_update_records_its_files_new_entries(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i, word in enumerate(["glaciers", "harvests", "elections"]):
        (seeds / f"{i}.txt").write_text(
            f"Story about {word}\n\nA report on {word} and what comes next for {word}.\n",
            encoding="utf-8",
        )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: data\ningest: {workers: 0}\nsources:\n  - {name: seeds, path: seeds}\n",
        encoding="utf-8",
    )
    ctx = open_context(load_config(config), clock=lambda: T0)
    try:
        asyncio.run(update_source(ctx.config.sources[0], ctx))
        (seeds / "0.txt").write_text(
            "Story about glaciers\n\nA changed report.\n", encoding="utf-8"
        )
        os.utime(seeds / "0.txt", ns=(10**18, 10**18))
        asyncio.run(update_source(ctx.config.sources[0], ctx))
        [first, second] = ctx.store.poll_history()["seeds"]
    finally:
        ctx.close()
    assert (first.outcome, first.status, first.new, first.updated) == (Outcome.OK, None, 3, 0)
    assert (second.new, second.updated) == (0, 1)
    assert first.seconds > 0
