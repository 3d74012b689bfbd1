"""The store's write path alone: entries/s through ``SQLStore.apply``, 1 and 2 concurrent writers.

Items are pre-parsed and prepared as parse workers hand them over (dedup keys,
near-duplicate sketch, topics), so only the store is measured: its lookups,
decisions, locks and statements. The corpus is :mod:`bench_store`'s
(article-sized entries, 3% of links shared between feeds, so some stories
are joined across writers), its words drawn from a vocabulary of
``--vocabulary`` made-up words (news text has tens of thousands; the 60
words of ``bench_store`` make every text share MinHash bands with many
others, so each pair of batches would share near-duplicate lock keys that no
real corpus shares). For each backend, on a fresh database:

* **1 writer**: one process applies every feed's write, ``--batch`` sources a call;
* **2 writers** (PostgreSQL): two processes, started together, each applies
  half the feeds; the stories they share are few (the shared links), so
  what is measured is whether unrelated writes wait for each other;
* **2 writers, store lock** (PostgreSQL): the same, every batch holding the
  store's lock alone, as every write did before key locks: the peer.

Each row also shows the seconds the writers spent waiting for their locks
(summed over writers, timed around the lock statements) and the CPU seconds
of the writer processes per 1,000 entries: on a 2-core machine two writers
plus two server backends compete for the cores, so the lock waits tell
whether the store serialises them, and the CPU whether the cores do.

entries/s = entries stored / wall time from the start until the last writer
is done. SQLite has one writer at a time, so its row is the embedded peer.

Run: ``python benchmarks/bench_write_path.py [--feeds 200] [--entries 58] [--batch 10]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_store  # noqa: E402
from bench_store import NOW, TOPICS, _specs, _state, generate  # noqa: E402

from aggregator.engine.match import build_matchers  # noqa: E402
from aggregator.model import Item, NearDupSettings  # noqa: E402
from aggregator.records import ItemRecord  # noqa: E402
from aggregator.store import SourceWrite, database, open_store, writer  # noqa: E402
from aggregator.store.rows import dedup_keys  # noqa: E402
from aggregator.stories import neardup  # noqa: E402

PG_ADMIN = os.environ.get("AGGREGATOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NEAR = NearDupSettings()

#: the prepared writes, made before the writer processes fork
_WRITES: list[SourceWrite] = []


@dataclass
class Row:
    backend: str
    writers: int
    entries: int
    wall_s: float
    lock_wait_s: float = 0.0
    cpu_s: float = 0.0
    mode: str = "keys"

    @property
    def per_s(self) -> float:
        return self.entries / self.wall_s


def prepare(feeds: list[list[Item]]) -> list[SourceWrite]:
    """Each feed's write as the parse stage hands it over: records with keys, sketch, topics."""
    matchers = build_matchers(TOPICS, clock=lambda: NOW)
    writes = []
    for spec, items in zip(_specs(feeds), feeds, strict=True):
        records = tuple(
            ItemRecord(
                item,
                keys=dedup_keys(item),
                sketch=neardup.sketch(item, NEAR),
                topics=frozenset(name for name, match in matchers.items() if match(item)),
            )
            for item in items
        )
        writes.append(
            SourceWrite(spec.name, items=tuple(items), state=_state(spec), records=records)
        )
    return writes


def _timed_locks(waited: list[float]) -> None:
    """Time every lock statement of this process's write transactions."""
    original = database._lock

    def timed(conn: Any, keys: Any) -> None:
        began = time.perf_counter()
        original(conn, keys)
        waited.append(time.perf_counter() - began)

    database._lock = timed


def _writer(url: str, part: Sequence[int], batch: int, mode: str, start: Any, done: Any) -> None:
    store = open_store(url, near=NEAR)
    waited: list[float] = []
    _timed_locks(waited)
    if mode == "store lock":
        writer.MAX_KEYS = -1  # every batch holds the store's lock alone
    writes = [_WRITES[i] for i in part]
    start.wait()
    cpu = time.process_time()
    for i in range(0, len(writes), batch):
        store.apply(writes[i : i + batch], now=NOW, matchers={})
    store.close()
    done.put((time.perf_counter(), sum(waited), time.process_time() - cpu))


def run(url: str, writers: int, batch: int, mode: str = "keys") -> tuple[float, float, float]:
    """Wall seconds for ``writers`` processes to apply every write (split between them),
    their lock waits and their CPU seconds."""
    store = open_store(url, near=NEAR)
    store.sync_sources(_specs([w.items for w in _WRITES]), now=NOW)  # type: ignore[misc]
    store.close()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(writers + 1)
    done = ctx.Queue()
    parts = [range(n, len(_WRITES), writers) for n in range(writers)]
    procs = [ctx.Process(target=_writer, args=(url, p, batch, mode, start, done)) for p in parts]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    ends = [done.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join(60)
        if proc.exitcode != 0:
            raise SystemExit(f"a writer exited with {proc.exitcode}")
    return (
        max(end for end, _, _ in ends) - began,
        sum(w for _, w, _ in ends),
        sum(c for _, _, c in ends),
    )


def _entries(url: str) -> int:
    store = open_store(url)
    try:
        return sum(store.entry_counts().values())
    finally:
        store.close()


def vocabulary(size: int, seed: int = 3) -> list[str]:
    """``size`` distinct made-up words of two to four syllables."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def measure(feeds: int, per_feed: int, batch: int, words: int = 20_000) -> list[Row]:
    """The write-path rows: SQLite 1 writer, PostgreSQL 1 and 2 writers, and the peer."""
    global _WRITES
    bench_store.WORDS[:] = vocabulary(words)
    _WRITES = prepare(generate(feeds, per_feed))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-write-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        rows.append(Row("sqlite", 1, 0, *run(url, 1, batch), mode="one writer"))
        rows[-1].entries = _entries(url)
    for writers, mode in ((1, "keys"), (2, "keys"), (2, "store lock")):
        name = f"aggregator_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        url += f"/{name}"
        try:
            wall, waited, cpu = run(url, writers, batch, mode)
            rows.append(Row("postgresql", writers, _entries(url), wall, waited, cpu, mode))
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


def report(rows: list[Row]) -> None:
    one = next(r for r in rows if r.backend == "postgresql" and r.writers == 1)
    print(f"\nstore write path, {rows[0].entries} entries, {os.cpu_count()} cores")
    header = ("backend", "locks", "writers", "wall s", "entries/s", "vs 1 PG", "lock wait s")
    print("{:>10} {:>10} {:>7} {:>7} {:>9} {:>7} {:>11} {:>12}".format(*header, "CPU s/1k"))
    for r in rows:
        print(
            f"{r.backend:>10} {r.mode:>10} {r.writers:>7} {r.wall_s:>7.1f} {r.per_s:>9.0f} "
            f"{r.per_s / one.per_s:>7.2f} {r.lock_wait_s:>11.1f} "
            f"{1000 * r.cpu_s / r.entries:>12.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=58, help="entries per feed")
    parser.add_argument("--batch", type=int, default=10, help="sources per apply call")
    parser.add_argument("--vocabulary", type=int, default=20_000, help="words the texts use")
    args = parser.parse_args()
    report(measure(args.feeds, args.entries, args.batch, args.vocabulary))


if __name__ == "__main__":
    main()
