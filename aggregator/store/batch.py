"""The one writer's batched apply: many sources' work in one transaction, looked up in bulk.

Each item is decided exactly as if it were ingested alone, in order: the
batch keeps an overlay of what it has written so far (entries, tombstones,
the oldest entry behind each link and content key, stories' topics) over
lookups made in bulk, and buffers its inserts for ``executemany``. An
update or a removal, which re-derives stories, flushes the buffers and runs
the per-entry statements of :mod:`~aggregator.store.entries`; the overlay of
keys and topics is then dropped and reloaded on demand.

Near-duplicate placement is per batch too: :class:`~aggregator.store.stories.NearIndex`
reads the stored band rows of every new entry in one query and keeps the
batch's own entries in memory, so a lookup sees earlier entries of the same
batch without a flush. ``_Batch.ingest`` looks every new entry up, even one
an exact key placed: a near match naming another story means the entry
bridges two stories, which are merged into the older (:mod:`.merge`); the
merge flushes and the index view is read again.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator import dedup, neardup
from aggregator.dedup import Action
from aggregator.model import Item, Poll, SourceState, utc
from aggregator.neardup import NearDupSettings
from aggregator.records import ItemRecord
from aggregator.store import entries as entry_ops
from aggregator.store import files as file_ops
from aggregator.store import membership, merge, stamps
from aggregator.store import polls as poll_ops
from aggregator.store import sources as source_ops
from aggregator.store import stories as story_index
from aggregator.store.database import chunks
from aggregator.store.rows import DedupKeys, dedup_keys, entry_values
from aggregator.store.schema import (
    UTCDateTime,
    entries,
    poll_history,
    stories,
    story_joins,
    story_topics,
    tombstones,
)
from aggregator.store.schema import story_index as story_index_table
from aggregator.store.values import FileChange, IngestReport, TopicMatchers

__all__ = ["SourceWrite", "apply"]

#: (source, identity)
_Pair = tuple[str, str]
#: (first_seen, source, identity, story_id) of an entry behind a key: the oldest one wins
_Holder = tuple[datetime, str, str, str]

_KEY_COLUMNS = (entries.c.first_seen, entries.c.source, entries.c.identity, entries.c.story_id)
# The bulk lookups, built once; each IN list is one expanding parameter.
_ENTRIES_BY_PAIR = sa.select(
    entries.c.source, entries.c.identity, entries.c.story_id, entries.c.content_hash
).where(
    sa.tuple_(entries.c.source, entries.c.identity).in_(sa.bindparam("k_pairs", expanding=True))
)
_TOMBS_BY_PAIR = sa.select(
    tombstones.c.source, tombstones.c.identity, tombstones.c.story_id, tombstones.c.reason
).where(
    sa.tuple_(tombstones.c.source, tombstones.c.identity).in_(
        sa.bindparam("k_pairs", expanding=True)
    )
)
_BY_KEY = {
    column.name: sa.select(column, *_KEY_COLUMNS).where(
        column.in_(sa.bindparam("k_keys", expanding=True))
    )
    for column in (entries.c.link_key, entries.c.content_key)
}
_TOUCH = (
    entries.update()
    .where(
        (entries.c.source == sa.bindparam("k_source"))
        & (entries.c.identity == sa.bindparam("k_identity"))
    )
    .values(last_seen=sa.bindparam("k_now"))
)
_UNTOMB = tombstones.delete().where(
    (tombstones.c.source == sa.bindparam("k_source"))
    & (tombstones.c.identity == sa.bindparam("k_identity"))
)


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


def apply(
    conn: Connection,
    writes: Sequence[SourceWrite],
    *,
    now: datetime,
    matchers: TopicMatchers,
    near: NearDupSettings | None = None,
) -> list[IngestReport]:
    """Apply sources' work inside the caller's transaction; one report per write.

    Per write, in order: its files (additions first; each file's items, then
    its removed identities), its items, its removed identities, its file
    records, its state.
    """
    batch = _Batch(conn, now, matchers, near or NearDupSettings(enabled=False))
    planned = [_pending(write, batch.near) for write in writes]
    batch.prefetch([p for pending in planned for p in pending])
    reports = []
    for write, pending in zip(writes, planned, strict=True):
        batch.now = now if write.now is None else utc(write.now)
        report = IngestReport()
        left = iter(pending)
        files = [(change, [next(left) for _ in change.items]) for change in write.files]
        ordered = sorted(files, key=lambda f: f[0].record is None)
        for change, items in ordered:
            for p in items:
                report += batch.ingest(p)
            report += batch.remove(write.source, change.removed)
        for p in left:
            report += batch.ingest(p)
        report += batch.remove(write.source, write.removed)
        if ordered:
            batch.records.append((write.source, [(c.relpath, c.record) for c, _ in ordered]))
        if write.state is not None:
            batch.states.append(write.state)
        if write.poll is not None:
            batch.polls.append(_counted(write.poll, report))
        reports.append(report)
    batch.finish()
    return reports


def _counted(poll: Poll, report: IngestReport) -> Poll:
    return replace(
        poll, new=poll.new + report.new + report.merged, updated=poll.updated + report.updated
    )


def _items_of(write: SourceWrite) -> Iterable[Item]:
    for change in write.files:
        yield from change.items
    yield from write.items


class _Pending:
    """An item of the batch: its record, its entry's column values once computed, whether done."""

    __slots__ = ("done", "record", "values")

    def __init__(self, record: ItemRecord) -> None:
        self.record = record
        self.values: dict[str, Any] | None = None
        self.done = False


