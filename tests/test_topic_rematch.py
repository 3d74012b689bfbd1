"""Re-matching stored stories in bulk gives exactly the memberships of one-by-one matching.

The corpus is the query table's documents (``data/topics``) as items, each in
several sources, languages and ages; the topics are every query of the table,
some scoped (sources, ``lang``, ``max_age``) and some reusing others with
``topic:``. The reference is the plainest path there is: every topic's
compiled matcher asked about every item, no prefilter and no batching.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from aggregator.engine import CpuPool
from aggregator.engine.match import POOL_MIN_ITEMS, TopicPredicates, build_matchers
from aggregator.model import Dateline, Item, Origin, TopicSpec
from aggregator.store import SQLStore, open_store
from aggregator.store import topics as store_topics
from aggregator.store.schema import stories, story_topics
from aggregator.topics import compile_topics, document
from aggregator.update import topic_signatures

DATA = Path(__file__).parent / "data" / "topics"
NOW = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
SOURCES = ("iran-press", "sports-wire", "wire")
LANGUAGES = ("en", "en-GB", "fa", None)
#: what tells a document's variants apart, so the store keeps them as separate stories
EDITIONS = ("", "morning", "noon", "evening", "night", "weekend", "special", "digest")


def _items() -> list[Item]:
    raw: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "documents.yaml").read_text("utf-8"))
    items = []
    for name, fields in raw.items():
        published = datetime.fromisoformat(fields.get("published", "2024-03-01T00:00:00+00:00"))
        for variant in range(8):
            when = published - timedelta(days=9 * variant)
            source = fields.get("source") if variant == 0 else SOURCES[variant % len(SOURCES)]
            edition = EDITIONS[variant]
            text = fields.get("content_text", "")
            body = f"<p>{html.escape(text)}</p>" if text else ""
            if edition:
                body += f"<p>The {edition} edition, {variant * 17} readers, desk {name}.</p>"
            identity = f"{name}-{variant}"
            items.append(
                Item(
                    source=source or "wire",
                    identity=identity,
                    title=f"{fields.get('title') or name} {edition}".strip(),
                    link=f"https://example.org/{identity}",
                    content_html=body,
                    summary=fields.get("summary", ""),
                    published=when,
                    updated=when,
                    authors=tuple(fields.get("authors", ())),
                    tags=tuple(fields.get("tags", ())),
                    language=fields.get("language") if variant == 0 else LANGUAGES[variant % 4],
                    dateline=Dateline(fields["dateline"]) if "dateline" in fields else None,
                    origin=Origin(source=source or "wire", title=fields.get("feed_title")),
                    content_hash=hashlib.sha256(identity.encode()).hexdigest(),
                )
            )
    return items


def _specs() -> list[TopicSpec]:
    lines = (DATA / "queries.txt").read_text("utf-8").splitlines()
    queries = dict.fromkeys(
        line.split(maxsplit=2)[2] for line in lines if line.strip() and not line.startswith("#")
    )
    scopes: list[dict[str, Any]] = [
        {},
        {"sources": ("iran-press", "wire")},
        {"lang": ("en",)},
        {"max_age": timedelta(days=20)},
        {},
    ]
    specs = [
        TopicSpec(name=f"q{i}", title="q", query=query, **scopes[i % len(scopes)])
        for i, query in enumerate(queries)
        if "topic:" not in query
    ]
    reusing = [
        TopicSpec(name="reuse-or", title="r", query="topic:q0 OR topic:q7"),
        TopicSpec(name="reuse-not", title="r", query="topic:reuse-or AND NOT topic:q3"),
        TopicSpec(name="reuse-age", title="r", query="topic:q1 AND age:<30d"),
    ]
    return specs + reusing


ITEMS = _items()
SPECS = _specs()


def _reference(items: list[Item], specs: list[TopicSpec]) -> list[frozenset[str]]:
    compiled = compile_topics(specs)
    return [
        frozenset(name for name, topic in compiled.items() if topic.matches(document(item), NOW))
        for item in items
    ]


def test_corpus_is_varied() -> None:
    # A comparison over a corpus where every answer is the same proves nothing.
    reference = _reference(ITEMS, SPECS)
    per_topic = {spec.name: sum(spec.name in names for names in reference) for spec in SPECS}
    assert len(ITEMS) >= 60 and len(SPECS) >= 100
    assert sum(0 < count < len(ITEMS) for count in per_topic.values()) >= len(SPECS) // 2
    assert len(set(reference)) >= len(ITEMS) // 3


def test_matching_many_answers_like_the_predicates() -> None:
    matchers = build_matchers(SPECS, clock=lambda: NOW)
    assert isinstance(matchers, TopicPredicates)
    names = [spec.name for spec in SPECS]
    one_by_one = [frozenset(n for n in names if matchers[n](item)) for item in ITEMS]
    assert matchers.matching_many(ITEMS, names) == one_by_one == _reference(ITEMS, SPECS)
    some = names[::3]
    assert matchers.matching_many(ITEMS, some) == [m & frozenset(some) for m in one_by_one]


def test_matching_in_worker_processes_answers_the_same() -> None:
    pool = CpuPool(2)
    try:
        pooled = build_matchers(SPECS, clock=lambda: NOW).in_pool(pool)
        items = ITEMS * 3  # enough to be sent to the workers
        assert len(items) >= POOL_MIN_ITEMS
        names = [spec.name for spec in SPECS]
        assert pooled.matching_many(items, names) == _reference(ITEMS, SPECS) * 3
        assert pool.processes and pool._executor is not None  # the workers did it
    finally:
        pool.close()


class _DeadPool:
    """A pool whose workers always die: the call must come back to the caller."""

    processes = True
    workers = 2

    def __init__(self) -> None:
        self.discarded: list[object] = []

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[_DeadPool]:
        yield self

    def submit(self, *args: object) -> None:
        raise BrokenProcessPool("a worker died")

    def discard(self, broken: object) -> None:
        self.discarded.append(broken)


def test_a_dead_worker_sends_the_matching_back_to_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = _DeadPool()
    pooled = build_matchers(SPECS, clock=lambda: NOW).in_pool(dead)  # type: ignore[arg-type]
    names = [spec.name for spec in SPECS]
    assert pooled.matching_many(ITEMS * 3, names) == _reference(ITEMS, SPECS) * 3
    assert dead.discarded == [dead]
    assert "a topic matching worker died; matching 216 stories here" in caplog.text


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLStore]:
    # Small chunks: the corpus spans many, and chunk edges are exercised.
    monkeypatch.setattr(store_topics, "SYNC_CHUNK", 7)
    s = open_store(store_url)
    yield s
    s.close()


def _memberships(store: SQLStore, specs: list[TopicSpec]) -> dict[str, set[str]]:
    return {
        spec.name: {story.item.identity for story in store.topic_stories(spec.name)}
        for spec in specs
    }


def _expected(store: SQLStore, specs: list[TopicSpec]) -> dict[str, set[str]]:
    # Stories, not items: variants whose texts the store merged are one story.
    stored = [story.item for story in store.stories()]
    assert len(stored) == len(ITEMS)
    reference = _reference(stored, specs)
    return {
        spec.name: {
            item.identity
            for item, names in zip(stored, reference, strict=True)
            if spec.name in names
        }
        for spec in specs
    }


def test_bulk_rematch_writes_the_memberships_of_one_by_one_matching(store: SQLStore) -> None:
    store.ingest(ITEMS, now=NOW, matchers={})
    bulk = build_matchers(SPECS, clock=lambda: NOW)
    assert store.sync_topics(topic_signatures(SPECS), bulk, now=NOW) == {s.name for s in SPECS}
    assert _memberships(store, SPECS) == _expected(store, SPECS)

    # Every query changes (the topics that reuse others keep theirs: what
    # they reuse changes under them). A plain mapping of predicates (no bulk matching)
    # diffs the old memberships into the new ones, one transaction per chunk.
    own = [spec for spec in SPECS if "topic:" not in spec.query]
    shifted = [replace(spec, query=own[(i + 1) % len(own)].query) for i, spec in enumerate(own)]
    shifted += SPECS[len(own) :]
    plain = dict(build_matchers(shifted, clock=lambda: NOW))
    store.sync_topics(topic_signatures(shifted), plain, now=NOW + timedelta(hours=1))
    assert _memberships(store, shifted) == _expected(store, shifted)

    # And back, in bulk again: removals and additions of the diff both happen.
    store.sync_topics(topic_signatures(SPECS), bulk, now=NOW + timedelta(hours=2))
    assert _memberships(store, SPECS) == _expected(store, SPECS)


def _match_times(store: SQLStore, topic: str) -> dict[str, datetime]:
    query = (
        sa.select(stories.c.canonical_identity, story_topics.c.matched_at)
        .join(stories, stories.c.id == story_topics.c.story_id)
        .where(story_topics.c.topic == topic)
    )
    with store.db.read() as conn:
        return {row.canonical_identity: row.matched_at for row in conn.execute(query)}


def test_memberships_that_stay_keep_their_match_time(store: SQLStore) -> None:
    store.ingest(ITEMS, now=NOW, matchers={})
    first = [TopicSpec(name="k", title="k", query="karabakh")]
    store.sync_topics(topic_signatures(first), build_matchers(first, clock=lambda: NOW), now=NOW)
    widened = [TopicSpec(name="k", title="k", query="karabakh OR cafe")]
    later = NOW + timedelta(hours=1)
    store.sync_topics(
        topic_signatures(widened), build_matchers(widened, clock=lambda: NOW), now=later
    )
    kept = _expected(store, first)["k"]
    added = _expected(store, widened)["k"] - kept
    assert kept and added
    times = _match_times(store, "k")
    assert times == dict.fromkeys(kept, NOW) | dict.fromkeys(added, later)
