"""The story index in the store: LSH band rows, near-duplicate lookups, join records.

Every entry's text is indexed as one row per LSH band (``story_index``), so
finding a new entry's candidate stories is one indexed ``band IN (...)``
query in the ingest transaction, on SQLite and PostgreSQL alike: a restart
keeps the index and every worker sees the same one. The precise check is
:func:`aggregator.stories.neardup.compare`; what joined each entry is kept in
``story_joins`` for ``aggregator stories --explain``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Item
from aggregator.store import semindex
from aggregator.store.listing import find_story_ids, join_rows, seed_paths, story_rows
from aggregator.store.schema import (
    entries,
    story_index,
    story_joins,
    story_vectors,
)
from aggregator.stories import neardup
from aggregator.stories.neardup import NearDupSettings, Score, Sketch

__all__ = [
    "NearIndex",
    "NearMatch",
    "entry_key",
    "find_near",
    "find_near_many",
    "find_story_ids",
    "forget_entry",
    "forget_keys",
    "index_entry",
    "join_rows",
    "record_join",
    "seed_paths",
    "story_rows",
]

#: candidates checked per incoming entry, the ones sharing most bands first
MAX_CANDIDATES = 8
#: bands a candidate must share: unrelated texts collide in one band now and
#: then; every copy, edit and truncation of the labelled set shares two or more
MIN_SHARED_BANDS = 2

# Statements built once: building them per entry cost more than running them.
# PostgreSQL: one array parameter, so one statement text the server prepares once.
# The generic ARRAY: importing the PostgreSQL dialect's would cost a SQLite
# install 2 MiB at rest for nothing.
_INTS = sa.ARRAY(sa.BigInteger)
_SELECT_BANDS = sa.select(story_index.c.band, story_index.c.entry_key).where(
    story_index.c.band == sa.any_(sa.bindparam("k_bands", type_=_INTS))
)
# SQLite: a whole batch's bands as one JSON parameter. An expanding IN list
# of 500 parameters per statement cost more to build than to run.
_SQLITE_SELECT_BANDS = (
    "SELECT band, entry_key FROM story_index WHERE band IN (SELECT value FROM json_each(?))"
)
_DELETE_BANDS = story_index.delete().where(story_index.c.entry_key == sa.bindparam("k_key"))
_DELETE_JOIN = story_joins.delete().where(story_joins.c.entry_key == sa.bindparam("k_key"))
_DELETE_VECTOR = story_vectors.delete().where(story_vectors.c.entry_key == sa.bindparam("k_key"))
_PG_DELETE = [
    table.delete().where(table.c.entry_key == sa.any_(sa.bindparam("k_keys", type_=_INTS)))
    for table in (story_index, story_joins)
]
#: what the precise check needs of a stored candidate, and where its entry is
_CANDIDATE = (
    entries.c.source,
    entries.c.identity,
    entries.c.story_id,
    entries.c.content_html,
    entries.c.published,
    entries.c.last_seen,
)
_ITS_ENTRY = (entries.c.source == story_joins.c.source) & (
    entries.c.identity == story_joins.c.identity
)
_SELECT_STORED = (
    sa.select(story_joins.c.entry_key, *_CANDIDATE)
    .join(entries, _ITS_ENTRY)
    .where(story_joins.c.entry_key.in_(sa.bindparam("k_keys", expanding=True)))
)
_PG_SELECT_STORED = (
    sa.select(story_joins.c.entry_key, *_CANDIDATE)
    .join(entries, _ITS_ENTRY)
    .where(story_joins.c.entry_key == sa.any_(sa.bindparam("k_keys", type_=_INTS)))
)
# One entry's candidates in one statement: the entries sharing most bands
# (counted by the database), with what the precise check needs of them.
_shared = sa.func.count().label("shared")
_RANKED = (
    sa.select(story_index.c.entry_key, _shared)
    .where(story_index.c.band.in_(sa.bindparam("k_bands", expanding=True)))
    .group_by(story_index.c.entry_key)
    .having(sa.func.count() >= MIN_SHARED_BANDS)
    .order_by(_shared.desc(), story_index.c.entry_key)
    .limit(MAX_CANDIDATES)
    .subquery()
)
_SELECT_NEAR = (
    sa.select(_RANKED.c.entry_key, _RANKED.c.shared, *_CANDIDATE)
    .select_from(_RANKED)
    .join(story_joins, story_joins.c.entry_key == _RANKED.c.entry_key)
    .join(entries, _ITS_ENTRY)
)


@dataclass(frozen=True, slots=True)
class NearMatch:
    """A stored entry the incoming one is a near-duplicate of."""

    story_id: str
    source: str
    identity: str
    score: Score
    #: ``(story_id, source, identity)`` of every other stored entry the new one
    #: is a near-duplicate of, sorted: in another story, the entry bridges them
    others: tuple[tuple[str, str, str], ...] = ()
    #: ``near`` (shingles) or ``semantic`` (a paraphrase), with its cosine similarity
    rule: str = "near"
    similarity: float | None = None

    def bridged(self, story_id: str) -> frozenset[str]:
        """The stories other than ``story_id`` (the one joined) that this match also names."""
        return frozenset({self.story_id, *(o[0] for o in self.others)} - {story_id})


def entry_key(source: str, identity: str) -> int:
    """The signed 64-bit key of an entry in the band rows (a hash of source and identity)."""
    name = json.dumps([source, identity], ensure_ascii=False).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)


def index_entry(
    conn: Connection, item: Item, sketch: Sketch | None, settings: NearDupSettings | None = None
) -> None:
    """(Re)write an entry's band rows (and vector); an entry too short to sketch gets none."""
    key = entry_key(item.source, item.identity)
    conn.execute(_DELETE_BANDS, {"k_key": key})
    if settings is not None and settings.semantic:
        conn.execute(_DELETE_VECTOR, {"k_key": key})
        semindex.SemanticView(conn, settings, replay=True).add(item, "", key, sketch)
    if sketch is None or not sketch.bands:
        return
    conn.execute(
        story_index.insert(),
        [{"band": band, "entry_key": key} for band in dict.fromkeys(sketch.bands)],
    )


