"""What the writer applies: a source's finished update, its items' records, and the keys they lock.

A :class:`SourceWrite` is built by the update; :func:`pending` makes each of
its items' records (keys, sketch) outside any transaction, and
:func:`lock_keys` names what a batch of them may decide on, so that on
PostgreSQL a batch locks those keys only (:meth:`Database.write`), and two
batches of unrelated stories never wait for each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aggregator.model import Item, NearDupSettings, Poll, SourceState
from aggregator.records import ItemRecord
from aggregator.store.rows import DedupKeys, dedup_keys, entry_values
from aggregator.store.values import FileChange, IngestReport
from aggregator.stories import neardup

__all__ = ["Pending", "SourceWrite", "count_keys", "counted", "lock_keys", "pending", "removes"]


@dataclass(frozen=True, slots=True)
class SourceWrite:
    """One source's finished update, as the writer applies it."""

    #: the configured source's name
    source: str
    #: entries the source yields now (new, changed or unchanged)
    items: tuple[Item, ...] = ()
    #: identities the source no longer yields
    removed: tuple[str, ...] = ()
    #: a seed folder's changed files, applied with their records (additions first)
    files: tuple[FileChange, ...] = ()
    #: the source's new fetch state; saving it releases the source's claim
    state: SourceState | None = None
    #: when the source's update began (its entries' first_seen); None: the batch's now
    now: datetime | None = None
    #: ``rows.dedup_keys`` of each item (the files' items first, then ``items``),
    #: in order, when a worker computed them already (empty: the writer computes them)
    keys: tuple[DedupKeys, ...] = ()
    #: each item (the files' items first, then ``items``), in order, with its
    #: keys, sketch and topics as the CPU stage made them; empty: made here
    records: tuple[ItemRecord, ...] = ()
    #: the poll to record in the history (its counts so far; this write's are added)
    poll: Poll | None = None

    def __post_init__(self) -> None:
        count = len(self.items) + sum(len(change.items) for change in self.files)
        if self.keys and len(self.keys) != count:
            raise ValueError(f"{self.source}: {len(self.keys)} keys for {count} items")
        if self.records and len(self.records) != count:
            raise ValueError(f"{self.source}: {len(self.records)} records for {count} items")


def counted(poll: Poll, report: IngestReport) -> Poll:
    """The poll with the write's new, merged and updated entries added to its counts."""
    return replace(
        poll, new=poll.new + report.new + report.merged, updated=poll.updated + report.updated
    )


def items_of(write: SourceWrite) -> Iterable[Item]:
    """The write's items in order: its files' first, then its own."""
    for change in write.files:
        yield from change.items
    yield from write.items


class Pending:
    """An item of the batch: its record, its entry's column values once computed, whether done."""

    __slots__ = ("done", "record", "values")

    def __init__(self, record: ItemRecord) -> None:
        self.record = record
        self.values: dict[str, Any] | None = None
        self.done = False

    def entry_values(self) -> dict[str, Any]:
        """The item's ``entries`` column values (computed once)."""
        if self.values is None:
            self.values = entry_values(self.record.item, self.record.keys)
        return self.values


def pending(write: SourceWrite, near: NearDupSettings) -> list[Pending]:
    """The write's items with their records: the CPU stage's, else made here.

    Raises:
        ValueError: a record is not of the item in its place.
    """
    items = list(items_of(write))
    if write.records:
        for item, record in zip(items, write.records, strict=True):
            if record.item is not item:
                raise ValueError(f"{write.source}: the records are not of the write's items")
        return [Pending(record) for record in write.records]
    # Items given bare (tests, tools): their keys and sketches are made here.
    keys = write.keys or tuple(dedup_keys(item) for item in items)
    return [
        Pending(
            ItemRecord(item, keys=k, sketch=neardup.sketch(item, near) if near.enabled else None)
        )
        for item, k in zip(items, keys, strict=True)
    ]


def removes(write: SourceWrite) -> bool:
    """Whether the write removes entries (a removal re-derives stories beyond its keys)."""
    return bool(write.removed) or any(change.removed for change in write.files)


def lock_keys(pending: Iterable[Pending]) -> list[int]:
    """The advisory lock keys of the items' decisions: sorted, distinct, signed 32-bit.

    An item's decision reads the holders of its ``(source, identity)``, its
    link key and content key, and (near-duplicates) its sketch's bands; two
    items that may decide on one another share at least one of these. Keys
    are hashed (BLAKE2b, the same in every process); a collision only makes
    two unrelated batches wait.
    """
    keys: set[int] = set()
    for p in pending:
        record = p.record
        item = record.item
        keys.add(_hash(f"e\x00{item.source}\x00{item.identity}"))
        link_key, content_key = record.keys or dedup_keys(item)
        if link_key:
            keys.add(_hash(f"l\x00{link_key}"))
        if content_key:
            keys.add(_hash(f"c\x00{content_key}"))
        if record.sketch is not None:
            keys.update(_fold(band) for band in record.sketch.bands)
    return sorted(keys)


def _hash(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _fold(band: int) -> int:
    # A band key is a signed 64-bit hash already: fold it to 32 bits.
    value = ((band >> 32) ^ band) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def count_keys(pending: Sequence[Pending]) -> int:
    """An upper bound of :func:`lock_keys`' length, without hashing."""
    return sum(
        3 + (len(p.record.sketch.bands) if p.record.sketch is not None else 0) for p in pending
    )
