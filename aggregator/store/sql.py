"""The SQL store: one implementation for SQLite and PostgreSQL, composed of one part per concern.

* :mod:`~aggregator.store.sources`: configured sources and their fetch state;
* :mod:`~aggregator.store.files`: seed-file records;
* :mod:`~aggregator.store.polls`: the poll history;
* :mod:`~aggregator.store.entries`: entries and stories (ingest, removal, tombstones, provenance);
* :mod:`~aggregator.store.topics` and :mod:`~aggregator.store.membership`: topics.

Each part owns its tables; a write that spans parts (seed files with their
entries) runs their connection-level functions in one transaction here.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from aggregator.model import (
    Item,
    NearDupSettings,
    Poll,
    RuleDrop,
    SourceSpec,
    SourceState,
    Story,
    utc,
)
from aggregator.store import writer
from aggregator.store.database import Database
from aggregator.store.desk import RebuildReport, StoryDesk, enforce
from aggregator.store.entries import Entries
from aggregator.store.files import SeedFiles
from aggregator.store.push import PushState
from aggregator.store.sources import Sources
from aggregator.store.topics import Topics, TopicView
from aggregator.store.values import (
    FileChange,
    FileRecord,
    IngestReport,
    RuleJudge,
    RuleStats,
    TopicMatchers,
    TopicOutline,
)
from aggregator.store.writer import SourceWrite

__all__ = ["SQLStore", "open_store"]


def open_store(url: str, *, near: NearDupSettings | None = None) -> SQLStore:
    """Open (and migrate) the store at a SQLAlchemy URL.

    Args:
        url: ``sqlite:///path/to/file.db``, ``sqlite://`` (in memory) or
            ``postgresql+psycopg://...``.
        near: near-duplicate settings (the ``dedup:`` config section).

    Returns:
        The store; it satisfies :class:`~aggregator.store.api.Store`.

    Raises:
        StoreError: the database cannot be opened or migrated.
    """
    return SQLStore(Database.open(url), near=near)


class SQLStore:
    """The store. Thread-safe through SQLAlchemy's pool; one write at a time on SQLite.

    On PostgreSQL batches of unrelated stories write at once (:mod:`.writer`)."""

    def __init__(self, db: Database, *, near: NearDupSettings | None = None) -> None:
        self.db = db
        #: near-duplicate matching settings
        self.near = near or NearDupSettings()
        self.sources = Sources(db)
        self.files = SeedFiles(db)
        self.entries = Entries(db, near=self.near)
        self.topics = Topics(db)
        #: the poll history (part of the sources)
        self.polls = self.sources.polls
        #: WebSub subscriptions and webhook deliveries
        self.push = PushState(db)
        #: the sources' rules log (part of the sources)
        self.rules = self.sources.rules
        self.desk = StoryDesk(db, self.near)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (tests and benchmarks look at the tables directly)."""
        return self.db.engine

    def close(self) -> None:
        """Release the connections."""
        self.db.close()

    # -- sources and their state ------------------------------------------

    def sync_sources(self, specs: Sequence[SourceSpec], *, now: datetime) -> IngestReport:
        """Make the stored sources match the config.

        New sources get a state row; a source whose configured location
        changed starts over at the new location; a removed source's entries
        are removed (its stories leave the topic feeds).
        """
        return self.sources.sync_sources(specs, now=now)

    def get_state(self, name: str) -> SourceState | None:
        """A source's fetch state; None for a source not in the store."""
        return self.sources.get_state(name)

    def states(self) -> list[SourceState]:
        """Every source's fetch state, by name."""
        return self.sources.states()

    def save_state(self, state: SourceState) -> None:
        """Save a source's fetch state; this releases the source's claim."""
        self.sources.save_state(state)

    def due_sources(self, now: datetime) -> list[str]:
        """Names of sources due at ``now`` (never polled, or next_due_at passed), soonest first."""
        return self.sources.due_sources(now)

    def enable_source(self, name: str) -> bool:
        """Bring a source put to rest back; see :meth:`Sources.enable_source`."""
        return self.sources.enable_source(name)

    def keep_stories(self, name: str, keep: bool = True) -> bool:
        """Keep a source's entries when the config drops it; see :meth:`Sources.keep_stories`."""
        return self.sources.keep_stories(name, keep)

    def record_drops(self, source: str, drops: Sequence[RuleDrop], *, now: datetime) -> None:
        """Count what a source's rules dropped; see :class:`SourceRulesLog`."""
        self.rules.record_drops(source, drops, now=now)

    def rule_stats(self) -> dict[str, RuleStats]:
        """What each source's rules dropped since they last changed."""
        return self.rules.rule_stats()

    def sync_rules(
        self,
        signatures: Mapping[str, str],
        judge: RuleJudge,
        *,
        now: datetime,
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        """Re-apply changed rules to the stored entries; see :mod:`aggregator.store.rules`."""
        return self.rules.sync_rules(signatures, judge, now=now, matchers=matchers)

    def claim_due(
        self, now: datetime, *, owner: str, lease: timedelta, limit: int | None = None
    ) -> list[str]:
        """Claim the due sources nobody holds; see :meth:`Sources.claim_due`."""
        return self.sources.claim_due(now, owner=owner, lease=lease, limit=limit)

    def claim(self, name: str, *, owner: str, lease: timedelta, now: datetime) -> bool:
        """Claim one source unless another owner's claim is live; see :meth:`Sources.claim`."""
        return self.sources.claim(name, owner=owner, lease=lease, now=now)

    def release(self, names: Sequence[str], *, owner: str) -> None:
        """Give back ``owner``'s claims on ``names`` without saving a state."""
        self.sources.release(names, owner=owner)

    def renew(self, names: Sequence[str], *, owner: str, lease: timedelta, now: datetime) -> int:
        """Extend ``owner``'s live claims on ``names``; see :meth:`Sources.renew`."""
        return self.sources.renew(names, owner=owner, lease=lease, now=now)

    def poll_history(self, sources: Sequence[str] | None = None) -> dict[str, list[Poll]]:
        """Each source's recorded polls (its last 200), oldest first; see :class:`PollHistory`."""
        return self.polls.poll_history(sources)

    def last_poll_seconds(self) -> dict[str, float]:
        """Each source's newest poll's time; see :meth:`PollHistory.last_seconds`."""
        return self.polls.last_seconds()

    def prune_polls(self, before: datetime) -> int:
        """Remove polls older than ``before`` (retention); returns how many went."""
        return self.polls.prune_polls(before)

    # -- seed-file records -------------------------------------------------

    def file_stats(self, source: str) -> dict[str, tuple[int, int]]:
        """A seed folder's files' ``(size, mtime_ns)`` as last read, by relative path."""
        return self.files.file_stats(source)

    def file_records(
        self, source: str, relpaths: Collection[str] | None = None
    ) -> dict[str, FileRecord]:
        """A seed folder's file records (of ``relpaths`` only, if given) by relative path."""
        return self.files.file_records(source, relpaths)

    def apply_files(
        self, source: str, changes: Sequence[FileChange], *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        """Ingest and remove seed files' entries together with their records, in one transaction.

        A crash leaves each file either fully applied (entries and record) or
        not at all, so the next pass re-reads exactly the files it must.
        New and changed files are applied before deletions, so a renamed file
        joins its story (by content) before the old name's entry leaves it.
        """
        [report] = self.apply(
            [SourceWrite(source, files=tuple(changes))], now=now, matchers=matchers
        )
        return report

    # -- entries and stories ------------------------------------------------

    def ingest(
        self, items: Iterable[Item], *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        """Store entries, deduplicating them into stories, in one transaction (see :meth:`apply`).

        Args:
            items: normalised entries (any sources).
            now: the time of this update.
            matchers: the configured topics' predicates.

        Returns:
            Counts and the topics whose documents changed.
        """
        writes = [
            SourceWrite(source, items=tuple(group))
            for source, group in itertools.groupby(items, key=lambda item: item.source)
        ]
        return sum(self.apply(writes, now=now, matchers=matchers), IngestReport())

    def apply(
        self, writes: Sequence[SourceWrite], *, now: datetime, matchers: TopicMatchers
    ) -> list[IngestReport]:
        """Apply many sources' work in one transaction: the one writer's batch.

        For each write, in order: its seed files (additions first, each with
        its record), its items, its removed identities, and its new state,
        which releases the source's claim. The result is what applying the
        same items one by one in the same order gives: the same story ids and
        the same new, merged, updated and unchanged decisions, also between
        two items of the batch that share a link or text.

        Args:
            writes: the sources' finished updates, in the order they finished.
            now: the time of this batch (aware), for writes without their own.
            matchers: the configured topics' predicates.

        Returns:
            One report per write, in order.
        """
        return writer.apply(self.db, writes, now=now, matchers=matchers, near=self.near)

    def remove_entries(
        self,
        source: str,
        identities: Sequence[str],
        *,
        now: datetime,
        reason: str = "deleted",
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        """Remove entries; a story left without entries leaves its topics.

        Args:
            source: the entries' source.
            identities: the entries' identities within it.
            now: when they are removed.
            reason: ``deleted`` (the source removed it; it may come back under
                the same story id) or ``pruned`` (retention; never re-imported).
            matchers: to re-match a story whose canonical entry changes; None
                keeps its topics.

        Returns:
            Counts and the topics whose documents changed.
        """
        return self.entries.remove_entries(
            source, identities, now=now, reason=reason, matchers=matchers
        )

    def entry_counts(self) -> dict[str, int]:
        """Stored entries per source."""
        return self.entries.entry_counts()

    def old_entries(self, before: datetime) -> list[tuple[str, str, str]]:
        """Entries of stories published before ``before``: ``(source, identity, story_id)``.

        The retention job prunes these, except stories still in a topic's
        current feed.
        """
        return self.entries.old_entries(before)

    def story_ids(self) -> set[str]:
        """Every stored story's id."""
        return self.entries.story_ids()

    def find_story_ids(self, text: str, *, limit: int = 10) -> list[str]:
        """The stories ``text`` names (see :meth:`StoryDesk.find_story_ids`)."""
        return self.desk.find_story_ids(text, limit=limit)

    def entry_contents(
        self, source: str, identities: Sequence[str]
    ) -> dict[str, tuple[str, str] | None]:
        """Which of ``identities`` the source holds: their stored content and content hash.

        An entry removed from the store (a tombstone) maps to None; one never
        stored is absent. ``full_content`` fetches the page of absent ones only.
        """
        return self.entries.entry_contents(source, identities)

    def recent_contents(self, source: str, limit: int = 20) -> list[str]:
        """The content HTML of the source's last ``limit`` entries, newest first."""
        return self.entries.recent_contents(source, limit)

    def published_times(self, source: str, since: datetime) -> dict[str, datetime]:
        """Identity -> publication time of the source's entries published after ``since``."""
        return self.entries.published_times(source, utc(since))

    def story_rows(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Every story (or a topic's) with its topics and entries (see :class:`StoryDesk`)."""
        return self.desk.story_rows(topic)

    def story_joins(self, story_id: str) -> list[dict[str, Any]]:
        """How each entry of a story joined it: rule, matched entry, scores."""
        return self.desk.story_joins(story_id)

    def rebuild_stories(
        self, *, now: datetime, matchers: TopicMatchers
    ) -> tuple[RebuildReport, frozenset[str]]:
        """Re-cluster every entry with the current dedup settings, keeping ids and edits."""
        return self.desk.rebuild_stories(now=now, matchers=matchers)

    def edit_story(
        self, kind: str, story_id: str, *, now: datetime, matchers: TopicMatchers, **args: Any
    ) -> tuple[str, frozenset[str]]:
        """An editor's decision over a story, kept and applied (see :class:`StoryDesk`)."""
        return self.desk.edit_story(kind, story_id, now=now, matchers=matchers, **args)

    def story_edits(self, story_id: str) -> list[dict[str, Any]]:
        """The editor's decisions that name a story, oldest first."""
        return self.desk.story_edits(story_id)

    # -- topics --------------------------------------------------------------

    def sync_topics(
        self, queries: Mapping[str, str], matchers: TopicMatchers, *, now: datetime
    ) -> frozenset[str]:
        """Recompute membership of topics that are new or whose query changed.

        Args:
            queries: topic name -> query text, as configured.
            matchers: topic name -> predicate (same keys).
            now: when the sync happens.

        Returns:
            Topics whose membership was recomputed or dropped.
        """
        dirty = self.topics.sync_topics(queries, matchers, now=now)
        if not dirty:
            return dirty  # nothing re-matched: no write (read-only commands open a context too)
        with self.db.write() as conn:
            return dirty | enforce(conn, now=utc(now))

    def topic_stories(self, topic: str) -> list[Story]:
        """Every story in a topic, newest first by (published, id)."""
        return self.topics.topic_stories(topic)

    def newest_story_ids(self, topic: str, limit: int) -> list[str]:
        """The ids of a topic's ``limit`` newest stories, in :meth:`topic_stories` order."""
        return self.topics.newest_story_ids(topic, limit)

    def topic_outline(self, topic: str, *, resurface: bool = False) -> TopicOutline:
        """A topic's story ids and versions in published order, and its newest ``updated``."""
        return self.topics.topic_outline(topic, resurface=resurface)

    def topic_view(self, topic: str) -> AbstractContextManager[TopicView]:
        """One topic's order for publishing, every read from one snapshot of the store."""
        return self.topics.topic_view(topic)

    def stories(self, ids: Sequence[str] | None = None) -> Iterator[Story]:
        """Every stored story (or those with the given ids), newest first; streamed."""
        return self.topics.stories(ids)

    def topic_counts(self) -> dict[str, int]:
        """Stories per topic."""
        return self.topics.topic_counts()

    def foreign_changes(self, since: int) -> tuple[int, bool]:
        """Whether another process changed what topics publish since stamp ``since``.

        Every write that may change a topic takes the next change stamp
        (:mod:`aggregator.store.stamps`); the stamps after ``since`` that this
        store's own writes did not take were taken elsewhere (a CLI command
        beside a running daemon).

        Returns:
            The current stamp (the next call's ``since``), and whether a
            stamp after ``since`` was taken by another process.
        """
        return self.topics.foreign_changes(since)