def forget_entry(conn: Connection, source: str, identity: str) -> None:
    """Drop an entry's band rows and its join record."""
    key = entry_key(source, identity)
    conn.execute(_DELETE_BANDS, {"k_key": key})
    conn.execute(_DELETE_JOIN, {"k_key": key})
    conn.execute(_DELETE_VECTOR, {"k_key": key})


def forget_keys(conn: Connection, keys: Sequence[int]) -> None:
    """Drop the band rows and join records of many entries, by :func:`entry_key`."""
    if keys and conn.dialect.name == "postgresql":
        for statement in _PG_DELETE:
            conn.execute(statement, {"k_keys": list(keys)})
    elif keys:
        params = [{"k_key": key} for key in keys]
        conn.execute(_DELETE_BANDS, params)
        conn.execute(_DELETE_JOIN, params)


def find_near(
    conn: Connection, item: Item, sketch: Sketch, settings: NearDupSettings, *, now: datetime
) -> NearMatch | None:
    """The story a new entry is a near-duplicate of, if any, with one statement.

    The same rules as :func:`find_near_many`; the database counts the shared
    bands and returns only the :data:`MAX_CANDIDATES` best candidates.
    """
    if not sketch.bands:
        return None
    rows = sorted(
        conn.execute(_SELECT_NEAR, {"k_bands": list(dict.fromkeys(sketch.bands))}),
        key=lambda r: (-r.shared, r.entry_key),
    )
    ranked = (_candidate(r, settings) for r in rows)
    return _match(item, sketch, (c for c in ranked if c is not None), settings, now=now)


