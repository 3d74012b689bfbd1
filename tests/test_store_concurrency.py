"""Several writers on one PostgreSQL store: dedup as one writer would decide, no global lock.

Each batch locks only the keys its items decide on (``store.writes.lock_keys``)
and holds the store's lock shared; the change stamp is the transaction id
(``store.stamps``), so a reader never records a stamp above one still running.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.model import Item, NearDupSettings
from aggregator.store import SourceWrite, SQLStore, open_store, stamps
from aggregator.store.database import KEY_LOCK_CLASS
from aggregator.store.schema import entries, stories
from aggregator.store.writes import lock_keys, pending

from .conftest import pg_database
from .factories import T0, make_item

pytestmark = pytest.mark.postgres

MATCHERS = {"all": lambda item: True}
NEWS = "https://news.example"
#: a generous deadline for any one step on a busy 2-core machine
DEADLINE = 120.0
WORDS = [
    "negotiators",
    "from",
    "both",
    "sides",
    "met",
    "on",
    "monday",
    "in",
    "geneva",
    "to",
    "discuss",
    "the",
    "future",
    "of",
    "the",
    "mountain",
    "region",
    "its",
    "roads",
    "its",
    "schools",
    "and",
    "the",
    "return",
    "of",
    "families",
    "who",
    "left",
    "during",
    "the",
    "fighting",
    "of",
    "the",
    "last",
    "winter",
    "according",
    "to",
    "officials",
]


@pytest.fixture
def two_stores() -> Iterator[tuple[SQLStore, SQLStore]]:
    """Two stores (two engines, as two worker processes have) on one new PostgreSQL database."""
    with pg_database() as url:
        first = open_store(url, near=NearDupSettings())
        second = open_store(url, near=NearDupSettings())
        try:
            yield first, second
        finally:
            first.close()
            second.close()


def _story_item(n: int, source: str, kind: str) -> Item:
    """Round ``n``'s telling by ``source``: the two share a link, a text, or a near text."""
    # Each round's text is its own shuffle of the words: no near duplicate of another round's.
    words = list(WORDS)
    random.Random(n).shuffle(words)
    body = " ".join(words)
    if kind == "link":
        # Different texts, one link.
        text = body if source == "a" else f"Report number {n} from the other wire."
        return make_item(
            f"{source}-{n}", source=source, link=f"https://news.example/{n}", body=text
        )
    if kind == "text":
        return make_item(
            f"{source}-{n}", source=source, link=f"https://{source}.example/{n}", body=body
        )
    # near: one word more in one of them, different links
    text = body + (" today" if source == "b" else "")
    return make_item(
        f"{source}-{n}", source=source, link=f"https://{source}.example/{n}", body=text
    )


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; return their results (re-raising a failure)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(DEADLINE)
            results[i] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a writer did not finish"
    if errors:
        raise errors[0]
    return results


def _counts(store: SQLStore) -> tuple[int, int, dict[str, int]]:
    with store.engine.connect() as conn:
        story_count = conn.execute(sa.select(sa.func.count()).select_from(stories)).scalar_one()
        entry_count = conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one()
        per_story = dict(
            conn.execute(
                sa.select(entries.c.story_id, sa.func.count()).group_by(entries.c.story_id)
            ).all()
        )
    return int(story_count), int(entry_count), {k: int(v) for k, v in per_story.items()}


def test_two_writers_ingest_one_story_from_two_sources_at_once(
    two_stores: tuple[SQLStore, SQLStore],
) -> None:
    first, second = two_stores
    rounds = 45
    for n in range(rounds):
        kind = ("link", "text", "near")[n % 3]
        writes = [
            (store, SourceWrite(source, items=(_story_item(n, source, kind),)))
            for store, source in ((first, "a"), (second, "b"))
        ]
        reports = _at_once(
            [
                lambda s=store, w=write: s.apply([w], now=T0, matchers=MATCHERS)
                for store, write in writes
            ]
        )
        # One of them started the story, the other joined it, whichever came first.
        decided = sorted((r[0].new, r[0].merged) for r in reports)
        assert decided == [(0, 1), (1, 0)], (n, kind, reports)
        story_count, entry_count, per_story = _counts(first)
        assert (story_count, entry_count) == (n + 1, 2 * (n + 1)), (n, kind)
        assert sorted(per_story.values()) == [2] * (n + 1), (n, kind)


