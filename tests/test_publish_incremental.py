"""Incremental publishing renders exactly what a full render does, and leaves full pages alone."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.model import Item, Origin, TopicSpec
from aggregator.publish import Site, TopicFeed, file_name, render_site
from aggregator.publish.export import Manifest
from aggregator.publish.incremental import PLAN_CHANGES, publish
from aggregator.store import SQLStore, open_store

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SITE = Site(base_url="http://127.0.0.1:8080/", title="Test site", hub=None)
WIRE = Origin(source="wire", title="Wire")
OTHER = Origin(source="other", title="Other outlet")


def _item(
    n: int, *, source: str = "wire", text: str | None = None, hours: int | None = None
) -> Item:
    when = T0 + timedelta(hours=n if hours is None else hours)
    body = text or (
        f"<p>Story number {n} tells of the talks in city {n} and their outcome {n * 7}.</p>"
    )
    return Item(
        source=source,
        identity=f"{source}-{n}",
        title=f"Story {n} <b>&</b> more",
        link=f"https://{source}.example.com/{n}",
        content_html=body,
        summary=f"Summary {n}",
        published=when,
        updated=when,
        origin=WIRE if source == "wire" else OTHER,
        tags=("world",),
        content_hash=f"{source}{n}{len(body)}",
    )


ALL = {"all": lambda item: True, "odd": lambda item: int(item.identity.rsplit("-", 1)[1]) % 2 == 1}
TOPICS = (
    TopicSpec(name="all", title="All", query="*", max_items=7),
    TopicSpec(name="odd", title="Odd", query="*", max_items=5, updates="resurface"),
    TopicSpec(
        name="secret", title="Secret", query="*", max_items=4, private=True, tokens=("t1", "t2")
    ),
)
MATCHERS = {**ALL, "secret": lambda item: True}


@pytest.fixture
def store(tmp_path: Path) -> SQLStore:
    s = open_store(f"sqlite:///{tmp_path / 'agg.db'}")
    yield s
    s.close()


def _full(store: SQLStore) -> dict[str, bytes]:
    feeds = [TopicFeed(t, tuple(store.topic_stories(t.name))) for t in TOPICS]
    return {file_name(d.path, d.content_type): d.body for d in render_site(SITE, feeds).values()}


def _exported(out: Path) -> dict[str, bytes]:
    files = {}
    for path in out.rglob("*"):
        name = path.relative_to(out).as_posix()
        # not the manifest, temp files (dot files) or the gzip copies
        if path.is_file() and not path.name.startswith(".") and not name.endswith(".gz"):
            files[name] = path.read_bytes()
    return files


def _check_gzip_copies(out: Path) -> None:
    for path in out.rglob("*.gz"):
        assert gzip.decompress(path.read_bytes()) == path.with_suffix("").read_bytes()


def test_incremental_renders_byte_for_byte_what_a_full_render_does(
    store: SQLStore, tmp_path: Path
) -> None:
    out = tmp_path / "public"
    step: Callable[[int], datetime] = lambda n: T0 + timedelta(days=1, minutes=n)  # noqa: E731
    # Stories arrive one by one; some late with old dates (they land in full
    # pages), some updated, one merged from a second source, one removed.
    dirty: set[str] = set()
    for n in range(1, 1001):
        hours = n if n % 97 else n // 3  # an old date: lands mid-archive
        reports = [store.ingest([_item(n, hours=hours)], now=step(n), matchers=MATCHERS)]
        if n % 150 == 0:
            rewritten = _item(n - 40, text=f"<p>Rewritten {n}</p>")
            reports.append(store.ingest([rewritten], now=step(n), matchers=MATCHERS))
        if n % 333 == 0:
            copy = _item(n - 3, source="other", hours=n - 3)
            reports.append(store.ingest([copy], now=step(n), matchers=MATCHERS))
        if n % 400 == 0:
            reports.append(store.remove_entries("wire", [f"wire-{n - 100}"], now=step(n)))
        for report in reports:
            dirty |= report.dirty_topics
        # compared after the first stories, after each rewrite, merge and removal
        # (150, 333, 400, ...: the next hundred), and at the end
        if n % 100 == 0 or n in (1, 2, 7, 8, 999, 1000):
            publish(out, SITE, TOPICS, store, dirty=dirty if n > 1 else None)
            dirty.clear()
            assert _exported(out) == _full(store), f"after story {n}"
    _check_gzip_copies(out)


def test_a_full_archive_page_is_never_rewritten(store: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "public"
    topic = (TopicSpec(name="all", title="All", query="*", max_items=10),)
    store.ingest([_item(n) for n in range(1, 31)], now=T0, matchers=ALL)
    first = publish(out, SITE, topic, store)
    page1 = out / "topics/all/archive/1.atom"
    page2 = out / "topics/all/archive/2.atom"
    before = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (page1, page1.with_name("1.atom.gz"))
    }
    assert first.rendered > 0
    for n in range(31, 61):
        report = store.ingest([_item(n)], now=T0 + timedelta(minutes=n), matchers=ALL)
        again = publish(out, SITE, topic, store, dirty=report.dirty_topics)
        # the head's four documents, the newest archive page (and the one it
        # starts when the newest fills up: RFC 5005 links a full page to its
        # successor at once), the index and the OPML
        assert again.rendered <= 8
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before}
    assert after == before
    assert page2.exists() and (out / "topics/all/archive/5.atom").exists()
    assert _exported(out) == _full_for(store, topic)


def _full_for(store: SQLStore, topics: tuple[TopicSpec, ...]) -> dict[str, bytes]:
    feeds = [TopicFeed(t, tuple(store.topic_stories(t.name))) for t in topics]
    return {file_name(d.path, d.content_type): d.body for d in render_site(SITE, feeds).values()}


def test_a_file_changed_behind_its_back_is_rendered_again(store: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "public"
    topic = (TopicSpec(name="all", title="All", query="*", max_items=10),)
    store.ingest([_item(n) for n in range(1, 31)], now=T0, matchers=ALL)
    publish(out, SITE, topic, store)
    page = out / "topics/all/archive/1.atom"
    good = page.read_bytes()
    page.write_bytes(b"half a docu")
    publish(out, SITE, topic, store, dirty=())
    assert page.read_bytes() == good


def test_a_crash_before_the_manifest_leaves_an_export_the_next_publish_completes(
    store: SQLStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "public"
    topic = (TopicSpec(name="all", title="All", query="*", max_items=10),)
    store.ingest([_item(n) for n in range(1, 31)], now=T0, matchers=ALL)
    publish(out, SITE, topic, store)
    store.ingest([_item(n) for n in range(31, 45)], now=T0, matchers=ALL)

    def crash(self: Manifest, out_dir: Path) -> None:
        raise KeyboardInterrupt  # killed between the files and the manifest

    monkeypatch.setattr(Manifest, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        publish(out, SITE, topic, store, dirty={"all"})
    monkeypatch.undo()
    # Every file on disk is whole (each was renamed into place)...
    assert not list(out.rglob(".aggregator-tmp-*"))
    (out / "topics" / ".aggregator-tmp-killed").write_bytes(b"half")  # as a kill -9 leaves it
    publish(out, SITE, topic, store, dirty=())
    # ... and the next publish, even one told nothing changed, completes the export;
    # the next start (a publish of every topic) removes what a kill left.
    assert _exported(out) == _full_for(store, topic)
    publish(out, SITE, topic, store)
    assert not list(out.rglob(".aggregator-tmp-*"))
    assert all(os.path.exists(out / f) for f in Manifest.read(out).files)


def test_a_changed_topic_setting_renders_the_topic_again(store: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "public"
    topic = TopicSpec(name="all", title="All", query="*", max_items=10)
    store.ingest([_item(n) for n in range(1, 31)], now=T0, matchers=ALL)
    publish(out, SITE, (topic,), store)
    retitled = replace(topic, title="Everything")
    publish(out, SITE, (retitled,), store, dirty=())
    assert _exported(out) == _full_for(store, (retitled,))
    smaller = replace(retitled, max_items=4)
    publish(out, SITE, (smaller,), store, dirty=())
    assert _exported(out) == _full_for(store, (smaller,))
    assert not (out / "topics/all/archive/8.atom").exists()


class _Recording:
    """The store as publishing reads it, noting which reads of a topic's order it made."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def stories(self, ids: object = None) -> object:
        return self.store.stories(ids)  # type: ignore[arg-type]

    @contextmanager
    def topic_view(self, topic: str) -> Iterator[object]:
        calls = self.calls

        class View:
            def __init__(self, inner: object) -> None:
                self.inner = inner

            def __getattr__(self, name: str) -> object:
                method = getattr(self.inner, name)

                def call(*args: object, **kwargs: object) -> object:
                    calls.append((name, args))
                    return method(*args, **kwargs)

                return call

        with self.store.topic_view(topic) as view:
            yield View(view)


