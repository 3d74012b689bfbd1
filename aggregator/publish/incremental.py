"""Incremental publishing: render what changed, keep every page that did not.

A topic's documents split in two:

* the **head**: the subscription feed in each format and the HTML page. Every
  change to the topic re-renders these (they hold its newest stories).
* the RFC 5005 **archive pages**, filled from the oldest story up
  (:func:`~aggregator.publish.paginate`). A page is rendered from its
  stories' ids and versions, its number and whether a newer page follows;
  those make its *fingerprint*, recorded in the export's manifest. A page
  whose fingerprint is unchanged, and whose file is the one the manifest
  describes, is neither rendered nor written: a full page never changes
  while its stories stay, so a new story costs the head and at most the
  newest archive page.

The fingerprints come from the store's outline of the topic (ids and
versions in published order, no texts); texts are read only for the
documents rendered, a few hundred stories at a time. The output is byte for
byte what :func:`~aggregator.publish.render_site` renders for the same
stories (``tests/test_publish_incremental.py``).

The index and the OPML are rendered on every publish from each topic's
summary (its count, newest date and archive pages): the topics not touched
keep the summary the manifest recorded.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from aggregator.errors import PublishError
from aggregator.model import Story, TopicChange, TopicOutline, TopicSpec
from aggregator.publish._base import (
    Page,
    Site,
    TopicSummary,
    TopicUrls,
    archive_count,
    check_token,
)
from aggregator.publish.export import DocumentFile, Export, PublishReport, TopicRecord
from aggregator.publish.paths import private_prefix, topic_of
from aggregator.publish.render import render_archive_page, render_head, render_site_pages

__all__ = [
    "RENDER_VERSION",
    "PublishReport",
    "StoryReader",
    "publish",
    "topic_signature",
]

log = logging.getLogger(__name__)

#: bumped whenever a renderer's output changes for the same stories, so
#: fingerprints recorded by an older release do not keep its pages
RENDER_VERSION = "1"

#: stories read from the store per round while rendering archive pages
LOAD_CHUNK = 500

#: A plan from the changes since the last publish ranks each changed story
#: with a count over the topic's order and reads each changed page's ids (an
#: offset into that order): after a big ingest (every story changed) that was
#: quadratic in the topic's size, 12 s for one topic of 13,600 stories and
#: minutes at 50,000, all in one read snapshot that kept SQLite's log from
#: being checkpointed. Past these many changes or changed pages, the plan reads
#: the topic's whole order once instead (0.05 s at 13,600); pages that did not
#: change still keep their files, by fingerprint.
PLAN_CHANGES = 64
PLAN_PAGES = 16


class TopicReading(Protocol):
    """One topic's order as publishing reads it, every read from one state of the store."""

    def stamp(self) -> int: ...

    def count(self) -> int: ...

    def changes(self, since: int) -> list[TopicChange]: ...

    def newer_than(self, published: datetime, story_id: str) -> int: ...

    def slice(self, start: int, stop: int) -> tuple[tuple[str, ...], tuple[int, ...]]: ...

    def outline(self, *, resurface: bool = False) -> TopicOutline: ...


class StoryReader(Protocol):
    """What publishing reads from the store."""

    def topic_view(self, topic: str) -> AbstractContextManager[TopicReading]: ...

    def stories(self, ids: Sequence[str] | None = None) -> Iterator[Story]: ...


@functools.cache
def _renderer_fingerprint() -> str:
    """The archive pages' renderer: its modules' source and the libraries it drives.

    Part of every page's fingerprint, so an upgrade that renders a page
    differently renders it again once, even if nobody bumped
    :data:`RENDER_VERSION`.
    """
    from importlib.metadata import PackageNotFoundError, version

    from aggregator.publish import _base, atom, paths

    parts = [RENDER_VERSION]
    for module in (_base, atom, paths):
        parts.append(hashlib.blake2b(Path(str(module.__file__)).read_bytes()).hexdigest())
    for library in ("feedgen", "lxml"):
        try:
            parts.append(version(library))
        except PackageNotFoundError:
            parts.append("-")
    return "/".join(parts)


