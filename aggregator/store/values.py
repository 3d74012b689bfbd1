"""The store's value types: what callers hand it and what it reports back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# The seed-file values moved to model with the ingest engine (its workers build them).
from aggregator.model import FileChange, FileRecord, Item

__all__ = ["FileChange", "FileRecord", "IngestReport", "TopicMatchers"]

#: topic name -> predicate over a story's canonical item
TopicMatchers = Mapping[str, Callable[[Item], bool]]


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
