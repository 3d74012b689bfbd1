"""Ingest a folder of generated seed files through the real pipeline.

Generates ``--count`` seed files (default 10,000) in a temporary folder, in
three styles in turn: plain text with a kicker, a dateline, breadcrumbs and a
"Read More:" tail; Markdown with YAML front matter; an HTML article page. Then,
in one process:

- **first ingest**: ``update_source`` over the folder into an empty SQLite
  file store (scan, read, decode, parse, normalise, dedup, topic matching,
  writes);
- **no-change pass**: ``update_source`` again; every file is unchanged, so
  only the folder is listed and stat'ed;
- peers in the same run, on the same files: **read+hash** (open, read and
  SHA-256 every file: the floor for any pass that looks at contents),
  **parse only** (``parse_seed`` + ``normalise_entry`` without the store:
  what the store adds is the difference) and **feedparser** (the same
  articles as RSS items, 100 per feed document, parsed by feedparser: what a
  feed reader pays per item).

Prints seeds per second, the ratio to the peers, and the peak RSS.

Run: ``python benchmarks/bench_seeds.py [--count 10000] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import feedparser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.config import load_config
from aggregator.model import Origin
from aggregator.normalise import normalise_entry
from aggregator.parse import parse_seed
from aggregator.update import open_context, update_source

PLACES = ["Qom", "Yerevan", "Baku", "Tbilisi", "Ankara", "Tehran", "Moscow", "Brussels"]
AGENCIES = ["IP", "AFP", "Reuters", "AP", "IRNA", "TASS"]
SUBJECTS = [
    "Nagorno-Karabakh talks",
    "the JCPOA review",
    "glacier melt in the Caucasus",
    "a new floating solar plant",
    "coal phase-down plans",
    "border crossing reopening",
    "grain exports through the Black Sea",
    "regional rail links",
]
WORDS = [
    "officials",
    "said",
    "the",
    "agreement",
    "would",
    "be",
    "reviewed",
    "next",
    "month",
    "after",
    "talks",
    "in",
    "the",
    "capital",
    "where",
    "delegations",
    "met",
    "for",
    "three",
    "days",
    "to",
    "discuss",
    "trade",
    "energy",
    "water",
    "and",
    "security",
    "while",
    "analysts",
    "warned",
    "that",
    "progress",
    "depended",
    "on",
    "funding",
    "and",
    "on",
    "the",
    "weather",
    "this",
    "winter",
]

TOPICS = """
topics:
  - {name: karabakh, title: Nagorno-Karabakh, query: Nagorno-Karabakh}
  - {name: jcpoa, title: JCPOA, query: JCPOA}
  - {name: climate, title: Climate, query: 'glacier OR solar OR coal'}
  - {name: trade, title: Trade, query: 'border OR grain OR rail'}
