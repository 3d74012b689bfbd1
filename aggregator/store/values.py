"""The store's value types: what callers hand it and what it reports back."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# Seed-file records are model types: the ingest engine's worker processes build
# them without importing the store.
from aggregator.model import FileChange, FileRecord, Item, RuleDrop, TopicOutline

__all__ = [
    "FileChange",
    "FileRecord",
    "IngestReport",
    "MatchesMany",
    "RuleJudge",
    "RuleStats",
    "TopicMatchers",
    "TopicOutline",
]

#: topic name -> predicate over a story's canonical item
TopicMatchers = Mapping[str, Callable[[Item], bool]]

#: (source, its stored items) -> (identity, drop) of each item the source's rules drop
RuleJudge = Callable[[str, Sequence[Item]], list[tuple[str, RuleDrop]]]


@dataclass(frozen=True, slots=True)
class RuleStats:
    """What a source's rules dropped since they last changed."""

    blocked: int
    unkept: int
    #: the last drops, newest first: {at, rule, title, link, reason}
    examples: tuple[dict[str, Any], ...]
    changed_at: datetime


@runtime_checkable
class MatchesMany(Protocol):
    """Topic predicates that also answer many topics for many items in one call.

    Re-matching every stored story asks each topic about each story: matchers
    that implement this (see :func:`aggregator.engine.match.build_matchers`)
    index each item once for all topics instead of once per question.
    """

    def matching_many(self, items: Sequence[Item], names: Collection[str]) -> list[frozenset[str]]:
        """For each item, the topics among ``names`` whose predicate accepts it."""
        ...


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingest or removal changed."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    #: entries that joined an existing story (same story from another entry)
    merged: int = 0
    #: entries refused because retention pruned them before
    skipped: int = 0
    removed: int = 0
    #: topics whose published documents must be regenerated
    dirty_topics: frozenset[str] = frozenset()

    def __add__(self, other: IngestReport) -> IngestReport:
        return IngestReport(
            new=self.new + other.new,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            merged=self.merged + other.merged,
            skipped=self.skipped + other.skipped,
            removed=self.removed + other.removed,
            dirty_topics=self.dirty_topics | other.dirty_topics,
        )