def topic_signature(site: Site, topic: TopicSpec) -> str:
    """A fingerprint of everything besides its stories that a topic's documents show."""
    shown = (
        topic.name,
        topic.title,
        topic.description,
        topic.max_items,
        topic.private,
        topic.tokens,
        topic.updates,
    )
    return _digest(f"{_renderer_fingerprint()}\0{site!r}\0{shown!r}")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _copies(topic: TopicSpec) -> list[tuple[str, bool]]:
    """``(path prefix, public)`` of each rendering of a topic.

    Raises:
        PublishError: a private topic without a token, or with one unusable in a path.
    """
    if not topic.private:
        return [("", True)]
    if not topic.tokens:
        raise PublishError(f"topic {topic.name!r}: private topic without any token")
    copies = []
    for token in topic.tokens:
        try:
            check_token(topic.name, token)
        except ValueError as exc:
            raise PublishError(str(exc)) from exc
        copies.append((private_prefix(token), False))
    return copies


@dataclass(frozen=True, slots=True)
class _ArchivePage:
    number: int
    #: newest first, as the page lists them
    ids: tuple[str, ...]
    fp: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one publish of a topic renders, read from one state of the store."""

    stamp: int
    count: int
    updated: datetime | None
    head: tuple[str, ...]
    #: archive pages, by number: what each holds now, or None when it holds
    #: what the last export rendered (keep its files if they are intact)
    pages: dict[int, _ArchivePage | None]


def _page_fp(
    signature: str, number: int, count: int, ids: tuple[str, ...], versions: tuple[int, ...]
) -> str:
    # repr of the two tuples: one C-level pass over the page's ids and versions
    shown = repr((ids, versions))
    return _digest(f"{signature}\0{number}\0{number < count}\0{shown}")


def _page_span(number: int, total: int, size: int) -> tuple[int, int]:
    """Positions (newest first) of archive page ``number``'s stories in a topic of ``total``.

    :func:`~aggregator.publish.paginate` fills pages from the oldest story
    up, and the newest ``size`` stories are the head's: page ``n`` holds the
    stories ranked ``(n - 1) * size`` to ``n * size`` from the oldest.
    """
    end = total - (number - 1) * size
    return max(size, end - size), end


def _read_page(
    view: TopicReading, number: int, count: int, total: int, size: int, signature: str
) -> _ArchivePage:
    """Archive page ``number`` of ``count``, read from the store: its ids and fingerprint."""
    start, end = _page_span(number, total, size)
    ids, versions = view.slice(start, end)
    return _ArchivePage(number, ids, _page_fp(signature, number, count, ids, versions))


def _full_plan(view: TopicReading, topic: TopicSpec, size: int, signature: str) -> _Plan:
    outline = view.outline(resurface=topic.updates == "resurface")
    ids, versions = outline.ids, outline.versions
    count = archive_count(len(ids), size)
    pages: dict[int, _ArchivePage | None] = {}
    for number in range(1, count + 1):
        start, end = _page_span(number, len(ids), size)
        page_ids = ids[start:end]
        fp = _page_fp(signature, number, count, page_ids, versions[start:end])
        pages[number] = _ArchivePage(number, page_ids, fp)
    return _Plan(0, len(ids), outline.updated, ids[:size], pages)


def _changes_plan(
    view: TopicReading, record: TopicRecord, since: int, size: int, signature: str
) -> _Plan | None:
    """The pages the changes since stamp ``since`` touched; None when only a full read can tell,
    or costs less (:data:`PLAN_CHANGES`, :data:`PLAN_PAGES`).

    Stories never move in published order (``published`` never changes), so
    between two publishes a page changes only when one of its stories
    changed, or a story joined at or below it (every page above shifts), or
    it was the newest archive page and the topic grew. A story that left
    shifts pages too, from a place no row records: the count tells, and then
    the topic is read whole.
    """
    total = view.count()
    changes = view.changes(since)
    if len(changes) > PLAN_CHANGES:
        return None
    joined = sum(1 for change in changes if change.joined)
    if total != record.count + joined:
        return None
    count = archive_count(total, size)
    dirty: set[int] = set()
    # Joining moves every page from its place up, and the newest archive
    # page (and its "next" link) changes whenever the topic grows.
    lowest = record.count - size - 1 if joined else None
    for change in changes:
        rank = total - 1 - view.newer_than(change.published, change.id)
        if change.joined:
            lowest = rank if lowest is None else min(lowest, rank)
        elif rank < total - size:
            dirty.add(rank // size + 1)
    if lowest is not None:
        dirty.update(range(max(0, lowest) // size + 1, count + 1))
    if len(dirty) > PLAN_PAGES:
        return None
    pages: dict[int, _ArchivePage | None] = {}
    for number in range(1, count + 1):
        if number not in dirty:
            pages[number] = None
            continue
        pages[number] = _read_page(view, number, count, total, size, signature)
    dates = [change.updated for change in changes]
    if record.updated is not None:
        dates.append(record.updated)
    head, _ = view.slice(0, size)
    return _Plan(0, total, max(dates, default=None), head, pages)


def _plan(
    reader: StoryReader,
    export: Export,
    topic: TopicSpec,
    record: TopicRecord | None,
    size: int,
    signature: str,
    copies: list[tuple[str, bool]],
) -> _Plan:
    """What to render of a topic: from what changed since its last publish when that is known."""
    with reader.topic_view(topic.name) as view:
        stamp = view.stamp()
        plan = None
        if (
            record is not None
            and record.stamp is not None
            and record.signature == signature
            and topic.updates != "resurface"
        ):
            plan = _changes_plan(view, record, record.stamp, size, signature)
            if plan is not None:
                plan = _with_lost_pages(view, export, topic, plan, size, signature, copies)
        if plan is None:
            plan = _full_plan(view, topic, size, signature)
    return dataclasses.replace(plan, stamp=stamp)


def _with_lost_pages(
    view: TopicReading,
    export: Export,
    topic: TopicSpec,
    plan: _Plan,
    size: int,
    signature: str,
    copies: list[tuple[str, bool]],
) -> _Plan:
    """The plan, with the unchanged pages whose files are not what the manifest says read again."""
    count = len(plan.pages)
    pages = dict(plan.pages)
    urls = [TopicUrls("", topic.name, prefix) for prefix, _ in copies]
    documents = export.previous.documents
    for number, page in plan.pages.items():
        if page is not None:
            continue
        entries = [documents.get(u.archive_path(number)) for u in urls]
        if all(entry is not None and export.intact(entry) for entry in entries):
            continue
        pages[number] = _read_page(view, number, count, plan.count, size, signature)
    return dataclasses.replace(plan, pages=pages)


def _batches(pages: Sequence[_ArchivePage]) -> Iterator[list[_ArchivePage]]:
    """Pages in runs of about :data:`LOAD_CHUNK` stories, read from the store together."""
    batch: list[_ArchivePage] = []
    held = 0
    for page in pages:
        batch.append(page)
        held += len(page.ids)
        if held >= LOAD_CHUNK:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _load(reader: StoryReader, ids: Iterable[str]) -> dict[str, Story]:
    wanted = list(dict.fromkeys(ids))
    return {story.id: story for story in reader.stories(wanted)} if wanted else {}


def _publish_topic(
    export: Export,
    site: Site,
    topic: TopicSpec,
    reader: StoryReader,
    signature: str,
    record: TopicRecord | None,
) -> tuple[TopicRecord, int, int]:
    """Render one topic's changed documents into ``export``; return its record and counts.

    Raises:
        PublishError: the topic cannot be rendered.
    """
    copies = _copies(topic)
    size = max(1, topic.max_items)
    plan = _plan(reader, export, topic, record, size, signature, copies)
    count = len(plan.pages)
    summary = TopicSummary(topic, plan.count, plan.updated, count)
    rendered = kept = 0
    stale: list[_ArchivePage] = []
    for number, page in plan.pages.items():
        paths = [TopicUrls("", topic.name, prefix).archive_path(number) for prefix, _ in copies]
        if page is None:
            # Unchanged since the last export, its files checked intact.
            current = [export.previous.documents.get(path) for path in paths]
        else:
            current = [export.current(path, page.fp) for path in paths]
        if all(entry is not None for entry in current):
            for entry in current:
                export.keep(entry)  # type: ignore[arg-type]
            kept += len(current)
        elif page is not None:
            stale.append(page)
    # Texts are read a chunk of pages at a time: a topic rendered for the
    # first time never holds all of its stories at once.
    for batch in _batches(stale):
        stories = _load(reader, (i for p in batch for i in p.ids))
        for page in batch:
            shown = Page(tuple(stories[i] for i in page.ids if i in stories), page.number, count)
            for prefix, public in copies:
                urls = TopicUrls(site.base_url, topic.name, prefix)
                export.write(render_archive_page(site, topic, urls, shown, public=public), page.fp)
                rendered += 1
        del stories
    stories = _load(reader, plan.head)
    head = Page(tuple(stories[i] for i in plan.head if i in stories), 0, count)
    for prefix, public in copies:
        urls = TopicUrls(site.base_url, topic.name, prefix)
        for doc in render_head(site, summary, urls, head, public=public):
            export.write(doc)
            rendered += 1
    return TopicRecord(signature, summary.count, summary.updated, count, plan.stamp), rendered, kept


def publish(
    out_dir: Path,
    site: Site,
    topics: Sequence[TopicSpec],
    reader: StoryReader,
    *,
    dirty: Collection[str] | None = None,
) -> PublishReport:
    """Bring the export in ``out_dir`` up to date with the store, rendering only what changed.

    Args:
        out_dir: the export folder (its manifest says what is there).
        site: site-wide facts.
        topics: every configured topic, in listing order.
        reader: the store.
        dirty: topics whose stories may have changed; None: every topic. A
            topic new to the export, or whose settings changed, renders
            whatever this says.

    Returns:
        The report, with every document now published.

    Raises:
        PublishError: two topics share a name, the export cannot be written,
            or its manifest is unusable. One topic that fails to render keeps
            its last good documents and is reported in ``errors``.
    """
    names = [t.name for t in topics]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PublishError(f"topics: duplicate topic names: {', '.join(dupes)}")
    export = Export(out_dir)
    if dirty is None:
        for swept in export.sweep():
            log.info("%s: removed %s, left by an export that was cut short", out_dir, swept)
    previous = export.previous
    by_topic: dict[str, list[DocumentFile]] = {}
    for path, entry in previous.documents.items():
        owner = topic_of(path)
        if owner is not None:
            by_topic.setdefault(owner, []).append(entry)
    summaries: list[TopicSummary] = []
    done: list[str] = []
    errors: list[str] = []
    failed: list[str] = []
    rendered = kept = 0
    for topic in topics:
        signature = topic_signature(site, topic)
        record = previous.topics.get(topic.name)
        fresh = record is not None and record.signature == signature
        if fresh and dirty is not None and topic.name not in dirty:
            olds = by_topic.get(topic.name, [])
            if all(export.intact(entry) for entry in olds):
                for entry in olds:
                    export.keep(entry)
                export.manifest.topics[topic.name] = record  # type: ignore[assignment]
                summaries.append(_summary(topic, record))  # type: ignore[arg-type]
                continue
        try:
            record, made, held = _publish_topic(export, site, topic, reader, signature, record)
        except PublishError as exc:
            errors.append(str(exc))
            failed.append(topic.name)
        except Exception as exc:  # any renderer bug is this topic's failure alone
            errors.append(f"topic {topic.name!r}: cannot render: {exc}")
            failed.append(topic.name)
        else:
            export.manifest.topics[topic.name] = record
            summaries.append(_summary(topic, record))
            done.append(topic.name)
            rendered += made
            kept += held
            continue
        # A failed topic keeps its last good documents (their files stay).
        for entry in by_topic.get(topic.name, []):
            if export.intact(entry):
                export.keep(entry)
        if record is not None:
            export.manifest.topics[topic.name] = record
            summaries.append(_summary(topic, record))
        else:
            summaries.append(TopicSummary(topic, 0, None, 0))
    for doc in render_site_pages(site, summaries).values():
        export.write(doc)
        rendered += 1
    files = export.finish()
    for line in errors:
        log.error("%s", line)
    return PublishReport(
        documents=dict(export.manifest.documents),
        topics=tuple(done),
        rendered=rendered,
        kept=kept,
        files=files,
        errors=tuple(errors),
        failed=tuple(failed),
    )


def _summary(topic: TopicSpec, record: TopicRecord) -> TopicSummary:
    return TopicSummary(topic, record.count, record.updated, record.archive_count)