"""


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def article_parts(i: int, rng: random.Random) -> dict[str, str]:
    subject = SUBJECTS[i % len(SUBJECTS)]
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * i)
    return {
        "title": f"Report {i}: ministers discuss {subject}",
        "subject": subject,
        "place": PLACES[i % len(PLACES)],
        "agency": AGENCIES[i % len(AGENCIES)],
        "date": when.isoformat(),
        "body1": f"Talks on {subject} continued, report {i} says. " + paragraph(rng, 45),
        "body2": paragraph(rng, 60),
        "body3": paragraph(rng, 30),
    }


def plain_text(i: int, p: dict[str, str]) -> str:
    return (
        f"Deputy Minister {i}:\n"
        f"Ministers discuss {p['subject']} in round {i}\n\n"
        f"Iran PressIran News:\n\n"
        f"{p['place']} ({p['agency']}): {p['body1']}\n\n"
        f"{p['body2']}\n\n{p['body3']}\n\n"
        "Read More:\n\n"
        f"Earlier round {i - 1} ended without agreement\n\n"
        f"Analysts weigh the outlook for {p['subject']}\n"
    )


def markdown(i: int, p: dict[str, str]) -> str:
    return (
        "---\n"
        f'title: "{p["title"]}"\n'
        f"date: {p['date']}\n"
        f"author: Desk {i % 17}\n"
        f"tags: [caucasus, round-{i % 9}]\n"
        f"link: https://news.example/articles/{i}\n"
        "---\n\n"
        f"# {p['title']}\n\n{p['body1']}\n\n"
        f"* point one of {i}\n* point two\n\n{p['body2']}\n\n> {p['body3']}\n"
    )


def html_page(i: int, p: dict[str, str]) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(p['title'])} | Example News</title>"
        f'<meta property="og:title" content="{escape(p["title"])}">'
        f'<meta property="article:published_time" content="{p["date"]}">'
        f'<link rel="canonical" href="https://news.example/a/{i}?utm_source=x">'
        "</head><body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{escape(p['title'])}</h1>"
        f"<p>{escape(p['body1'])}</p><p>{escape(p['body2'])}</p>"
        f"<p>{escape(p['body3'])}</p></article>"
        "<footer>Copyright Example News. All rights reserved.</footer>"
        "<script>track()</script></body></html>"
    )


def generate(root: Path, count: int) -> list[dict[str, str]]:
    """Write ``count`` seed files under ``root``, 500 per folder; return their parts."""
    rng = random.Random(1234)
    parts = []
    for i in range(count):
        p = article_parts(i, rng)
        parts.append(p)
        folder = root / f"batch{i // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        style = i % 3
        if style == 0:
            name, text = (
                f"{i:05d}_{hashlib.sha1(str(i).encode()).hexdigest()[:16]}.txt",
                (plain_text(i, p)),
            )
        elif style == 1:
            name, text = f"story-{i:05d}.md", markdown(i, p)
        else:
            name, text = f"page-{i:05d}.html", html_page(i, p)
        (folder / name).write_text(text, encoding="utf-8")
    return parts


def rss_documents(parts: list[dict[str, str]], per_feed: int = 100) -> list[bytes]:
    docs = []
    for start in range(0, len(parts), per_feed):
        items = "".join(
            f"<item><title>{escape(p['title'])}</title>"
            f"<link>https://news.example/a/{start + k}</link>"
            f"<guid>urn:seed:{start + k}</guid>"
            f"<pubDate>{datetime.fromisoformat(p['date']).strftime('%a, %d %b %Y %H:%M:%S +0000')}"
            "</pubDate>"
            f"<description>{escape('<p>' + p['body1'] + '</p><p>' + p['body2'] + '</p>')}"
            "</description></item>"
            for k, p in enumerate(parts[start : start + per_feed])
        )
        docs.append(
            (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Feed {start}</title><link>https://news.example/</link>{items}"
                "</channel></rss>"
            ).encode()
        )
    return docs


def timed(label: str, count: int, run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    rate = count / elapsed if elapsed else float("inf")
    print(f"  {label:<28} {elapsed:8.2f} s  {rate:10,.0f} seeds/s", flush=True)
    return rate


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="seed files to generate")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-seeds-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = work / "seeds"
    try:
        started = time.perf_counter()
        parts = generate(seeds, args.count)
        size = sum(f.stat().st_size for f in seeds.rglob("*") if f.is_file())
        print(
            f"generated {args.count:,} seed files ({size / 2**20:.1f} MiB; "
            f"text/Markdown/HTML in turn) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        config = work / "aggregator.yaml"
        config.write_text(
            "data_dir: data\nsources:\n  - {name: seeds, path: seeds}\n" + TOPICS,
            encoding="utf-8",
        )
        ctx = open_context(load_config(config))
        spec = ctx.config.sources[0]
        results = []
        print("pipeline (SQLite file store):")
        try:
            first = timed(
                "first ingest",
                args.count,
                lambda: results.append(asyncio.run(update_source(spec, ctx))),
            )
            again = timed(
                "no-change pass",
                args.count,
                lambda: results.append(asyncio.run(update_source(spec, ctx))),
            )
            topics = {t.name: len(ctx.store.topic_stories(t.name)) for t in ctx.config.topics}
        finally:
            ctx.close()
        for label, result in zip(("first ingest", "no-change pass"), results, strict=True):
            print(
                f"  {label}: outcome={result.outcome} new={result.new} updated={result.updated} "
                f"unchanged={result.unchanged} problems={len(result.problems)}"
            )
            for problem in result.problems[:5]:
                print(f"    {problem}")
        print(f"  stories per topic: {topics}")

        files = sorted(f for f in seeds.rglob("*") if f.is_file())
        print("peers (same files, same process):")

        def read_hash() -> None:
            for f in files:
                hashlib.sha256(f.read_bytes()).digest()

        now = datetime.now(UTC)
        origin = Origin(source="seeds", title="seeds")

        def parse_only() -> None:
            for f in files:
                rel = f.relative_to(seeds).as_posix()
                mtime = datetime.fromtimestamp(f.stat().st_mtime, UTC)
                doc = parse_seed(rel, f.read_bytes(), source="seeds", mtime=mtime, now=now)
                for raw in doc.entries:
                    normalise_entry(raw, source="seeds", origin=origin, now=now)

        docs = rss_documents(parts)

        def feedparse() -> None:
            for doc in docs:
                feedparser.parse(doc)

        hashed = timed("read+hash", len(files), read_hash)
        parsed = timed("parse only (no store)", len(files), parse_only)
        fed = timed("feedparser, same as RSS", len(parts), feedparse)
        print("ratios:")
        print(f"  first ingest / read+hash        {first / hashed:8.4f}")
        print(f"  first ingest / parse only       {first / parsed:8.4f}")
        print(f"  first ingest / feedparser       {first / fed:8.4f}")
        print(f"  no-change pass / read+hash      {again / hashed:8.2f}")
        print(f"peak RSS: {peak_rss_mib():.0f} MiB")
        db = work / "data" / "aggregator.db"
        if db.exists():
            print(f"store size: {db.stat().st_size / 2**20:.1f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