def find_near_many(
    conn: Connection,
    batch: Sequence[tuple[Item, Sketch]],
    settings: NearDupSettings,
    *,
    now: datetime,
) -> dict[tuple[str, str], NearMatch]:
    """Near-duplicate matches of a batch of new entries, with one index query for all.

    A candidate is a stored entry sharing at least one band with the new
    entry, published within ``settings.window`` of it or stored within the
    window before ``now`` (seed files have no date of their own). The
    :data:`MAX_CANDIDATES` sharing most bands (at least :data:`MIN_SHARED_BANDS`)
    are checked with :func:`neardup.compare`. The best match (highest
    containment) names the story to join; every other story a passing
    candidate is listed in :attr:`NearMatch.others`: a story among them that
    is not the best one's is bridged by the entry and merged into it
    (:func:`aggregator.store.merge.merge_stories`).

    Args:
        conn: the ingest transaction's connection.
        batch: new entries with their sketches.
        settings: thresholds and window.
        now: the time of this ingest.

    Returns:
        ``(source, identity)`` of each new entry that matched -> the match.
    """
    index = NearIndex(conn, settings)
    index.look_up(batch)
    out: dict[tuple[str, str], NearMatch] = {}
    for item, sk in batch:
        match = index.match(item, sk, now=now)
        if match is not None:
            out[(item.source, item.identity)] = match
    return out


def _match(
    item: Item,
    sketch: Sketch,
    candidates: Iterable[_Candidate],
    settings: NearDupSettings,
    *,
    now: datetime,
    seen: Mapping[tuple[str, str], datetime] | None = None,
) -> NearMatch | None:
    """Check an entry's ranked candidates precisely: the best match, naming every other one.

    Best: the highest containment, then the smaller story id, then the
    candidate ranked first (sharing more bands).

    Args:
        item: the new entry.
        sketch: its sketch.
        candidates: the stored (or batch) entries sharing most bands, ranked.
        settings: thresholds and window.
        now: the time of this ingest.
        seen: candidates' ``last_seen`` moved since they were read.
    """
    found: list[tuple[float, str, int, _Candidate, Score]] = []
    for rank, cand in enumerate(candidates):
        if (cand.source, cand.identity) == (item.source, item.identity):
            continue
        last_seen = seen.get((cand.source, cand.identity), cand.seen) if seen else cand.seen
        near_in_time = abs(cand.published - item.published) <= settings.window
        if not near_in_time and now - last_seen > settings.window:
            continue
        score = neardup.compare(sketch, cand.sketch, settings)
        if score.same:
            found.append((-score.containment, cand.story_id, rank, cand, score))
    if not found:
        return None
    found.sort(key=lambda f: f[:3])
    best, score = found[0][3], found[0][4]
    others = {(c.story_id, c.source, c.identity) for _, _, _, c, _ in found[1:]}
    return NearMatch(best.story_id, best.source, best.identity, score, tuple(sorted(others)))


