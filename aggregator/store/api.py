"""The ``Store`` protocol: everything the pipeline, daemon and CLI may ask of a store."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from aggregator.model import Item, Poll, RuleDrop, SourceSpec, SourceState, Story
from aggregator.store.outline import TopicView
from aggregator.store.push import PushState
from aggregator.store.rebuild import RebuildReport
from aggregator.store.values import (
    FileChange,
    FileRecord,
    IngestReport,
    RuleJudge,
    RuleStats,
    TopicMatchers,
    TopicOutline,
)
from aggregator.store.writes import SourceWrite

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """A store of sources, entries, stories and topics. Every datetime is aware UTC."""

    #: WebSub subscriptions and webhook deliveries
    push: PushState

    # -- sources and their state ------------------------------------------

    def sync_sources(self, specs: Sequence[SourceSpec], *, now: datetime) -> IngestReport:
        """Make the stored sources match the config; a removed source's entries go."""
        ...

    def get_state(self, name: str) -> SourceState | None:
        """A source's fetch state; None for an unknown source."""
        ...

    def states(self) -> list[SourceState]:
        """Every source's fetch state, by name."""
        ...

    def save_state(self, state: SourceState) -> None:
        """Save a source's fetch state; this releases the source's claim."""
        ...

    def due_sources(self, now: datetime) -> list[str]:
        """Names of the sources due at ``now``, soonest first (a snapshot: claims nothing)."""
        ...

    def enable_source(self, name: str) -> bool:
        """Bring a source put to rest back (polled at once); False for an unknown source."""
        ...

    def keep_stories(self, name: str, keep: bool = True) -> bool:
        """Keep (or not) a source's entries when the config drops it; False if unknown."""
        ...

    # -- sources' rules ------------------------------------------------------

    def record_drops(self, source: str, drops: Sequence[RuleDrop], *, now: datetime) -> None:
        """Count entries a source's rules dropped at ingest, keeping the last as examples."""
        ...

    def rule_stats(self) -> dict[str, RuleStats]:
        """What each source's rules dropped since they last changed."""
        ...

    def sync_rules(
        self,
        signatures: Mapping[str, str],
        judge: RuleJudge,
        *,
        now: datetime,
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        """Re-apply changed rules to the stored entries; see :mod:`aggregator.store.rules`."""
        ...

    def poll_history(self, sources: Sequence[str] | None = None) -> dict[str, list[Poll]]:
        """Each source's recorded polls (its last 200), oldest first; None: every source."""
        ...

    def last_poll_seconds(self) -> dict[str, float]:
        """Each source's newest poll's fetch-and-parse seconds (sources never polled are absent)."""
        ...

    def prune_polls(self, before: datetime) -> int:
        """Remove polls older than ``before`` (retention); returns how many went."""
        ...

    # -- dispatch claims: a source is in at most one update at a time -----

    def claim_due(
        self, now: datetime, *, owner: str, lease: timedelta, limit: int | None = None
    ) -> list[str]:
        """Select the due sources nobody holds and claim them, in one transaction."""
        ...

    def claim(self, name: str, *, owner: str, lease: timedelta, now: datetime) -> bool:
        """Claim one source (due or not); False while another owner's claim is live."""
        ...

    def release(self, names: Sequence[str], *, owner: str) -> None:
        """Give back ``owner``'s claims on ``names`` without saving a state."""
        ...

    def renew(self, names: Sequence[str], *, owner: str, lease: timedelta, now: datetime) -> int:
        """Extend the claims ``owner`` still holds on ``names`` to ``now + lease``; how many."""
        ...

    # -- seed-file records -------------------------------------------------

    def file_stats(self, source: str) -> dict[str, tuple[int, int]]:
        """A seed folder's files' ``(size, mtime_ns)`` as last read, by relative path.

        What a pass compares a scan with: cheaper than :meth:`file_records`,
        which it needs only for the files that changed or went.
        """
        ...

    def file_records(
        self, source: str, relpaths: Collection[str] | None = None
    ) -> dict[str, FileRecord]:
        """A seed folder's file records (of ``relpaths`` only, if given) by relative path."""
        ...

    def apply_files(
        self, source: str, changes: Sequence[FileChange], *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        """Apply seed files' entries and records together, in one transaction."""
        ...

    # -- entries and stories ------------------------------------------------

    def ingest(
        self, items: Iterable[Item], *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        """Store entries, deduplicated into stories, in one transaction."""
        ...

    def apply(
        self, writes: Sequence[SourceWrite], *, now: datetime, matchers: TopicMatchers
    ) -> list[IngestReport]:
        """Apply many sources' work (items, removals, files, state) in one transaction."""
        ...

    def remove_entries(
        self,
        source: str,
        identities: Sequence[str],
        *,
        now: datetime,
        reason: str = "deleted",
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        """Remove entries (tombstoned); a story left without entries leaves its topics."""
        ...

    def entry_counts(self) -> dict[str, int]:
        """Stored entries per source."""
        ...

    def old_entries(self, before: datetime) -> list[tuple[str, str, str]]:
        """``(source, identity, story_id)`` of stories published before ``before``."""
        ...

    def entry_contents(
        self, source: str, identities: Sequence[str]
    ) -> dict[str, tuple[str, str] | None]:
        """(content, hash) of those entries of a source; None if removed; absent if never held."""
        ...

    def published_times(self, source: str, since: datetime) -> dict[str, datetime]:
        """Identity -> publication time of the source's entries published after ``since``."""
        ...

    def recent_contents(self, source: str, limit: int = 20) -> list[str]:
        """The content HTML of the source's last ``limit`` entries, newest first."""
        ...

    def story_ids(self) -> set[str]:
        """Every stored story's id."""
        ...

    def story_rows(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Every story (or a topic's) with its topics and entries, oldest first."""
        ...

    def story_joins(self, story_id: str) -> list[dict[str, Any]]:
        """How each entry of a story joined it: rule, matched entry, scores."""
        ...

    def rebuild_stories(
        self, *, now: datetime, matchers: TopicMatchers
    ) -> tuple[RebuildReport, frozenset[str]]:
        """Re-cluster every entry with the current dedup settings, keeping ids."""
        ...

    def edit_story(
        self, kind: str, story_id: str, *, now: datetime, matchers: TopicMatchers, **args: Any
    ) -> tuple[str, frozenset[str]]:
        """An editor's decision over a story (split, merge, hide, pin), kept and applied."""
        ...

    def story_edits(self, story_id: str) -> list[dict[str, Any]]:
        """The editor's decisions that name a story, oldest first."""
        ...

    # -- topics --------------------------------------------------------------

    def sync_topics(
        self, queries: Mapping[str, str], matchers: TopicMatchers, *, now: datetime
    ) -> frozenset[str]:
        """Recompute membership of new and changed topics; return the topics touched."""
        ...

    def stories(self, ids: Sequence[str] | None = None) -> Iterator[Story]:
        """Every stored story (or those with the given ids), newest first; streamed."""
        ...

    def topic_stories(self, topic: str) -> list[Story]:
        """Every story in a topic, newest first."""
        ...

    def newest_story_ids(self, topic: str, limit: int) -> list[str]:
        """The ids of a topic's ``limit`` newest stories, in :meth:`topic_stories` order."""
        ...

    def topic_outline(self, topic: str, *, resurface: bool = False) -> TopicOutline:
        """A topic's story ids and versions in published order, and its newest ``updated``."""
        ...

    def topic_view(self, topic: str) -> AbstractContextManager[TopicView]:
        """One topic's order for publishing, every read from one snapshot of the store."""
        ...

    def topic_counts(self) -> dict[str, int]:
        """Stories per topic."""
        ...

    def find_story_ids(self, text: str, *, limit: int = 10) -> list[str]:
        """The stories ``text`` names: a whole id, with or without ``urn:uuid:``, or its start."""
        ...

    def foreign_changes(self, since: int) -> tuple[int, bool]:
        """The current change stamp, and whether another process took one after ``since``."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...