def _pending(write: SourceWrite, near: NearDupSettings) -> list[_Pending]:
    """The write's items with their records: the CPU stage's, else made here.

    Raises:
        ValueError: a record is not of the item in its place.
    """
    items = list(_items_of(write))
    if write.records:
        for item, record in zip(items, write.records, strict=True):
            if record.item is not item:
                raise ValueError(f"{write.source}: the records are not of the write's items")
        return [_Pending(record) for record in write.records]
    # Items given bare (tests, tools): their keys and sketches are made here.
    keys = write.keys or tuple(dedup_keys(item) for item in items)
    return [
        _Pending(
            ItemRecord(item, keys=k, sketch=neardup.sketch(item, near) if near.enabled else None)
        )
        for item, k in zip(items, keys, strict=True)
    ]


class _BulkInsert:
    """An INSERT of many rows through the driver's ``executemany``.

    Values go through each column type's own bind processor, as SQLAlchemy
    would apply them, without its per-row parameter handling (profiled: that
    was a third of the writer's time). SQLite timestamps take a faster path
    to the same text SQLAlchemy stores.
    """

    def __init__(self, table: sa.Table, dialect: sa.Dialect) -> None:
        # Every column but a generated key (poll_history.id): the database numbers those.
        keys = [c.name for c in table.c if c.autoincrement is not True]
        compiled = table.insert().compile(dialect=dialect, column_keys=keys)
        self.sql = str(compiled)
        processors = {c.name: _processor(c, dialect) for c in table.c}
        names = list(compiled.positiontup or compiled.params)
        self.names = names
        self.get = operator.itemgetter(*names)
        #: (position, processor) of the columns whose values need converting
        self.convert: list[tuple[int, Callable[[Any], Any]]] = []
        for i, name in enumerate(names):
            process = processors[name]
            if process is not None:
                self.convert.append((i, process))
        self.positional = compiled.positional

    def run_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows given as tuples in the table's column order, values needing no conversion."""
        if not rows:
            return
        if self.convert:
            raise ValueError(f"{self.sql}: columns need converting; use run()")
        if self.positional:
            conn.exec_driver_sql(self.sql, list(rows))
        else:
            conn.exec_driver_sql(self.sql, [dict(zip(self.names, r, strict=True)) for r in rows])

    def run(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        get, convert = self.get, self.convert
        params: list[Any] = []
        for row in rows:
            values = list(get(row))
            for i, process in convert:
                values[i] = process(values[i])
            params.append(
                tuple(values) if self.positional else dict(zip(self.names, values, strict=True))
            )
        conn.exec_driver_sql(self.sql, params)


def _processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return _sqlite_stamp
    if dialect.name == "sqlite" and isinstance(column.type, sa.JSON):
        return _sqlite_json
    return column.type._cached_bind_processor(dialect)


@functools.lru_cache(maxsize=1024)
def _sqlite_stamp(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME text: naive UTC, always with microseconds.
    # Cached: a batch writes its ``now`` three times per entry.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime not allowed: {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_json(value: Any) -> str:
    # What SQLAlchemy's JSON type stores (None as JSON null), with the
    # commonest values spelled out: most entries have no tags, dateline...
    if value is None:
        return "null"
    if value == []:
        return "[]"
    return json.dumps(value)


_INSERTS: dict[tuple[str, str], _BulkInsert] = {}


def _insert(table: sa.Table, dialect: sa.Dialect) -> _BulkInsert:
    key = (table.name, dialect.name)
    if key not in _INSERTS:
        _INSERTS[key] = _BulkInsert(table, dialect)
    return _INSERTS[key]


class _Batch:
    """The overlay and write buffers of one batch (one transaction)."""

    def __init__(
        self, conn: Connection, now: datetime, matchers: TopicMatchers, near: NearDupSettings
    ) -> None:
        self.conn = conn
        self.now = now
        self.matchers = matchers
        self.near = near
        #: what each entry holds now: (story_id, content_hash), None when absent
        self.entry: dict[_Pair, tuple[str, str] | None] = {}
        self.tomb: dict[_Pair, tuple[str, str] | None] = {}
        self.link: dict[str, _Holder | None] = {}
        self.content: dict[str, _Holder | None] = {}
        self.topics: dict[str, frozenset[str]] = {}
        #: stories inserted by this batch since the last removal
        self.created: set[str] = set()
        self.new_stories: list[dict[str, Any]] = []
        self.new_entries: list[dict[str, Any]] = []
        self.new_topics: list[dict[str, Any]] = []
        self.touched: list[dict[str, Any]] = []
        self.untombed: list[dict[str, Any]] = []
        self.records: list[tuple[str, list[tuple[str, Any]]]] = []
        self.states: list[SourceState] = []
        self.polls: list[Poll] = []
        #: the story index as this batch sees it (stored rows and its own)
        self.index = story_index.NearIndex(conn, near)
        #: the batch's items, in order (an ingested one is marked done)
        self.pending: Sequence[_Pending] = ()

    # -- bulk lookups ----------------------------------------------------------

    def prefetch(self, pending: Sequence[_Pending]) -> None:
        """Look up, in a few statements, everything the items' decisions may need."""
        items = [p.record.item for p in pending]
        pairs = list(dict.fromkeys((i.source, i.identity) for i in items))
        for pair in pairs:
            self.entry[pair] = None
        for chunk in chunks(pairs, 400):
            for row in self.conn.execute(_ENTRIES_BY_PAIR, {"k_pairs": chunk}):
                self.entry[(row.source, row.identity)] = (row.story_id, row.content_hash)
        absent = [p for p in pairs if self.entry[p] is None]
        for pair in absent:
            self.tomb[pair] = None
        for chunk in chunks(absent, 400):
            for row in self.conn.execute(_TOMBS_BY_PAIR, {"k_pairs": chunk}):
                self.tomb[(row.source, row.identity)] = (row.story_id, row.reason)
        links: set[str] = set()
        contents: set[str] = set()
        absent_set = set(absent)
        for p in pending:
            if (p.record.item.source, p.record.item.identity) in absent_set:
                values = self._values(p)
                if values["link_key"]:
                    links.add(values["link_key"])
                if values["content_key"]:
                    contents.add(values["content_key"])
        self._load_keys(self.link, entries.c.link_key, sorted(links))
        self._load_keys(self.content, entries.c.content_key, sorted(contents))
        self.pending = pending
        self._look_up_near()

    def _look_up_near(self) -> None:
        """One index lookup for every new entry still to ingest that may need one."""
        if not self.near.enabled:
            return
        batch = []
        for p in self.pending:
            item, sketch = p.record.item, p.record.sketch
            if p.done or self.entry.get((item.source, item.identity)) is not None:
                continue
            if sketch is not None:
                batch.append((item, sketch))
        self.index.look_up(batch)

    def _load_keys(
        self, cache: dict[str, _Holder | None], column: sa.Column[Any], keys: Sequence[str]
    ) -> None:
        for key in keys:
            cache[key] = None
        for chunk in chunks(keys, 500):
            for row in self.conn.execute(_BY_KEY[column.name], {"k_keys": chunk}):
                holder = (row.first_seen, row.source, row.identity, row.story_id)
                held = cache[row[0]]
                if held is None or holder < held:
                    cache[row[0]] = holder

    def _holder(
        self, cache: dict[str, _Holder | None], column: sa.Column[Any], key: str
    ) -> _Holder | None:
        # A key missing from the overlay has no buffered entry (the overlay
        # gains every key it buffers): the table alone answers.
        if key not in cache:
            self._load_keys(cache, column, [key])
        return cache[key]

    def _values(self, p: _Pending) -> dict[str, Any]:
        if p.values is None:
            p.values = entry_values(p.record.item, p.record.keys)
        return p.values

    def _entry(self, pair: _Pair) -> tuple[str, str] | None:
        if pair not in self.entry:
            row = self.conn.execute(
                sa.select(entries.c.story_id, entries.c.content_hash).where(
                    (entries.c.source == pair[0]) & (entries.c.identity == pair[1])
                )
            ).first()
            self.entry[pair] = (row.story_id, row.content_hash) if row else None
        return self.entry[pair]

    def _tomb(self, pair: _Pair) -> tuple[str, str] | None:
        if pair not in self.tomb:
            row = self.conn.execute(
                sa.select(tombstones.c.story_id, tombstones.c.reason).where(
                    (tombstones.c.source == pair[0]) & (tombstones.c.identity == pair[1])
                )
            ).first()
            self.tomb[pair] = (row.story_id, row.reason) if row else None
        return self.tomb[pair]

    def _story_exists(self, story_id: str) -> bool:
        if story_id in self.created:
            return True
        query = sa.select(stories.c.id).where(stories.c.id == story_id)
        return self.conn.execute(query).first() is not None

    def _topics_of(self, story_id: str) -> frozenset[str]:
        # Buffered memberships belong to stories new in this batch, all in the overlay.
        if story_id not in self.topics:
            self.topics[story_id] = membership.topics_of(self.conn, story_id)
        return self.topics[story_id]

    # -- decisions -------------------------------------------------------------

    def ingest(self, p: _Pending) -> IngestReport:
        """Decide and buffer (or, for an update, apply) one item."""
        item = p.record.item
        existing = self._entry((item.source, item.identity))
        if existing is None or existing[1] == item.content_hash or not self._shared(existing[0]):
            return self._decide(p, existing)
        # Its text changed inside a story other entries hold: the text that put
        # it there is gone, so where it belongs is decided again, as if it
        # arrived now. The story keeps its id; if the entry leaves, it starts
        # a story of its own with a new one.
        left = self._detach(item, existing[0])
        report = self._decide(p, None, split_from=existing[0])
        return IngestReport(updated=1, dirty_topics=left | report.dirty_topics)

    def _shared(self, story_id: str) -> bool:
        """Whether a story holds more than one entry (the buffered ones written first)."""
        self.flush()
        count = sa.select(sa.func.count()).where(entries.c.story_id == story_id)
        return bool(self.conn.execute(count).scalar_one() > 1)

    def _detach(self, item: Item, story_id: str) -> frozenset[str]:
        """Take an entry out of its story (no tombstone); return the story's dirty topics."""
        conn = self.conn
        key = (entries.c.source == item.source) & (entries.c.identity == item.identity)
        conn.execute(entries.delete().where(key))
        story_index.forget_entry(conn, item.source, item.identity)
        dirty = entry_ops.refresh_story(
            conn, story_id, now=self.now, matchers=self.matchers, rematch=True
        )
        dirty |= membership.topics_of(conn, story_id)
        self.entry[(item.source, item.identity)] = None
        self._forget_derived()
        self._forget_index()
        return dirty

    def _decide(
        self, p: _Pending, existing: tuple[str, str] | None, *, split_from: str | None = None
    ) -> IngestReport:
        """Decide one item against what is stored; ``split_from``: the story it just left."""
        item = p.record.item
        pair = (item.source, item.identity)
        unchanged = existing is not None and existing[1] == item.content_hash
        values = {} if unchanged else self._values(p)  # an unchanged entry needs none
        tomb = link_match = content_match = None
        if existing is None:
            tomb = self._tomb(pair)
            link_match, content_match = self._key_matches(values)
        p.done = True
        match = None
        sketch = p.record.sketch if self.near.enabled and not unchanged else None
        if existing is None and sketch:
            # Looked up even after an exact match: the entry may bridge two stories.
            match = self.index.match(item, sketch, now=self.now)
        decision = dedup.decide(
            item,
            existing=existing,
            tombstone=tomb,
            link_match=link_match,
            content_match=content_match,
            near_match=match.story_id if match else None,
        )
        story_id = decision.story_id
        action = decision.action
        if action is Action.NEW and tomb is not None and self._story_exists(tomb[0]):
            # A returning entry whose story another entry kept alive rejoins it.
            action = Action.JOIN
        if action is Action.NEW and split_from and story_id and self._story_exists(story_id):
            # The id minted from this entry names the story it left, which lives on.
            story_id = dedup.split_story_id(item.source, item.identity, item.content_hash)
        if action is Action.UNCHANGED:
            return self._touch(item)
        if action is Action.SKIP or story_id is None:
            return IngestReport(skipped=1)
        if action is Action.UPDATE:
            return self._update(item, story_id, values, sketch)
        self._insert(item, story_id, values, new_story=action is Action.NEW, tomb=tomb)
        if self.near.enabled:
            rule = "new" if action is Action.NEW else entry_ops.join_rule(link_match, content_match)
            rule, shown = (match.rule, match) if rule == "near" and match else (rule, None)
            self.index.add(item, sketch, story_id, rule, match=shown, now=self.now)
        if action is Action.JOIN:
            return self._joined(story_id, match)
        return self._created(p.record, story_id)

    def _touch(self, item: Item) -> IngestReport:
        """The entry is held with the same content: only its last sight moves."""
        self.touched.append(
            {"k_source": item.source, "k_identity": item.identity, "k_now": self.now}
        )
        self.index.seen(item.source, item.identity, self.now)
        return IngestReport(unchanged=1)

    def _created(self, record: ItemRecord, story_id: str) -> IngestReport:
        """A new story: it joins the topics its item matches."""
        matched = record.topics
        if matched is None:
            matched = membership.matching(record.item, self.matchers)
        self.topics[story_id] = matched
        published = record.item.published
        self.new_topics.extend(
            {"topic": t, "story_id": story_id, "matched_at": self.now, "published": published}
            for t in sorted(matched)
        )
        return IngestReport(new=1, dirty_topics=matched)

    def _key_matches(self, values: dict[str, Any]) -> tuple[str | None, str | None]:
        """The stories behind a new entry's link key, else behind its content key."""
        link_match = content_match = None
        if values["link_key"]:
            held = self._holder(self.link, entries.c.link_key, values["link_key"])
            link_match = held[3] if held else None
        if link_match is None and values["content_key"]:
            held = self._holder(self.content, entries.c.content_key, values["content_key"])
            content_match = held[3] if held else None
        return link_match, content_match

    def _insert(
        self,
        item: Item,
        story_id: str,
        values: dict[str, Any],
        *,
        new_story: bool,
        tomb: tuple[str, str] | None,
    ) -> None:
        """Buffer a new entry (and its new story), and overlay what it holds."""
        pair = (item.source, item.identity)
        if new_story:
            self.new_stories.append(entry_ops.story_row(item, story_id, self.now))
            self.created.add(story_id)
        self.new_entries.append(entry_ops.entry_row(item, story_id, values, self.now))
        self.entry[pair] = (story_id, item.content_hash)
        holder = (self.now, item.source, item.identity, story_id)
        for cache, column, key in (
            (self.link, entries.c.link_key, values["link_key"]),
            (self.content, entries.c.content_key, values["content_key"]),
        ):
            if key:
                held = self._holder(cache, column, key)
                if held is None or holder < held:
                    cache[key] = holder
        if tomb is not None:
            self.untombed.append({"k_source": item.source, "k_identity": item.identity})
            self.tomb[pair] = None

    def _joined(self, story_id: str, match: story_index.NearMatch | None) -> IngestReport:
        """An entry joined a story: its topics are redone, its canonical entry too."""
        # Provenance is published with the story: its topics must be redone.
        dirty = self._topics_of(story_id)
        if self.near.enabled:
            # The fullest telling becomes canonical (needs the entry in the database).
            self.flush()
            bridged = match.bridged(story_id) if match is not None else frozenset()
            if bridged:
                dirty |= self._merge(story_id, bridged)
            else:
                dirty |= entry_ops.recanonicalise(
                    self.conn, story_id, now=self.now, matchers=self.matchers, rematch=True
                )
            self._forget_derived()
        return IngestReport(merged=1, dirty_topics=dirty)

    def _update(
        self, item: Item, story_id: str, values: dict[str, Any], sketch: neardup.Sketch | None
    ) -> IngestReport:
        self.flush()
        if self.near.enabled:
            story_index.index_entry(self.conn, item, sketch, self.near)
        key = (entries.c.source == item.source) & (entries.c.identity == item.identity)
        self.conn.execute(entries.update().where(key).values(**values, last_seen=self.now))
        dirty = entry_ops.refresh_story(self.conn, story_id, now=self.now, matchers=self.matchers)
        self._forget_derived()
        if self.near.enabled:
            # The stored text changed: the index view is read anew, with the new text.
            self._forget_index()
        self.entry[(item.source, item.identity)] = (story_id, item.content_hash)
        return IngestReport(updated=1, dirty_topics=dirty)

    def remove(self, source: str, identities: Sequence[str]) -> IngestReport:
        """Apply removals now (they re-derive stories), then drop what they may have changed."""
        if not identities:
            return IngestReport()
        self.flush()
        report = entry_ops.remove(
            self.conn, source, identities, now=self.now, reason="deleted", matchers=self.matchers
        )
        self._forget_derived()
        self._forget_index()
        for identity in identities:
            self.entry.pop((source, identity), None)
            self.tomb.pop((source, identity), None)
        return report

    def _merge(self, story_id: str, bridged: frozenset[str]) -> frozenset[str]:
        """Merge the stories an entry bridges (flushed); forget what the overlay held of them."""
        _winner, dirty = merge.merge_stories(
            self.conn, {story_id, *bridged}, now=self.now, matchers=self.matchers
        )
        gone = bridged | {story_id}
        for cache in (self.entry, self.tomb):
            for pair in [p for p, held in cache.items() if held is not None and held[0] in gone]:
                del cache[pair]
        # Stored entries moved to the winner: the index view's story ids are stale.
        self._forget_index()
        return dirty

    def _forget_index(self) -> None:
        # Stored entries' texts or stories changed (after a flush): the index
        # view reads the database again, for the entries still to come.
        self.index.reset()
        self._look_up_near()

    def _forget_derived(self) -> None:
        # Stories were re-derived or deleted in the table: keys may now lead
        # elsewhere and topics may differ. Reload them on demand.
        self.link.clear()
        self.content.clear()
        self.topics.clear()
        self.created.clear()

    # -- writes ----------------------------------------------------------------

    def flush(self) -> None:
        """Write the buffered inserts, in an order the foreign keys accept."""
        conn = self.conn
        _insert(stories, conn.dialect).run(conn, self.new_stories)
        _insert(entries, conn.dialect).run(conn, self.new_entries)
        # An entry joining a story it did not create changes what the story publishes.
        created = {row["id"] for row in self.new_stories}
        joined = {row["story_id"] for row in self.new_entries} - created
        if joined:
            entry_ops.bump_versions(conn, joined)
        if self.touched:
            conn.execute(_TOUCH, self.touched)
        if self.untombed:
            conn.execute(_UNTOMB, self.untombed)
        if self.new_topics:
            seq = stamps.stamp(conn)
            for row in self.new_topics:
                row["seq"] = seq
            _insert(story_topics, conn.dialect).run(conn, self.new_topics)
        keys, bands, joins = self.index.take_rows()
        story_index.forget_keys(conn, keys)
        _insert(story_index_table, conn.dialect).run_rows(conn, bands)
        _insert(story_joins, conn.dialect).run(conn, joins)
        self.new_stories, self.new_entries, self.new_topics = [], [], []
        self.touched, self.untombed = [], []

    def finish(self) -> None:
        """Flush, then write the file records, the states (releasing the claims) and the polls."""
        self.flush()
        for source, records in self.records:
            file_ops.write_records(self.conn, source, records)
        source_ops.write_state(self.conn, self.states)
        # The polls ride in the states' transaction: one bulk insert, one bounding delete.
        _insert(poll_history, self.conn.dialect).run(self.conn, poll_ops.poll_rows(self.polls))
        poll_ops.bound(self.conn, (p.source for p in self.polls))
