"""Topics in the pipeline: dated clauses against the context's clock, scopes at ingest and re-match.

Real seed folders holding RSS files (explicit dates and languages), a real
SQLite file, the real ``update_all`` and ``open_context`` (which re-matches
topics whose query or scope changed).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aggregator.config import load_config
from aggregator.update import Context, open_context, update_all

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rss(language: str, items: list[tuple[str, datetime]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><guid>{title.lower().replace(' ', '-')}</guid>"
        f"<description>{title} in the Caucasus.</description>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for title, published in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed</title><link>https://{language}.example/</link>"
        f"<language>{language}</language>{entries}</channel></rss>"
    )


def workspace(tmp_path: Path, topics: str) -> Path:
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    (tmp_path / "a" / "a.rss").write_text(
        rss(
            "en",
            [
                ("Karabakh talks resume", NOW - timedelta(days=1)),
                ("Karabakh archive piece", NOW - timedelta(days=20)),
            ],
        ),
        encoding="utf-8",
    )
    (tmp_path / "b" / "b.rss").write_text(
        rss("fa", [("Karabakh ceasefire holds", NOW - timedelta(days=2))]), encoding="utf-8"
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        "data_dir: data\n"
        "sources:\n"
        "  - {name: a, path: a, tags: [World]}\n"
        "  - {name: b, path: b}\n"
        "topics:\n" + topics,
        encoding="utf-8",
    )
    return config


def titles(ctx: Context, topic: str) -> set[str]:
    return {s.item.title for s in ctx.store.topic_stories(topic)}


TOPICS = (
    "  - {name: recent, query: 'Karabakh AND age:<7d'}\n"
    "  - {name: november, query: 'karabakh published:2026-11-01..2026-11-30'}\n"
    "  - {name: world, query: karabakh, sources: ['tag:world'], max_age: 10d}\n"
    "  - {name: farsi, query: karabakh, lang: [fa]}\n"
)


def test_dates_and_scopes_decide_membership_at_ingest(tmp_path: Path) -> None:
    config = workspace(tmp_path, TOPICS)
    ctx = open_context(load_config(config), clock=lambda: NOW)
    try:
        results = asyncio.run(update_all(ctx))
        assert [r.new for r in results] == [2, 1], [r.problems for r in results]
        assert titles(ctx, "recent") == {"Karabakh talks resume", "Karabakh ceasefire holds"}
        assert titles(ctx, "november") == {
            "Karabakh talks resume",
            "Karabakh archive piece",
            "Karabakh ceasefire holds",
        }
        assert titles(ctx, "world") == {"Karabakh talks resume"}
        assert titles(ctx, "farsi") == {"Karabakh ceasefire holds"}
    finally:
        ctx.close()


def test_changed_scope_rematches_stored_stories_at_the_clock_of_the_change(
    tmp_path: Path,
) -> None:
    config = workspace(tmp_path, TOPICS)
    ctx = open_context(load_config(config), clock=lambda: NOW)
    try:
        asyncio.run(update_all(ctx))
    finally:
        ctx.close()
    # A month later the operator widens `world` to source b, drops its max_age,
    # and adds a topic of the last week; `recent` and `farsi` are unchanged.
    later = NOW + timedelta(days=30)
    workspace(
        tmp_path,
        TOPICS.replace("sources: ['tag:world'], max_age: 10d", "sources: [b]")
        + "  - {name: this-week, query: 'karabakh age:<7d'}\n",
    )
    ctx = open_context(load_config(config), clock=lambda: later)
    try:
        assert titles(ctx, "world") == {"Karabakh ceasefire holds"}
        assert titles(ctx, "this-week") == set()  # matched at the clock of the change
        # Unchanged topics are not re-matched: membership stays as decided at ingest.
        assert titles(ctx, "recent") == {"Karabakh talks resume", "Karabakh ceasefire holds"}
        assert titles(ctx, "farsi") == {"Karabakh ceasefire holds"}
    finally:
        ctx.close()


def test_reused_topic_change_rematches_the_topics_reusing_it(tmp_path: Path) -> None:
    topics = (
        "  - {name: base, query: ceasefire}\n"
        "  - {name: wider, query: {any: ['topic:base', archive]}}\n"
    )
    config = workspace(tmp_path, topics)
    ctx = open_context(load_config(config), clock=lambda: NOW)
    try:
        asyncio.run(update_all(ctx))
        assert titles(ctx, "wider") == {"Karabakh ceasefire holds", "Karabakh archive piece"}
    finally:
        ctx.close()
    workspace(tmp_path, topics.replace("query: ceasefire", "query: talks"))
    ctx = open_context(load_config(config), clock=lambda: NOW)
    try:
        assert titles(ctx, "wider") == {"Karabakh talks resume", "Karabakh archive piece"}
    finally:
        ctx.close()