class NearIndex:
    """One write batch's view of the story index: stored band rows in bulk, its own in memory.

    A lookup sees what a query of the database would see if everything the
    batch indexed so far were written: the stored band rows, fetched for many
    entries in one query (:meth:`look_up`), plus the entries this batch
    indexed since (:meth:`add`), kept in memory. Their band and join rows are
    buffered until :meth:`take_rows`, so the batch writes them with
    ``executemany`` instead of flushing before every lookup.

    A candidate is a stored or batch entry sharing at least one band with the
    new entry, published within ``settings.window`` of it or last seen within
    the window before ``now`` (seed files have no date of their own). The
    :data:`MAX_CANDIDATES` sharing most bands (at least :data:`MIN_SHARED_BANDS`)
    are checked with :func:`neardup.compare`.

    The stored rows are read once: after the batch changes stored entries'
    texts or stories (an update, a removal), write the buffered rows and call
    :meth:`reset`.
    """

    def __init__(self, conn: Connection, settings: NearDupSettings) -> None:
        self._conn = conn
        self.settings = settings
        #: stored entries sharing bands with each looked-up entry: key -> shared bands
        self._counts: dict[tuple[str, str], dict[int, int]] = {}
        #: stored candidates fetched for the lookups
        self._stored: dict[int, _Candidate] = {}
        #: entries this batch indexed since the last reset, and their bands
        self._mine: dict[int, _Candidate] = {}
        self._mine_bands: dict[int, list[int]] = {}
        #: stored entries this batch saw again (``last_seen`` moved)
        self._seen: dict[tuple[str, str], datetime] = {}
        self._keys: list[int] = []
        self._bands: list[tuple[int, int]] = []
        self._joins: list[dict[str, Any]] = []
        #: the semantic signal's view (``dedup: {semantic: true}``)
        self.semantic = semindex.SemanticView(conn, settings) if settings.semantic else None

    def look_up(self, batch: Sequence[tuple[Item, Sketch]]) -> None:
        """Fetch the stored band rows and candidates of many new entries in a few queries."""
        wanted: dict[int, list[dict[int, int]]] = {}
        for item, sk in batch:
            counts = self._counts[(item.source, item.identity)] = {}
            for band in sk.bands:
                wanted.setdefault(band, []).append(counts)
        mine = self._mine
        for band, key in _band_rows(self._conn, list(wanted)):
            if key in mine:
                continue  # written by this batch: counted from memory
            for counts in wanted[band]:
                counts[key] = counts.get(key, 0) + 1
        # A stored entry among the best of the stored and the batch's entries
        # is among the best of the stored ones: those are all that is needed.
        needed: set[int] = set()
        for item, _sk in batch:
            needed.update(_ranked(self._counts[(item.source, item.identity)]))
        self._stored.update(_stored(self._conn, needed - self._stored.keys(), self.settings))

    def match(self, item: Item, sketch: Sketch, *, now: datetime) -> NearMatch | None:
        """The best candidate the new entry is a near-duplicate of, naming every other one."""
        pair = (item.source, item.identity)
        if pair not in self._counts:
            self.look_up([(item, sketch)])
        counts = dict(self._counts[pair])
        for band in sketch.bands:
            for key in self._mine_bands.get(band, ()):
                counts[key] = counts.get(key, 0) + 1
        ranked = (self._mine.get(key) or self._stored.get(key) for key in _ranked(counts))
        candidates = (c for c in ranked if c is not None)
        found = _match(item, sketch, candidates, self.settings, now=now, seen=self._seen)
        return semantic_match(found, self.semantic, item, now=now, sketch=sketch)

    def add(
        self,
        item: Item,
        sketch: Sketch | None,
        story_id: str,
        rule: str,
        *,
        match: NearMatch | None = None,
        now: datetime,
    ) -> None:
        """Index an entry this batch stores and record how it joined its story (buffered)."""
        key = entry_key(item.source, item.identity)
        self._keys.append(key)
        self._joins.append(_join_row(item, key, story_id, rule, match, now))
        if self.semantic is not None:
            self.semantic.add(item, story_id, key, sketch)
        if sketch is None or not sketch.bands:
            self._mine.pop(key, None)
            return
        mine_bands = self._mine_bands
        for band in dict.fromkeys(sketch.bands):
            self._bands.append((band, key))
            if band in mine_bands:
                mine_bands[band].append(key)
            else:
                mine_bands[band] = [key]
        self._mine[key] = _Candidate(
            item.source, item.identity, story_id, item.published, now, sketch
        )

    def seen(self, source: str, identity: str, now: datetime) -> None:
        """A stored entry was seen again: its ``last_seen`` is now ``now``."""
        self._seen[(source, identity)] = now

    def take_rows(self) -> tuple[list[int], list[tuple[int, int]], list[dict[str, Any]]]:
        """The buffered writes, handed over once.

        Returns:
            The entry keys whose band and join rows to delete first, the band
            rows as ``(band, entry_key)``, the join rows.
        """
        out = (self._keys, self._bands, self._joins)
        self._keys, self._bands, self._joins = [], [], []
        if self.semantic is not None:
            # Rewritten here (its old row deleted first): forget_keys keeps vector rows.
            self.semantic.write()
        return out

    def reset(self) -> None:
        """Forget what was read and indexed: the next lookups read the database again."""
        if self._keys:
            raise RuntimeError("reset with buffered index rows: write them first")
        self._counts.clear()
        self._stored.clear()
        self._mine.clear()
        self._mine_bands.clear()
        self._seen.clear()
        if self.semantic is not None:
            self.semantic.reset()


def _band_rows(conn: Connection, bands: list[int]) -> Iterable[tuple[int, int]]:
    """``(band, entry_key)`` of the stored band rows among ``bands``."""
    if conn.dialect.name == "sqlite":
        for i in range(0, len(bands), 50_000):
            chunk = json.dumps(bands[i : i + 50_000])
            for band, key in conn.exec_driver_sql(_SQLITE_SELECT_BANDS, (chunk,)):
                yield band, key
        return
    for i in range(0, len(bands), 50_000):
        for band, key in conn.execute(_SELECT_BANDS, {"k_bands": bands[i : i + 50_000]}):
            yield band, key


