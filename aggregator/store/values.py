"""The store's value types: what callers hand it and what it reports back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aggregator.model import Item

__all__ = ["FileChange", "FileRecord", "IngestReport", "TopicMatchers"]

#: topic name -> predicate over a story's canonical item
TopicMatchers = Mapping[str, Callable[[Item], bool]]


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the store remembers of one seed file."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: str | None = None
    #: identities of the entries the file produced
    identities: tuple[str, ...] = ()
    #: why it could not be ingested (retried when size or mtime change)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FileChange:
    """One seed file's effect, applied atomically with its record."""

    relpath: str
    #: the file's new record; None when the file was deleted
    record: FileRecord | None
    #: entries the file yields now
    items: tuple[Item, ...] = ()
    #: identities the file yielded before and no longer does
    removed: tuple[str, ...] = ()


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
