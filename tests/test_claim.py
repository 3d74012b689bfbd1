"""Dispatch claims: a source is in at most one update at a time, across threads and processes."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.store import SQLStore, open_store

from .factories import T0, later, url_spec

LEASE = timedelta(minutes=5)
#: how soon a finished source is due again in the dispatch loops
PERIOD = timedelta(milliseconds=30)
SOURCES = 12
#: each loop stops once every source was claimed this many times in all
ROUNDS = 4
DEADLINE = 120.0

Interval = tuple[str, str, float, float]


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    s = open_store(store_url)
    s.sync_sources([url_spec(f"s{i:02}") for i in range(SOURCES)], now=T0)
    yield s
    s.close()


def dispatch(store: SQLStore, owner: str, done: threading.Event | None = None) -> list[Interval]:
    """Claim and finish sources until each was run ROUNDS times (as far as this loop saw).

    Every interval runs from just after the claim returned to just before the
    state is saved (which releases it), so it lies inside the real hold.
    """
    held: list[Interval] = []
    runs: dict[str, int] = {}
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up and not (done is not None and done.is_set()):
        now = datetime.now(UTC)
        for name in store.claim_due(now, owner=owner, lease=LEASE, limit=3):
            start = time.monotonic()
            state = store.get_state(name)  # the "update": a read while holding the source
            assert state is not None
            end = time.monotonic()
            held.append((name, owner, start, end))
            runs[name] = runs.get(name, 0) + 1
            store.save_state(replace(state, next_due_at=datetime.now(UTC) + PERIOD))
        if len(runs) == SOURCES and min(runs.values()) >= ROUNDS:
            break
    return held


def assert_no_overlap(intervals: list[Interval]) -> None:
    by_source: dict[str, list[Interval]] = {}
    for interval in intervals:
        by_source.setdefault(interval[0], []).append(interval)
    assert sorted(by_source) == [f"s{i:02}" for i in range(SOURCES)]  # every source was claimed
    for name, held in by_source.items():
        held.sort(key=lambda h: h[2])
        for before, after in itertools.pairwise(held):
            assert after[2] >= before[3], f"{name} held by {before[1]} and {after[1]} at once"


def test_two_threads_never_hold_one_source(store: SQLStore) -> None:
    results: dict[str, list[Interval]] = {}

    def run(owner: str) -> None:
        results[owner] = dispatch(store, owner)

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 30)
    assert set(results) == {"t0", "t1"}
    assert_no_overlap(results["t0"] + results["t1"])


def _process_dispatcher(url: str, owner: str, out: str, barrier: threading.Barrier) -> None:
    store = open_store(url)
    barrier.wait(60)
    held = dispatch(store, owner)
    store.close()
    Path(out).write_text(json.dumps(held))


def test_two_processes_never_hold_one_source(
    store: SQLStore, store_url: str, tmp_path: Path
) -> None:
    if store_url == "sqlite://":
        pytest.skip("an in-memory database belongs to one process")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"p{i}.json" for i in range(2)]
    procs = [
        ctx.Process(target=_process_dispatcher, args=(store_url, f"p{i}", str(out), barrier))
        for i, out in enumerate(outs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(DEADLINE + 60)
    assert [p.exitcode for p in procs] == [0, 0]
    intervals = [tuple(h) for out in outs for h in json.loads(out.read_text())]
    assert {h[1] for h in intervals} == {"p0", "p1"}
    assert_no_overlap(intervals)  # type: ignore[arg-type]


def test_claimed_source_is_not_handed_out_until_its_lease_expires(store: SQLStore) -> None:
    names = [f"s{i:02}" for i in range(SOURCES)]
    assert store.claim_due(T0, owner="a", lease=LEASE) == names
    assert store.claim_due(later(1), owner="b", lease=LEASE) == []
    assert store.due_sources(later(1)) == names  # the snapshot view claims nothing
    assert not store.claim("s00", owner="b", lease=LEASE, now=later(1))
    # "a" died: after its lease, another dispatcher takes its sources.
    assert store.claim_due(later(6), owner="b", lease=LEASE, limit=2) == names[:2]
    assert store.claim("s02", owner="c", lease=LEASE, now=later(6))
    assert not store.claim("s02", owner="b", lease=LEASE, now=later(7))
    assert store.claim("s02", owner="c", lease=LEASE, now=later(7))  # its holder renews


def test_finished_source_is_not_handed_out_again(store: SQLStore) -> None:
    [first] = store.claim_due(T0, owner="a", lease=LEASE, limit=1)
    state = store.get_state(first)
    assert state is not None
    store.save_state(replace(state, next_due_at=later(30)))
    rest = store.claim_due(later(1), owner="b", lease=timedelta(hours=1))
    assert first not in rest and len(rest) == SOURCES - 1
    assert store.claim_due(later(2), owner="c", lease=LEASE) == []
    # Saving released the claim: when due again, it is handed out.
    assert store.claim_due(later(31), owner="c", lease=LEASE) == [first]


def test_release_gives_back_only_the_owners_claims(store: SQLStore) -> None:
    assert store.claim("s00", owner="a", lease=LEASE, now=T0)
    assert store.claim("s01", owner="b", lease=LEASE, now=T0)
    store.release(["s00", "s01"], owner="a")
    assert store.claim_due(T0, owner="c", lease=LEASE, limit=2) == ["s00", "s02"]
    assert not store.claim("nope", owner="a", lease=LEASE, now=T0)
