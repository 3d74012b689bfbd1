"""Place one new entry among many stored stories with the semantic signal (``dedup.semantic``).

Fills a SQLite file store with ``--stories`` (default 100,000) one-entry
stories of generated English text (sentences drawn from the labelled set's
vocabulary), each with its ``story_vectors`` row embedded by the real model,
written straight into the tables as ingest leaves them (no band rows: the
near-duplicate index is ``bench_dedup.py``'s subject). Then, in this process:

- opening the process's index (reading every vector row's sign bits), its
  time and its memory (tracemalloc), per story;
- placing one entry: ``SemanticView.match`` (embed, Hamming scan of the
  window, exact cosine of the best 16 from their stored vectors, specifics),
  over stories published across ``--days`` (the 36 h window holds a few
  thousand) and with a window holding every stored story (the worst case);
- the whole ingest of one entry with the signal on, and off as the peer;
- the vectors' size on disk (SQLite ``dbstat``).

Run: ``python benchmarks/bench_semantic.py [--stories 100000] [--probes 200] [--db PATH]``
Target (issue 26): placing one entry <= 10 ms median at 100,000 stories.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from aggregator.model import Item, NearDupSettings
from aggregator.normalise import content_hash
from aggregator.store import entries as entry_ops
from aggregator.store import open_store
from aggregator.store import semindex as semindex_mod
from aggregator.store.rows import entry_values
from aggregator.store.schema import entries, stories, story_joins, story_vectors
from aggregator.store.semindex import SemanticView, semantic_text
from aggregator.store.stories import entry_key
from aggregator.stories.dedup import mint_story_id

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 8, 1, tzinfo=UTC)
FILLED_AT = T0 + timedelta(days=120)


def _vocabulary() -> list[str]:
    corpus = yaml.safe_load((REPO / "tests/data/stories/corpus.yaml").read_text(encoding="utf-8"))
    text = " ".join(s["body"] for s in corpus["stories"].values())
    return re.findall(r"[A-Za-z][a-z']+|\d+", text)


def _text(rng: random.Random, words: list[str]) -> tuple[str, str]:
    title = " ".join(rng.choice(words) for _ in range(9)).capitalize()
    sentences = [
        " ".join(rng.choice(words) for _ in range(rng.randint(12, 24))).capitalize() + "."
        for _ in range(5)
    ]
    return title, " ".join(sentences)


def _item(source: str, identity: str, text: tuple[str, str], published: datetime) -> Item:
    title, body = text
    html = f"<p>{body}</p>"
    return Item(
        source=source,
        identity=identity,
        title=title,
        link=f"https://{source}.example/{identity}",
        content_html=html,
        summary=title,
        published=published,
        updated=published,
        language="en",
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


def _fill(url: str, texts: list[tuple[str, str]], days: int, batch: int) -> None:
    """One-entry stories with their vector rows, written as ingest would leave them."""
    from aggregator.stories import semantic

    model = semantic.load()
    store = open_store(url)
    settings = NearDupSettings(semantic=True)
    minutes = days * 24 * 60
    with store.db.write() as conn:
        for start in range(0, len(texts), batch):
            chunk = range(start, min(len(texts), start + batch))
            items = [
                _item("wire", f"w{n}", texts[n], T0 + timedelta(minutes=n * minutes // len(texts)))
                for n in chunk
            ]
            vectors = model.embed(
                [semantic_text(i.title, i.content_html[3:-4], settings) for i in items]
            )
            story_rows, entry_rows, join_rows, vector_rows = [], [], [], []
            for item, vector in zip(items, vectors, strict=True):
                story_id = mint_story_id(item.source, item.identity)
                key = entry_key(item.source, item.identity)
                story_rows.append(entry_ops.story_row(item, story_id, FILLED_AT))
                entry_rows.append(
                    entry_ops.entry_row(item, story_id, entry_values(item), FILLED_AT)
                )
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
                vector_rows.append(
                    {
                        "entry_key": key,
                        "published": item.published,
                        "language": "en",
                        "scale": vector.scale,
                        "code": vector.code,
                        "vector": vector.values,
                    }
                )
            conn.execute(stories.insert(), story_rows)
            conn.execute(entries.insert(), entry_rows)
            conn.execute(story_joins.insert(), join_rows)
            conn.execute(story_vectors.insert(), vector_rows)
            print(f"\rfilled {chunk.stop:,} stories", end="", file=sys.stderr)
    print(file=sys.stderr)
    store.close()


def _disk_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = 'story_vectors' "
            "OR name LIKE 'sqlite_autoindex_story_vectors%'"
        ).fetchone()
    return int(row[0] or 0)


def _probe_text(rng: random.Random, texts: list[tuple[str, str]]) -> tuple[str, str]:
    """A stored story retold: its title kept, its sentences in another order."""
    title, body = texts[rng.randrange(len(texts))]
    sentences = body.split(". ")
    rng.shuffle(sentences)
    return title, ". ".join(sentences)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--days", type=int, default=100, help="days the stories span")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=None, help="keep (or reuse) the filled store")
    args = parser.parse_args()
    rng = random.Random(20261206)
    words = _vocabulary()
    texts = [_text(rng, words) for _ in range(args.stories)]
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        url = f"sqlite:///{db}"
        from aggregator.stories import semantic

        t = time.perf_counter()
        model = semantic.load()
        model_s = time.perf_counter() - t
        started = time.perf_counter()
        if not db.exists():
            _fill(url, texts, args.days, args.batch)
        fill_s = time.perf_counter() - started
        disk = _disk_bytes(db)
        spread = NearDupSettings(semantic=True)
        every = NearDupSettings(semantic=True, semantic_window=timedelta(days=args.days * 2))

        # The model loads once per process; the index is read on the first view.
        store = open_store(url, near=spread)
        # Opened once traced (its memory), then again timed (tracemalloc slows it).
        tracemalloc.start()
        with store.engine.connect() as conn:
            SemanticView(conn, spread)
        cache_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        semindex_mod._CACHES.clear()
        t = time.perf_counter()
        with store.engine.connect() as conn:
            SemanticView(conn, spread)
        open_s = time.perf_counter() - t
        stored = len(next(iter(semindex_mod._CACHES.values())).index)

        def place(settings: NearDupSettings) -> tuple[list[float], list[float], int]:
            walls, cpus, found = [], [], 0
            with store.engine.connect() as conn:
                view = SemanticView(conn, settings)
                for i in range(args.probes):
                    when = T0 + timedelta(days=rng.uniform(1, args.days - 1))
                    item = _item("probe", f"p{i}", _probe_text(rng, texts), when)
                    w, c = time.perf_counter(), time.process_time()
                    found += bool(view.match(item, now=FILLED_AT))
                    walls.append(time.perf_counter() - w)
                    cpus.append(time.process_time() - c)
            return walls, cpus, found

        spread_wall, spread_cpu, _ = place(spread)
        every_wall, every_cpu, _ = place(every)

        def ingest(settings: NearDupSettings, tag: str) -> list[float]:
            st = open_store(url, near=settings)
            times = []
            for i in range(args.probes):
                when = T0 + timedelta(days=rng.uniform(1, args.days - 1))
                item = _item("probe", f"{tag}{time.time_ns()}-{i}", _text(rng, words), when)
                w = time.perf_counter()
                st.ingest([item], now=FILLED_AT, matchers={})
                times.append(time.perf_counter() - w)
            st.close()
            return times

        with_signal = ingest(spread, "s")
        peer = ingest(NearDupSettings(), "n")
        store.close()

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:.2f} ms"

    window_share = 36 / (args.days * 24)
    print(f"stored stories: {stored:,} over {args.days} days (filled in {fill_s:.0f} s)")
    print(f"model load: {model_s * 1e3:.0f} ms, {model.nbytes / 2**20:.1f} MiB token matrix")
    print(
        f"index: opened in {open_s * 1e3:.0f} ms; {cache_bytes / 2**20:.1f} MiB in memory = "
        f"{cache_bytes / stored:.0f} bytes per story; on disk {disk / 2**20:.1f} MiB = "
        f"{disk / stored:.0f} bytes per story"
    )
    print(
        f"place one entry, 36 h window (~{window_share * stored:,.0f} candidates): "
        f"median {ms(spread_wall)} wall, {ms(spread_cpu)} CPU"
    )
    p95 = sorted(every_wall)[int(len(every_wall) * 0.95) - 1]
    print(
        f"place one entry, every stored story in the window: median {ms(every_wall)} wall, "
        f"{ms(every_cpu)} CPU, p95 {p95 * 1e3:.2f} ms"
    )
    print(
        f"whole ingest of one entry with semantic: median {ms(with_signal)}; "
        f"peer without: {ms(peer)} "
        f"(ratio {statistics.median(with_signal) / statistics.median(peer):.2f}x)"
    )
    print("load average: {:.1f} {:.1f} {:.1f} on {} cores".format(*os.getloadavg(), os.cpu_count()))
    worst = statistics.median(every_wall)
    verdict = "met" if worst <= 0.010 else "NOT met"
    print(f"target: placing median <= 10 ms -> {verdict} (worst case)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
