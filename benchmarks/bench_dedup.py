"""Place one new entry among many stored stories: the near-duplicate lookup's cost.

Fills a SQLite file store with ``--stories`` (default 100,000) generated news
stories through ``SQLStore.ingest`` (the real dedup path: sketch, band
lookup, precise check, band rows), then times single-entry ingests of new
entries, half of them edited copies of stored stories (they join one) and
half fresh stories, and the same on the exact-repeat rules alone
(``dedup.enabled: false``) as the peer. Prints the median and p95 per entry,
the ratio to the peer, the candidates checked, and the index size per story
(SQLite ``dbstat`` of the story_index table and its indexes).

Run: ``python benchmarks/bench_dedup.py [--stories 100000] [--probes 200]``
Target: median < 5 ms per entry at 100,000 stories.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.model import Item
from aggregator.normalise import content_hash
from aggregator.store import entries as entry_ops
from aggregator.store import open_store
from aggregator.store.rows import entry_values
from aggregator.store.schema import entries, stories, story_joins
from aggregator.store.stories import entry_key, find_near
from aggregator.stories import neardup
from aggregator.stories.dedup import mint_story_id
from aggregator.stories.neardup import NearDupSettings

T0 = datetime(2026, 11, 1, tzinfo=UTC)
#: stored stories are published over 12 days (minutes), all within the window
MINUTES = 60 * 24 * 12
#: when the stored stories were ingested
FILLED_AT = T0 + timedelta(days=13)
COMMON = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "said",
    "on",
    "for",
    "that",
    "with",
    "was",
    "by",
    "at",
    "from",
    "as",
    "it",
    "is",
    "its",
    "has",
    "have",
    "were",
    "officials",
    "government",
    "minister",
    "police",
    "city",
    "region",
    "people",
    "president",
    "on",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "year",
    "week",
    "after",
    "before",
    "more",
    "than",
    "about",
    "two",
    "three",
    "four",
    "percent",
    "million",
    "billion",
    "told",
    "reporters",
    "statement",
    "agency",
    "ministry",
    "local",
    "national",
]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnoprstuvwyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def _story(rng: random.Random, vocab: list[str], words: int = 130) -> str:
    out = []
    for _ in range(words):
        if rng.random() < 0.45:
            out.append(rng.choice(COMMON))
        elif rng.random() < 0.05:
            out.append(str(rng.randint(2, 9999)))
        else:
            out.append(vocab[int(rng.paretovariate(1.2)) % len(vocab)])
    paras = [" ".join(out[i : i + 40]) for i in range(0, len(out), 40)]
    return "".join(f"<p>{p}.</p>" for p in paras)


def _edit(rng: random.Random, html: str) -> str:
    words = html.split(" ")
    for _ in range(len(words) // 25):
        words[rng.randrange(len(words))] = rng.choice(COMMON)
    return " ".join(words[: int(len(words) * 0.8)]) + "</p>"


def _item(source: str, identity: str, html: str, published: datetime) -> Item:
    title = f"Story {identity}"
    return Item(
        source=source,
        identity=identity,
        title=title,
        link=f"https://{source}.example/{identity}",
        content_html=html,
        summary=title,
        published=published,
        updated=published,
        content_hash=content_hash(
            title=title,
            link=None,
            content_html=html,
            summary=title,
            dateline=None,
            related=(),
            authors=(),
            tags=(),
        ),
    )


def _fill_by_ingest(
    url: str, rng: random.Random, vocab: list[str], count: int, batch: int
) -> list[str]:
    """Store ``count`` stories through ``SQLStore.ingest`` (the real path; slow at 100k)."""
    store = open_store(url)
    bodies: list[str] = []
    for start in range(0, count, batch):
        items = []
        for n in range(start, min(count, start + batch)):
            html = _story(rng, vocab)
            bodies.append(html)
            items.append(_item("wire", f"w{n}", html, T0 + timedelta(minutes=n % MINUTES)))
        store.ingest(items, now=FILLED_AT, matchers={})
        print(f"\rfilled {min(count, start + batch):,} stories", end="", file=sys.stderr)
    print(file=sys.stderr)
    store.close()
    return bodies


def _fill_in_bulk(
    url: str, rng: random.Random, vocab: list[str], count: int, batch: int
) -> list[str]:
    """Write ``count`` one-entry stories straight into the tables, as ingest would leave them.

    The same rows as a new story's ingest (story, entry, band rows, join
    record), computed by the store's own row builders and sketches, but
    inserted with ``executemany`` and without looking anything up: the
    generated texts are unrelated, so each one is a new story.
    """
    store = open_store(url)
    settings = store.near
    bodies: list[str] = []
    with store.db.write() as conn:
        for start in range(0, count, batch):
            story_rows, entry_rows, join_rows, band_rows = [], [], [], []
            for n in range(start, min(count, start + batch)):
                html = _story(rng, vocab)
                bodies.append(html)
                item = _item("wire", f"w{n}", html, T0 + timedelta(minutes=n % MINUTES))
                story_id = mint_story_id(item.source, item.identity)
                story_rows.append(entry_ops.story_row(item, story_id, FILLED_AT))
                entry_rows.append(
                    entry_ops.entry_row(item, story_id, entry_values(item), FILLED_AT)
                )
                key = entry_key(item.source, item.identity)
                sketch = neardup.sketch(item, settings)
                if sketch is not None:
                    band_rows.extend((band, key) for band in dict.fromkeys(sketch.bands))
                join_rows.append(
                    {
                        "source": item.source,
                        "identity": item.identity,
                        "entry_key": key,
                        "story_id": story_id,
                        "rule": "new",
                        "joined_at": FILLED_AT,
                    }
                )
            conn.execute(stories.insert(), story_rows)
            conn.execute(entries.insert(), entry_rows)
            conn.execute(story_joins.insert(), join_rows)
            conn.exec_driver_sql(
                "INSERT INTO story_index (band, entry_key) VALUES (?, ?)", band_rows
            )
            print(f"\rfilled {min(count, start + batch):,} stories", end="", file=sys.stderr)
    print(file=sys.stderr)
    store.close()
    return bodies


def _index_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = 'story_index' "
            "OR name LIKE 'ix_story_index%' OR name LIKE 'sqlite_autoindex_story_index%'"
        ).fetchone()
    return int(row[0] or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument(
        "--fill",
        choices=("bulk", "ingest"),
        default="bulk",
        help="write the stored stories straight into the tables (bulk) or through ingest",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="keep the filled store in this SQLite file, or reuse it when it exists "
        "(filled by this script with the same --stories; probes add to it)",
    )
    args = parser.parse_args()
    rng = random.Random(20261128)
    vocab = _vocabulary(rng, 50_000)
    matchers: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        url = f"sqlite:///{db}"
        started = time.perf_counter()
        if db.exists():
            # The texts are drawn from the seeded generator: draw them again.
            bodies = [_story(rng, vocab) for _ in range(args.stories)]
        else:
            fill = _fill_in_bulk if args.fill == "bulk" else _fill_by_ingest
            bodies = fill(url, rng, vocab, args.stories, args.batch)
        fill_s = time.perf_counter() - started
        store = open_store(url)
        stored = len(store.story_ids())
        store.close()
        index = _index_bytes(db)

        def place() -> tuple[list[float], list[float], int]:
            """Sketch + band lookup + precise check of one entry, in a read transaction."""
            st = open_store(url)
            walls, cpus, found = [], [], 0
            with st.engine.connect() as conn:
                for i in range(args.probes):
                    if i % 2:
                        html = _story(rng, vocab)
                    else:
                        html = _edit(rng, bodies[rng.randrange(len(bodies))])
                    item = _item("probe", f"x{i}", html, T0 + timedelta(days=6))
                    t, c = time.perf_counter(), time.process_time()
                    sk = neardup.sketch(item, st.near)
                    match = find_near(conn, item, sk, st.near, now=FILLED_AT) if sk else None
                    walls.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - c)
                    found += match is not None and i % 2 == 0
            st.close()
            return walls, cpus, found

        def probe(settings: NearDupSettings, tag: str) -> tuple[list[float], int]:
            st = open_store(url, near=settings)
            times = []
            joined = 0
            for i in range(args.probes):
                if i % 2:
                    html = _story(rng, vocab)
                else:
                    html = _edit(rng, bodies[rng.randrange(len(bodies))])
                # Identities new to a reused --db too (an old one would be an update).
                item = _item("probe", f"{tag}{stored}-{i}", html, T0 + timedelta(days=6))
                t = time.perf_counter()
                report = st.ingest([item], now=FILLED_AT, matchers=matchers)  # type: ignore[arg-type]
                times.append(time.perf_counter() - t)
                joined += report.merged if i % 2 == 0 else 0
            st.close()
            return times, joined

        place_wall, place_cpu, found = place()
        near, joined = probe(NearDupSettings(), "n")
        exact, _ = probe(NearDupSettings(enabled=False), "e")
    med, peer = statistics.median(near), statistics.median(exact)
    p95 = sorted(near)[int(len(near) * 0.95) - 1]
    print(
        f"stored stories: {stored:,} ({args.fill} fill in {fill_s:.0f} s, "
        f"{fill_s / stored * 1e3:.2f} ms each; a reused --db is not refilled)"
    )
    print(
        f"place one new entry (sketch, band lookup, check): median "
        f"{statistics.median(place_wall) * 1e3:.2f} ms wall, "
        f"{statistics.median(place_cpu) * 1e3:.2f} ms CPU; "
        f"{found}/{(args.probes + 1) // 2} edited copies found"
    )
    print(
        f"whole ingest of one entry (near-duplicate dedup, commit): median {med * 1e3:.2f} ms, "
        f"p95 {p95 * 1e3:.2f} ms; {joined}/{(args.probes + 1) // 2} edited copies joined"
    )
    print(f"peer, exact-repeat rules only: median {peer * 1e3:.2f} ms (ratio {med / peer:.2f}x)")
    print(
        f"index: {index / 2**20:.1f} MiB for {stored:,} stories = {index / stored:.0f} bytes "
        f"per story ({NearDupSettings().bands * 2} band rows each)"
    )
    print(
        "load average while running: {:.1f} {:.1f} {:.1f} on {} cores "
        "(wall time includes waiting for a core; CPU time does not)".format(
            *os.getloadavg(), os.cpu_count()
        )
    )
    verdicts = [
        f"{name} {'met' if statistics.median(times) < 0.005 else 'NOT met'}"
        for name, times in (("wall", place_wall), ("CPU", place_cpu))
    ]
    print(f"target: placing median < 5 ms -> {', '.join(verdicts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