def _waiting_on_key_locks(store: SQLStore) -> int:
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid = :cls AND database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())"
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query, {"cls": KEY_LOCK_CLASS}).scalar_one())


def _wait_for(check: Callable[[], bool], what: str) -> None:
    event = threading.Event()
    for _ in range(int(DEADLINE * 20)):
        if check():
            return
        event.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_writer_waits_only_for_a_batch_sharing_its_keys(
    two_stores: tuple[SQLStore, SQLStore],
) -> None:
    first, second = two_stores
    held = make_item("a-1", source="a", link="https://news.example/held")
    unrelated = make_item(
        "b-1", source="b", link="https://news.example/other", body="A different story."
    )
    sharing = make_item("b-2", source="b", link="https://news.example/held", body="Same link.")
    keys = lock_keys(pending(SourceWrite("a", items=(held,)), first.near))
    with ExitStack() as stack:
        # The first writer's transaction holds its keys' locks, and stays open.
        conn = stack.enter_context(first.db.write(keys=keys))
        unrelated_done = threading.Thread(
            target=second.apply,
            args=([SourceWrite("b", items=(unrelated,))],),
            kwargs={"now": T0, "matchers": MATCHERS},
        )
        unrelated_done.start()
        unrelated_done.join(DEADLINE)
        assert not unrelated_done.is_alive(), "an unrelated batch waited for an open one"
        blocked = threading.Thread(
            target=second.apply,
            args=([SourceWrite("b", items=(sharing,))],),
            kwargs={"now": T0, "matchers": MATCHERS},
        )
        blocked.start()
        _wait_for(lambda: _waiting_on_key_locks(second) > 0, "the sharing batch to wait")
        assert blocked.is_alive()
        # The first writer stores its entry and commits: the waiting batch then joins it.
        from aggregator.store import batch

        batch.apply(
            conn,
            [SourceWrite("a", items=(held,))],
            [pending(SourceWrite("a", items=(held,)), first.near)],
            now=T0,
            matchers=MATCHERS,
            near=first.near,
            shared=True,
        )
    blocked.join(DEADLINE)
    assert not blocked.is_alive()
    story_count, entry_count, per_story = _counts(first)
    assert (story_count, entry_count) == (2, 3)
    assert sorted(per_story.values()) == [1, 2]


def test_a_reader_never_records_a_stamp_above_a_running_writer(
    two_stores: tuple[SQLStore, SQLStore],
) -> None:
    first, second = two_stores
    old = make_item("a-1", source="a", link="https://news.example/old", body="An old story.")
    first.apply([SourceWrite("a", items=(old,))], now=T0, matchers=MATCHERS)
    with first.topic_view("all") as view:
        before = view.stamp()
    [old_id] = first.story_ids()
    with ExitStack() as stack:
        # A writer takes its stamp and changes a story, and has not committed yet...
        conn = stack.enter_context(first.db.write(keys=[]))
        early = stamps.stamp(conn)
        conn.execute(stories.update().where(stories.c.id == old_id).values(version=early))
        # ... while a later writer commits a new story, with a later stamp.
        new = make_item("b-1", source="b", link="https://news.example/new", body="A new story.")
        second.apply([SourceWrite("b", items=(new,))], now=T0, matchers=MATCHERS)
        with second.topic_view("all") as view:
            during = view.stamp()
            seen = {change.id for change in view.changes(before)}
        # The reader sees the later commit, but records a stamp below the running writer's.
        # (A transaction running anywhere in the cluster may hold it lower still: then
        # more is read again next time, never less.)
        [new_id] = set(first.story_ids()) - {old_id}
        assert new_id in seen
        assert before <= during < early
    # The early writer committed: reading since the recorded stamp finds its change.
    with second.topic_view("all") as view:
        after = view.stamp()
        seen = {change.id for change in view.changes(during)}
    assert after >= early
    assert old_id in seen
