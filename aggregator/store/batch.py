"""The writer's batched apply: many sources' work in one transaction, looked up in bulk.

Each item is decided exactly as if it were ingested alone, in order: the
batch keeps an overlay of what it has written so far (entries, tombstones,
the oldest entry behind each link and content key, stories' topics) over
lookups made in bulk (:mod:`.lookups`), and buffers its inserts
(:mod:`.buffers`). An update or a removal, which re-derives stories,
flushes the buffers and runs the per-entry statements of
:mod:`~aggregator.store.entries`; the overlay of keys and topics is then
dropped and reloaded on demand.

Near-duplicate placement is per batch too: :class:`~aggregator.store.stories.NearIndex`
reads the stored band rows of every new entry in one query and keeps the
batch's own entries in memory, so a lookup sees earlier entries of the same
batch without a flush. ``_Batch.ingest`` looks every new entry up, even one
an exact key placed: a near match naming another story means the entry
bridges two stories, which are merged into the older (:mod:`.merge`); the
merge flushes and the index view is read again.

A *shared* batch (PostgreSQL, holding only its items' key locks; see
:mod:`.writes`) adds entries and joins stories. Whatever re-derives stories
beyond those keys (an entry whose text changed, a removal, a merge) raises
:class:`NeedsExclusive` before writing it: the caller rolls back and applies
the batch again holding the store alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from aggregator.model import Item, NearDupSettings, utc
from aggregator.store import entries as entry_ops
from aggregator.store import lookups, membership, merge
from aggregator.store import stories as story_index
from aggregator.store.buffers import Buffers
from aggregator.store.lookups import Holder, Pair
from aggregator.store.values import IngestReport, TopicMatchers
from aggregator.store.writes import Pending, SourceWrite, counted
from aggregator.stories import dedup
from aggregator.stories.dedup import Action

__all__ = ["NeedsExclusive", "apply"]


class NeedsExclusive(Exception):
    """A shared batch met a change beyond its keys: apply it again holding the store alone."""


def apply(
    conn: Connection,
    writes: Sequence[SourceWrite],
    planned: Sequence[Sequence[Pending]],
    *,
    now: datetime,
    matchers: TopicMatchers,
    near: NearDupSettings | None = None,
    shared: bool = False,
) -> list[IngestReport]:
    """Apply sources' work inside the caller's transaction; one report per write.

    Per write, in order: its files (additions first; each file's items, then
    its removed identities), its items, its removed identities, its file
    records, its state.

    Args:
        conn: the write transaction.
        writes: the sources' finished updates, in order.
        planned: each write's :func:`~aggregator.store.writes.pending` items.
        now: the batch's time, for writes without their own.
        matchers: the configured topics' predicates.
        near: near-duplicate settings (None: off).
        shared: the transaction holds only the items' key locks.

    Raises:
        NeedsExclusive: ``shared``, and the batch must re-derive stories
            beyond its keys (nothing was committed).
    """
    batch = _Batch(conn, now, matchers, near or NearDupSettings(enabled=False), shared=shared)
    for pending in planned:
        for p in pending:
            p.done = False
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
        out = batch.out
        if ordered:
            out.records.append((write.source, [(c.relpath, c.record) for c, _ in ordered]))
        if write.state is not None:
            out.states.append(write.state)
        if write.poll is not None:
            out.polls.append(counted(write.poll, report))
        reports.append(report)
    batch.out.finish(conn)
    return reports


class _Batch:
    """The overlay and write buffers of one batch (one transaction)."""

    def __init__(
        self,
        conn: Connection,
        now: datetime,
        matchers: TopicMatchers,
        near: NearDupSettings,
        *,
        shared: bool = False,
    ) -> None:
        self.conn = conn
        self.now = now
        self.matchers = matchers
        self.near = near
        #: True: this batch holds only its own keys' locks (PostgreSQL), so a
        #: change that re-derives stories beyond them raises :class:`NeedsExclusive`
        self.shared = shared
        #: what each entry holds now: (story_id, content_hash), None when absent
        self.entry: dict[Pair, tuple[str, str] | None] = {}
        self.tomb: dict[Pair, tuple[str, str] | None] = {}
        self.keys: dict[str, dict[str, Holder | None]] = {"link_key": {}, "content_key": {}}
        self.topics: dict[str, frozenset[str]] = {}
        #: stories inserted by this batch since the last removal
        self.created: set[str] = set()
        #: the story index as this batch sees it (stored rows and its own)
        self.index = story_index.NearIndex(conn, near)
        self.out = Buffers(self.index)
        #: the batch's items, in order (an ingested one is marked done)
        self.pending: Sequence[Pending] = ()

    # -- bulk lookups ----------------------------------------------------------

    def prefetch(self, pending: Sequence[Pending]) -> None:
        """Look up, in a few statements, everything the items' decisions may need.

        Raises:
            NeedsExclusive: a shared batch holds a changed entry (an update
                re-derives its story: the batch must hold the store alone).
        """
        items = [p.record.item for p in pending]
        pairs = list(dict.fromkeys((i.source, i.identity) for i in items))
        self.entry.update(dict.fromkeys(pairs))
        self.entry.update(lookups.entries_by_pair(self.conn, pairs))
        if self.shared and any(
            (held := self.entry[(i.source, i.identity)]) is not None and held[1] != i.content_hash
            for i in items
        ):
            raise NeedsExclusive("an entry changed")
        absent = [p for p in pairs if self.entry[p] is None]
        self.tomb.update(dict.fromkeys(absent))
        self.tomb.update(lookups.tombs_by_pair(self.conn, absent))
        wanted: dict[str, set[str]] = {"link_key": set(), "content_key": set()}
        absent_set = set(absent)
        for p in pending:
            if (p.record.item.source, p.record.item.identity) in absent_set:
                values = p.entry_values()
                for column, keys in wanted.items():
                    if values[column]:
                        keys.add(values[column])
        for column, keys in wanted.items():
            self.keys[column].update(lookups.holders(self.conn, column, sorted(keys)))
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

    def _holder(self, column: str, key: str) -> Holder | None:
        # A key missing from the overlay has no buffered entry (the overlay
        # gains every key it buffers): the table alone answers.
        cache = self.keys[column]
        if key not in cache:
            cache.update(lookups.holders(self.conn, column, [key]))
        return cache[key]

    def _entry(self, pair: Pair) -> tuple[str, str] | None:
        if pair not in self.entry:
            self.entry[pair] = lookups.entry_of(self.conn, pair)
        return self.entry[pair]

    def _tomb(self, pair: Pair) -> tuple[str, str] | None:
        if pair not in self.tomb:
            self.tomb[pair] = lookups.tomb_of(self.conn, pair)
        return self.tomb[pair]

    def _story_exists(self, story_id: str) -> bool:
        return story_id in self.created or lookups.story_exists(self.conn, story_id)

    def _topics_of(self, story_id: str) -> frozenset[str]:
        # Buffered memberships belong to stories new in this batch, all in the overlay.
        if story_id not in self.topics:
            self.topics[story_id] = membership.topics_of(self.conn, story_id)
        return self.topics[story_id]

    # -- decisions -------------------------------------------------------------

    def ingest(self, p: Pending) -> IngestReport:
        """Decide and buffer (or, for an update, apply) one item."""
        item = p.record.item
        existing = self._entry((item.source, item.identity))
        if existing is not None and existing[1] != item.content_hash:
            self._exclusive("an entry changed")
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
        return lookups.story_is_shared(self.conn, story_id)

    def _exclusive(self, why: str) -> None:
        """Stop a shared batch before a change beyond its keys (it is retried holding the store)."""
        if self.shared:
            raise NeedsExclusive(why)

    def flush(self) -> None:
        """Write the buffered inserts."""
        self.out.flush(self.conn)

    def _detach(self, item: Item, story_id: str) -> frozenset[str]:
        """Take an entry out of its story (no tombstone); return the story's dirty topics."""
        conn = self.conn
        entry_ops.delete_entry(conn, item.source, item.identity)
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
        self, p: Pending, existing: tuple[str, str] | None, *, split_from: str | None = None
    ) -> IngestReport:
        """Decide one item against what is stored; ``split_from``: the story it just left."""
        item = p.record.item
        pair = (item.source, item.identity)
        unchanged = existing is not None and existing[1] == item.content_hash
        values = {} if unchanged else p.entry_values()  # an unchanged entry needs none
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
            return self._update(p, story_id, values)
        self._insert(item, story_id, values, new_story=action is Action.NEW, tomb=tomb)
        if self.near.enabled:
            rule = "new" if action is Action.NEW else entry_ops.join_rule(link_match, content_match)
            rule, shown = (match.rule, match) if rule == "near" and match else (rule, None)
            self.index.add(item, sketch, story_id, rule, match=shown, now=self.now)
        if action is Action.JOIN:
            return self._joined(story_id, match)
        return self._created(p, story_id)

    def _touch(self, item: Item) -> IngestReport:
        """The entry is held with the same content: only its last sight moves."""
        self.out.touched.append(
            {"k_source": item.source, "k_identity": item.identity, "k_now": self.now}
        )
        self.index.seen(item.source, item.identity, self.now)
        return IngestReport(unchanged=1)

    def _created(self, p: Pending, story_id: str) -> IngestReport:
        """A new story: it joins the topics its item matches."""
        record = p.record
        matched = record.topics
        if matched is None:
            matched = membership.matching(record.item, self.matchers)
        self.topics[story_id] = matched
        published = record.item.published
        self.out.new_topics.extend(
            {"topic": t, "story_id": story_id, "matched_at": self.now, "published": published}
            for t in sorted(matched)
        )
        return IngestReport(new=1, dirty_topics=matched)

    def _key_matches(self, values: dict[str, Any]) -> tuple[str | None, str | None]:
        """The stories behind a new entry's link key, else behind its content key."""
        link_match = content_match = None
        if values["link_key"]:
            held = self._holder("link_key", values["link_key"])
            link_match = held[3] if held else None
        if link_match is None and values["content_key"]:
            held = self._holder("content_key", values["content_key"])
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
            self.out.new_stories.append(entry_ops.story_row(item, story_id, self.now))
            self.created.add(story_id)
        self.out.new_entries.append(entry_ops.entry_row(item, story_id, values, self.now))
        self.entry[pair] = (story_id, item.content_hash)
        holder = (self.now, item.source, item.identity, story_id)
        for column, cache in self.keys.items():
            key = values[column]
            if key:
                held = self._holder(column, key)
                if held is None or holder < held:
                    cache[key] = holder
        if tomb is not None:
            self.out.untombed.append({"k_source": item.source, "k_identity": item.identity})
            self.tomb[pair] = None

    def _joined(self, story_id: str, match: story_index.NearMatch | None) -> IngestReport:
        """An entry joined a story: its topics are redone, its canonical entry too."""
        # Provenance is published with the story: its topics must be redone.
        dirty = self._topics_of(story_id)
        if self.near.enabled:
            # The fullest telling becomes canonical (needs the entry in the database).
            bridged = match.bridged(story_id) if match is not None else frozenset()
            if bridged:
                self._exclusive("an entry bridges two stories")
            self.flush()
            if bridged:
                dirty |= self._merge(story_id, bridged)
            else:
                lookups.lock_story(self.conn, story_id)
                dirty |= entry_ops.recanonicalise(
                    self.conn, story_id, now=self.now, matchers=self.matchers, rematch=True
                )
            self._forget_derived()
        return IngestReport(merged=1, dirty_topics=dirty)

    def _update(self, p: Pending, story_id: str, values: dict[str, Any]) -> IngestReport:
        item = p.record.item
        sketch = p.record.sketch if self.near.enabled else None
        self._exclusive("an entry changed")
        self.flush()
        if self.near.enabled:
            story_index.index_entry(self.conn, item, sketch, self.near)
        entry_ops.update_entry(self.conn, item, values, now=self.now)
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
        self._exclusive("entries are removed")
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
        for cache in self.keys.values():
            cache.clear()
        self.topics.clear()
        self.created.clear()
