"""Store write throughput: the one writer's batched ``apply`` against per-source ``ingest``.

Generates ``--feeds`` feeds of ``--entries`` entries each (default 1,000 x 58,
about the ingest benchmark's first pass), with article-sized HTML, tags,
authors, and 3% of links shared between feeds (merges). Then, each on a fresh
database:

- **apply**: ``SQLStore.apply`` with ``--batch`` sources' writes (items and
  new state) per transaction, what the pipeline's one writer does;
- **ingest**: ``SQLStore.ingest`` and ``save_state`` per source, one
  transaction each, what the pipeline did before;
- **apply, prepared**: the same, with the dedup keys computed beforehand
  (``SourceWrite.keys``, as parse workers can) and topic matches looked up
  from a precomputed table: the store's own share;
- **keys**: computing the dedup keys alone (``entry_values``: link key, and
  the content key's HTML-to-text and fingerprint), part of both rows above;
- **floor**: the same entry and story rows, already converted to driver
  values, inserted with the bare driver's ``executemany`` (``sqlite3``,
  ``psycopg``) in one transaction: no lookups, no decisions, no matching.

Topic matching uses four compiled topic queries. Prints entries/s per row and
the ratios, by wall time and by this process's CPU time (the one a busy
machine disturbs least), on a SQLite file and, when reachable, on PostgreSQL
(``AGGREGATOR_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432/postgres``).

Run: ``python benchmarks/bench_store.py [--feeds 1000] [--entries 58] [--batch 100] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator.model import Item, Origin, SourceKind, SourceSpec, SourceState, TopicSpec
from aggregator.store import SourceWrite, SQLStore, open_store
from aggregator.store.rows import dedup_keys, entry_values
from aggregator.update import build_matchers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WORDS = [
    "the",
    "talks",
    "resumed",
    "in",
    "geneva",
    "on",
    "monday",
    "after",
    "a",
    "pause",
    "of",
    "several",
    "weeks",
    "while",
    "negotiators",
    "from",
    "both",
    "sides",
    "discussed",
    "the",
    "border",
    "the",
    "water",
    "rights",
    "and",
    "the",
    "return",
    "of",
    "displaced",
    "families",
    "officials",
    "said",
    "a",
    "new",
    "round",
    "would",
    "follow",
    "soon",
    "markets",
    "climate",
    "energy",
    "drought",
    "software",
    "startup",
    "semiconductor",
    "election",
    "budget",
]
TOPICS = [
    TopicSpec("caucasus", "Caucasus", "Nagorno-Karabakh OR Azerbaijan OR Armenia OR geneva"),
    TopicSpec("climate", "Climate", 'climate OR emissions OR "renewable energy" OR drought'),
    TopicSpec("tech", "Tech", 'software OR "open source" OR startup OR semiconductor*'),
    TopicSpec("wide", "Wide", "the OR a OR said"),
]
PG_ADMIN = os.environ.get("AGGREGATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def generate(feeds: int, per_feed: int, seed: int = 7) -> list[list[Item]]:
    """Each feed's items: unique texts, a few links shared across feeds."""
    rng = random.Random(seed)
    out = []
    for f in range(feeds):
        source = f"feed{f:05}"
        origin = Origin(source=source, title=f"Feed {f}", link=f"https://{source}.example/")
        items = []
        for e in range(per_feed):
            shared = rng.random() < 0.03
            link = (
                f"https://wire.example/story/{rng.randrange(500)}"
                if shared
                else f"https://{source}.example/{e}"
            )
            body = "".join(f"<p>{_text(rng, 40)}.</p>" for _ in range(4))
            published = NOW - timedelta(minutes=rng.randrange(60 * 24 * 30))
            items.append(
                Item(
                    source=source,
                    identity=f"{source}/{e}",
                    title=_text(rng, 8).capitalize(),
                    link=link,
                    content_html=body,
                    summary=_text(rng, 30),
                    published=published,
                    updated=published,
                    authors=(f"Author {rng.randrange(50)}",),
                    tags=(rng.choice(WORDS), rng.choice(WORDS)),
                    language="en",
                    origin=origin,
                    content_hash=uuid.UUID(int=rng.getrandbits(128)).hex,
                )
            )
        out.append(items)
    return out