def test_a_publish_reads_what_changed_not_the_whole_topic(store: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "public"
    topic = (TopicSpec(name="all", title="All", query="*", max_items=10),)
    store.ingest([_item(n) for n in range(1, 96)], now=T0, matchers=ALL)
    reader = _Recording(store)
    publish(out, SITE, topic, reader, dirty={"all"})  # type: ignore[arg-type]
    assert [name for name, _ in reader.calls].count("outline") == 1  # no stamp yet: read whole

    def again(report_dirty: frozenset[str]) -> int:
        reader.calls.clear()
        report = publish(out, SITE, topic, reader, dirty=report_dirty)  # type: ignore[arg-type]
        assert _exported(out) == _full_for(store, topic)
        return report.rendered

    page = {n: out / f"topics/all/archive/{n}.atom" for n in range(1, 10)}
    stat = {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in page.items() if p.exists()}

    # One new story: the head and the newest archive page, nothing read whole.
    report = store.ingest([_item(96)], now=T0 + timedelta(minutes=1), matchers=ALL)
    rendered = again(report.dirty_topics)
    names = [name for name, _ in reader.calls]
    assert "outline" not in names
    assert names.count("slice") == 2  # the head, the newest archive page
    assert rendered == 4 + 1 + 2  # the head's formats, one archive page, index and OPML

    # An old story changes: its page is rendered again, the pages around it are not.
    rewritten = _item(15, text="<p>Rewritten: the talks ended without an agreement.</p>")
    report = store.ingest([rewritten], now=T0 + timedelta(minutes=2), matchers=ALL)
    again(report.dirty_topics)
    assert "outline" not in [name for name, _ in reader.calls]
    assert (page[2].stat().st_ino, page[2].stat().st_mtime_ns) != stat[2]
    for n in (1, 3, 4, 5, 6, 7):
        assert (page[n].stat().st_ino, page[n].stat().st_mtime_ns) == stat[n], n

    # A story with an old date joins (beside story 40, on page 4 or 5): every
    # page from its place up moves, the pages below it do not.
    stat = {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in page.items() if p.exists()}
    report = store.ingest([_item(97, hours=40)], now=T0 + timedelta(minutes=3), matchers=ALL)
    again(report.dirty_topics)
    assert "outline" not in [name for name, _ in reader.calls]
    for n in (1, 2, 3):
        assert (page[n].stat().st_ino, page[n].stat().st_mtime_ns) == stat[n], n
    for n in (5, 6, 7, 8):
        assert (page[n].stat().st_ino, page[n].stat().st_mtime_ns) != stat[n], n

    # A story leaves: nothing records where, so the topic is read whole.
    report = store.remove_entries("wire", ["wire-50"], now=T0 + timedelta(minutes=4))
    again(report.dirty_topics)
    assert "outline" in [name for name, _ in reader.calls]


def test_after_many_changes_a_publish_reads_the_topics_order_once(
    store: SQLStore, tmp_path: Path
) -> None:
    """Ranking each of many changed stories with a count was quadratic in the topic's size."""
    out = tmp_path / "public"
    topic = (TopicSpec(name="all", title="All", query="*", max_items=10),)
    store.ingest([_item(n) for n in range(1, 31)], now=T0, matchers=ALL)
    publish(out, SITE, topic, store, dirty={"all"})
    reader = _Recording(store)
    stories = [_item(n, hours=n % 40) for n in range(31, 32 + PLAN_CHANGES)]
    report = store.ingest(stories, now=T0 + timedelta(minutes=1), matchers=ALL)
    publish(out, SITE, topic, reader, dirty=report.dirty_topics)  # type: ignore[arg-type]
    names = [name for name, _ in reader.calls]
    assert names.count("outline") == 1 and "newer_than" not in names
    assert _exported(out) == _full_for(store, topic)

    # A few changes are still ranked one by one.
    reader.calls.clear()
    report = store.ingest([_item(200)], now=T0 + timedelta(minutes=2), matchers=ALL)
    publish(out, SITE, topic, reader, dirty=report.dirty_topics)  # type: ignore[arg-type]
    names = [name for name, _ in reader.calls]
    assert "outline" not in names and names.count("newer_than") == 1
    assert _exported(out) == _full_for(store, topic)