def _ranked(counts: dict[int, int]) -> list[int]:
    """The :data:`MAX_CANDIDATES` entries sharing most bands, at least :data:`MIN_SHARED_BANDS`."""
    return [
        k
        for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]
        if c >= MIN_SHARED_BANDS
    ]


@dataclass(frozen=True, slots=True)
class _Candidate:
    source: str
    identity: str
    story_id: str
    published: datetime
    seen: datetime
    sketch: Sketch


def _stored(
    conn: Connection, keys: Iterable[int], settings: NearDupSettings
) -> dict[int, _Candidate]:
    out: dict[int, _Candidate] = {}
    wanted = list(keys)
    pg = conn.dialect.name == "postgresql"
    step = 20_000 if pg else 500
    for i in range(0, len(wanted), step):
        rows = conn.execute(
            _PG_SELECT_STORED if pg else _SELECT_STORED, {"k_keys": wanted[i : i + step]}
        )
        for row in rows:
            cand = _candidate(row, settings)
            if cand is not None:
                out[row.entry_key] = cand
    return out


def _candidate(row: Any, settings: NearDupSettings) -> _Candidate | None:
    sk = _stored_sketch(row.content_html, settings)
    if sk is None:
        return None
    return _Candidate(row.source, row.identity, row.story_id, row.published, row.last_seen, sk)


@functools.lru_cache(maxsize=2048)
def _stored_sketch(content_html: str, settings: NearDupSettings) -> Sketch | None:
    # Stored texts need no bands: only the shingles are compared. Cached by
    # text: the same stored entries come back as candidates of many new ones
    # (a story's other copies, texts full of common phrases).
    return neardup.sketch_text(neardup.body_text_html(content_html), settings, bands=False)


def record_join(
    conn: Connection,
    item: Item,
    story_id: str,
    rule: str,
    *,
    match: NearMatch | None = None,
    now: datetime,
) -> None:
    """Remember how an entry came to its story (``new``, ``link``, ``content``, ``near``)."""
    key = entry_key(item.source, item.identity)
    conn.execute(_DELETE_JOIN, {"k_key": key})
    conn.execute(story_joins.insert(), _join_row(item, key, story_id, rule, match, now))


def _join_row(
    item: Item, key: int, story_id: str, rule: str, match: NearMatch | None, now: datetime
) -> dict[str, Any]:
    return {
        "source": item.source,
        "identity": item.identity,
        "entry_key": key,
        "story_id": story_id,
        "rule": rule,
        "matched_source": match.source if match else None,
        "matched_identity": match.identity if match else None,
        "containment": match.score.containment if match and match.rule == "near" else None,
        "resemblance": match.score.resemblance if match and match.rule == "near" else None,
        "reason": match.score.reason if match else None,
        "joined_at": now,
        "similarity": match.similarity if match else None,
    }


def semantic_match(
    near: NearMatch | None,
    view: semindex.SemanticView | None,
    item: Item,
    *,
    now: datetime,
    sketch: Sketch | None = None,
) -> NearMatch | None:
    """The near match with the paraphrases the semantic view finds (the best one if none).

    Every paraphrase in another story than the match's is named in its
    ``others``: the entry bridges them, as a near duplicate of two stories
    does, so the clusters do not depend on which telling arrived first.
    """
    found = view.match(item, now=now, sketch=sketch) if view is not None else []
    if not found or view is None:
        return near
    named = {(m.story_id, m.source, m.identity) for m in found}
    if near is not None:
        others = {*near.others, *named} - {(near.story_id, near.source, near.identity)}
        return dataclasses.replace(near, others=tuple(sorted(others)))
    best = found[0]
    score = Score(0.0, 0.0, (), True, best.reason(view.settings))
    rest = tuple(sorted(named - {(best.story_id, best.source, best.identity)}))
    return NearMatch(
        best.story_id, best.source, best.identity, score, rest, "semantic", best.similarity
    )