def _specs(feeds: list[list[Item]]) -> list[SourceSpec]:
    return [
        SourceSpec(
            name=items[0].source,
            kind=SourceKind.URL,
            location=f"https://{items[0].source}.example/feed",
            interval=timedelta(minutes=30),
            timeout=timedelta(seconds=20),
            max_bytes=2**22,
        )
        for items in feeds
    ]


def _state(spec: SourceSpec) -> SourceState:
    return SourceState(
        name=spec.name, location=spec.location, etag='"v1"', next_due_at=NOW + timedelta(hours=1)
    )


#: (wall seconds, CPU seconds of this process)
Timing = tuple[float, float]


@contextmanager
def timed(out: list[float]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    out.extend([time.perf_counter() - wall, time.process_time() - cpu])


def run_apply(
    store: SQLStore, feeds: list[list[Item]], batch: int, matchers: Any, *, prepared: bool = False
) -> Timing:
    specs = _specs(feeds)
    store.sync_sources(specs, now=NOW)
    if prepared:
        # What parse workers can hand the writer: keys, and each item's topics.
        keys = [tuple(dedup_keys(i) for i in items) for items in feeds]
        topics = {
            (i.source, i.identity): {n for n, m in matchers.items() if m(i)}
            for items in feeds
            for i in items
        }
        matchers = {
            name: (lambda item, name=name: name in topics[(item.source, item.identity)])
            for name in matchers
        }
    else:
        keys = [() for _ in feeds]
    writes = [
        SourceWrite(spec.name, items=tuple(items), state=_state(spec), keys=k)
        for spec, items, k in zip(specs, feeds, keys, strict=True)
    ]
    took: list[float] = []
    with timed(took):
        for i in range(0, len(writes), batch):
            store.apply(writes[i : i + batch], now=NOW, matchers=matchers)
    return took[0], took[1]


def run_ingest(store: SQLStore, feeds: list[list[Item]], matchers: Any) -> Timing:
    specs = _specs(feeds)
    store.sync_sources(specs, now=NOW)
    took: list[float] = []
    with timed(took):
        for spec, items in zip(specs, feeds, strict=True):
            store.ingest(items, now=NOW, matchers=matchers)
            store.save_state(_state(spec))
    return took[0], took[1]


def run_keys(feeds: list[list[Item]]) -> Timing:
    took: list[float] = []
    with timed(took):
        for items in feeds:
            for item in items:
                entry_values(item)
    return took[0], took[1]


def _floor_rows(
    feeds: list[list[Item]], stamp: Callable[[datetime], Any]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Story and entry rows as driver values (conversion is not timed)."""
    stories, entries = [], []
    for items in feeds:
        for item in items:
            v = entry_values(item)
            sid = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, item.source + item.identity)}"
            stories.append(
                (
                    sid,
                    item.source,
                    item.identity,
                    stamp(item.published),
                    stamp(item.updated),
                    stamp(NOW),
                    item.content_hash,
                )
            )
            entries.append(
                (
                    item.source,
                    item.identity,
                    sid,
                    v["title"],
                    v["link"],
                    v["content_html"],
                    v["summary"],
                    stamp(item.published),
                    stamp(item.updated),
                    json.dumps(v["authors"]),
                    json.dumps(v["tags"]),
                    v["language"],
                    json.dumps(v["dateline"]),
                    json.dumps(v["related"]),
                    json.dumps(v["origin"]),
                    v["content_hash"],
                    v["link_key"],
                    v["content_key"],
                    stamp(NOW),
                    stamp(NOW),
                )
            )
    return stories, entries


_ENTRY_COLUMNS = (
    "source, identity, story_id, title, link, content_html, summary, published, updated, "
    "authors, tags, language, dateline, related, origin, content_hash, link_key, content_key, "
    "first_seen, last_seen"
)
_STORY_COLUMNS = (
    "id, canonical_source, canonical_identity, published, updated, first_seen, content_hash"
)


def run_floor_sqlite(path: Path, feeds: list[list[Item]]) -> Timing:
    open_store(f"sqlite:///{path}").close()  # the same schema and indexes
    stories, entries = _floor_rows(
        feeds, lambda d: d.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    took: list[float] = []
    with timed(took):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO stories ({_STORY_COLUMNS}) VALUES ({_marks(7, '?')})", stories
        )
        conn.executemany(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES ({_marks(20, '?')})", entries
        )
        conn.execute("COMMIT")
    conn.close()
    return took[0], took[1]


def run_floor_pg(url: str, dsn: str, feeds: list[list[Item]]) -> Timing:
    import psycopg

    open_store(url).close()
    stories, entries = _floor_rows(feeds, lambda d: d)
    took: list[float] = []
    with psycopg.connect(dsn) as conn, timed(took):
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO stories ({_STORY_COLUMNS}) VALUES ({_marks(7, '%s')})", stories
            )
            cur.executemany(
                f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES ({_marks(20, '%s')})", entries
            )
        conn.commit()
    return took[0], took[1]


def _marks(n: int, mark: str) -> str:
    return ", ".join([mark] * n)


@contextmanager
def pg_databases(n: int) -> Iterator[list[tuple[str, str]]]:
    """``n`` fresh PostgreSQL databases: (SQLAlchemy URL, libpq DSN); none when unreachable."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"postgresql: skipped ({PG_ADMIN} not reachable: {type(exc).__name__})")
        yield []
        return
    names = [f"bench_store_{uuid.uuid4().hex[:10]}" for _ in range(n)]
    try:
        dbs = []
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
            dsn = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            dbs.append((dsn.replace("postgresql://", "postgresql+psycopg://"), dsn))
        yield dbs
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=58, help="entries per feed")
    ap.add_argument("--batch", type=int, default=100, help="sources per apply transaction")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args(argv)

    feeds = generate(args.feeds, args.entries)
    total = sum(len(f) for f in feeds)
    matchers = build_matchers(TOPICS)
    print(f"{args.feeds} feeds, {total} entries, {args.batch} sources per apply batch")
    results: dict[str, dict[str, Timing]] = {}
    keys = run_keys(feeds)

    def apply_rows(url: Callable[[str], str]) -> dict[str, Timing]:
        rows: dict[str, Timing] = {}
        for name, prepared in (("apply", False), ("prepared", True)):
            store = open_store(url(name))
            rows[name] = run_apply(store, feeds, args.batch, matchers, prepared=prepared)
            store.close()
        store = open_store(url("ingest"))
        rows["ingest"] = run_ingest(store, feeds, matchers)
        store.close()
        rows["keys"] = keys
        return rows

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        root = Path(tmp)
        sqlite = apply_rows(lambda name: f"sqlite:///{root / name}.db")
        sqlite["floor"] = run_floor_sqlite(root / "floor.db", feeds)
        results["sqlite-file"] = sqlite

    if not args.no_pg:
        with pg_databases(4) as dbs:
            if dbs:
                names = iter(dbs)
                pg = apply_rows(lambda name: next(names)[0])
                url, dsn = next(names)
                pg["floor"] = run_floor_pg(url, dsn, feeds)
                results["postgresql"] = pg

    labels = {
        "apply": "apply",
        "prepared": "apply, keys+topics precomputed",
        "ingest": "ingest per source",
        "keys": "dedup keys alone",
        "floor": "driver executemany floor",
    }
    for backend, rows in results.items():
        print(f"\n{backend}: entries/s (wall), entries/s (CPU), time vs apply (wall, CPU)")
        for name, (wall, cpu) in rows.items():
            print(
                f"  {labels[name]:32} {total / wall:9,.0f} {total / max(cpu, 1e-9):9,.0f}"
                f"  {wall / rows['apply'][0]:5.2f}x {cpu / max(rows['apply'][1], 1e-9):5.2f}x"
            )
    if args.json:
        out = {
            "feeds": args.feeds,
            "entries": total,
            "batch": args.batch,
            "results": {
                b: {
                    n: {"wall_s": w, "cpu_s": c, "entries_per_s": total / w}
                    for n, (w, c) in rows.items()
                }
                for b, rows in results.items()
            },
        }
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
