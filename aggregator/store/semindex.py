"""The semantic signal in the store: entries' embeddings, candidates, and the decision.

With ``dedup: {semantic: true}`` every indexed entry in a language the model
knows gets a ``story_vectors`` row: its title-and-lead embedding
(:mod:`aggregator.stories.semantic`). A new entry that no exact key and no
near-duplicate placed looks for a paraphrase: the entries nearest by the
sign bits of their embeddings, published within ``semantic_window`` and in
the same language (:mod:`aggregator.stories.vecindex`, kept per process and read
anew from the rows written since), then their exact cosine from the stored
int8 vectors. A candidate joins only when the cosine reaches ``similarity``
and the specifics agree (:func:`aggregator.stories.specifics.agree`); the join
records its scores for ``stories --explain``.

numpy and the model are imported on first use: a store without the semantic
signal never loads them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.model import Item, NearDupSettings, Vector
from aggregator.store.schema import entries, story_joins, story_vectors
from aggregator.stories import neardup, specifics
from aggregator.stories.neardup import Sketch

if TYPE_CHECKING:
    from aggregator.stories.vecindex import VectorIndex

__all__ = ["SemanticMatch", "SemanticView", "language_of", "meaning", "semantic_text"]

#: candidates whose exact cosine is computed, nearest sign bits first
CANDIDATES = 16
#: rows re-read below the last seq seen: a row another process committed late
_SEQ_MARGIN = 256

_SELECT_NEW = sa.select(
    story_vectors.c.seq,
    story_vectors.c.entry_key,
    story_vectors.c.published,
    story_vectors.c.language,
    story_vectors.c.code,
).where(story_vectors.c.seq > sa.bindparam("k_seq"))
_SELECT_CANDIDATES = (
    sa.select(
        story_vectors.c.entry_key,
        story_vectors.c.scale,
        story_vectors.c.vector,
        story_vectors.c.code,
        story_vectors.c.language,
        entries.c.source,
        entries.c.identity,
        entries.c.story_id,
        entries.c.title,
        entries.c.content_html,
        entries.c.published,
    )
    .join(story_joins, story_joins.c.entry_key == story_vectors.c.entry_key)
    .join(
        entries,
        (entries.c.source == story_joins.c.source) & (entries.c.identity == story_joins.c.identity),
    )
    .where(story_vectors.c.entry_key.in_(sa.bindparam("k_keys", expanding=True)))
)
_DELETE = story_vectors.delete().where(story_vectors.c.entry_key == sa.bindparam("k_key"))


@dataclass(frozen=True, slots=True)
class SemanticMatch:
    """A stored entry the new one tells again in other words."""

    story_id: str
    source: str
    identity: str
    similarity: float
    agreement: specifics.Agreement
    hours_apart: float

    def reason(self, settings: NearDupSettings) -> str:
        """One line for ``stories --explain``: every score the decision used."""
        a = self.agreement
        window = settings.semantic_window.total_seconds() / 3600
        return (
            f"paraphrase: similarity {self.similarity:.3f} >= {settings.similarity:.2f}, "
            f"{self.hours_apart:.1f} h apart <= {window:g} h; numbers {a.shared_numbers} shared, "
            f"{a.number_conflicts} conflicting; names {a.shared_names} shared, "
            f"{a.name_conflicts} conflicting; quotes {a.shared_quotes} shared: {a.reason}"
        )


def language_of(item: Item, settings: NearDupSettings) -> str | None:
    """The language the semantic signal treats an entry in; None: the model does not know it."""
    tag = (item.language or "").lower()
    base = tag.split("-")[0]
    if base not in settings.semantic_languages:
        return None
    # Joining across languages only when asked: then one shared "language".
    return "*" if settings.cross_language else base


def semantic_text(title: str, body: str, settings: NearDupSettings) -> str:
    """What is embedded: the title and the lead (the first ``lead_words`` words)."""
    return title + "\n" + " ".join(body.split()[: settings.lead_words])


class _Cache:
    """One process's index of a store's vectors, read incrementally by seq."""

    def __init__(self) -> None:
        from aggregator.stories.vecindex import VectorIndex

        self.index: VectorIndex = VectorIndex()
        self.last = 0
        #: the seqs read that are within the margin below ``last``
        self.recent: set[int] = set()
        self.lock = threading.Lock()

    def refresh(self, conn: Connection) -> None:
        """Read the rows written since the last read (and any committed late within the margin)."""
        with self.lock:
            # SQLite commits writers in turn (seqs arrive in order); PostgreSQL may not.
            margin = _SEQ_MARGIN if conn.dialect.name == "postgresql" else 0
            rows = conn.execute(_SELECT_NEW, {"k_seq": max(0, self.last - margin)}).all()
            fresh = sorted((r for r in rows if r.seq not in self.recent), key=lambda r: r.seq)
            if fresh:
                self.index.extend(
                    [r.entry_key for r in fresh],
                    b"".join(r.code for r in fresh),
                    [r.published.timestamp() for r in fresh],
                    [r.language for r in fresh],
                )
                self.last = max(self.last, fresh[-1].seq)
            floor = self.last - margin
            self.recent = {s for s in self.recent if s > floor}
            self.recent.update(r.seq for r in rows if r.seq > floor)


_CACHES: dict[str, _Cache] = {}
_CACHES_LOCK = threading.Lock()


def _cache(conn: Connection) -> _Cache:
    url = conn.engine.url.render_as_string(hide_password=True)
    with _CACHES_LOCK:
        if url not in _CACHES:
            _CACHES[url] = _Cache()
        return _CACHES[url]


@dataclass(slots=True)
class _Mine:
    item: Item
    story_id: str
    vector: Vector
    language: str
    title: str
    body: str


class SemanticView:
    """One write batch's (or one rebuild's) semantic index.

    In a batch, the process's index of the stored vectors (read anew when the
    view opens) and the batch's own entries in memory, their rows written by
    :meth:`write`. In a rebuild (``replay=True``), an index of only the
    entries replayed so far, each row written at once.
    """

    def __init__(
        self, conn: Connection, settings: NearDupSettings, *, replay: bool = False
    ) -> None:
        self._conn = conn
        self.settings = settings
        self._replay = replay
        if replay:
            self._own: _Cache = _Cache()
        else:
            self._own = _cache(conn)
            self._own.refresh(conn)
        self._mine: list[_Mine] = []
        self._rows: list[dict[str, Any]] = []
        self._embedded: dict[tuple[str, str], Vector] = {}

    def _vector(self, item: Item, body: str, sketch: Sketch | None) -> Vector:
        """The entry's embedding: the one its sketch carries, else made here (loading the model)."""
        if sketch is not None and sketch.meaning is not None:
            return sketch.meaning
        pair = (item.source, item.identity)
        if pair not in self._embedded:
            from aggregator.stories import semantic

            text = semantic_text(item.title, body, self.settings)
            self._embedded[pair] = semantic.load().embed([text])[0]
        return self._embedded[pair]

    def match(
        self, item: Item, *, now: datetime, sketch: Sketch | None = None
    ) -> list[SemanticMatch]:
        """The stored or batch entries the new one paraphrases (scores agree), best first."""
        language = language_of(item, self.settings)
        if language is None:
            return []
        body = neardup.body_text(item)
        vector = self._vector(item, body, sketch)
        mine: specifics.Specifics | None = None
        window = self.settings.semantic_window
        when = item.published.timestamp()
        span = window.total_seconds()
        keys = self._own.index.nearest(
            vector.code, language=language, since=when - span, until=when + span, limit=CANDIDATES
        )
        found: list[tuple[float, str, SemanticMatch]] = []
        rows = self._conn.execute(_SELECT_CANDIDATES, {"k_keys": keys}) if keys else ()
        # The body of a stored candidate is read only once its cosine and time have passed.
        pool: list[tuple[Any, Vector, str, str | None]] = [
            (r, Vector(r.vector, r.scale, r.code), r.title, None) for r in rows
        ]
        pool += [(m, m.vector, m.title, m.body) for m in self._mine if m.language == language]
        lead_words = self.settings.lead_words
        for cand, cand_vector, title, cand_body in pool:
            cand_item = cand.item if isinstance(cand, _Mine) else cand
            if (cand_item.source, cand_item.identity) == (item.source, item.identity):
                continue
            apart = abs(cand_item.published - item.published)
            similarity = vector.cosine(cand_vector)
            if apart > window or similarity < self.settings.similarity:
                continue
            if cand_body is None:
                cand_body = neardup.body_text_html(cand.content_html)
            mine = mine or specifics.specifics(item.title, body, lead_words=lead_words)
            theirs = specifics.specifics(title, cand_body, lead_words=lead_words)
            agreement = specifics.agree(mine, theirs)
            if not agreement.same:
                continue
            story = cand.story_id
            hours = apart.total_seconds() / 3600
            match = SemanticMatch(
                story, cand_item.source, cand_item.identity, similarity, agreement, hours
            )
            found.append((-similarity, story, match))
        found.sort(key=lambda f: (f[0], f[1]))
        return [f[2] for f in found]

    def add(self, item: Item, story_id: str, key: int, sketch: Sketch | None = None) -> None:
        """Index an entry this batch stores (its row written by :meth:`write`).

        An entry too short to sketch is not indexed (nor matched): the same
        bodies the near-duplicate rules leave to exact repeats.
        """
        language = language_of(item, self.settings)
        if language is None or sketch is None:
            return
        body = neardup.body_text(item)
        vector = self._vector(item, body, sketch)
        row = {
            "entry_key": key,
            "published": item.published,
            "language": language,
            "scale": vector.scale,
            "code": vector.code,
            "vector": vector.values,
        }
        if self._replay:
            self._conn.execute(_DELETE, {"k_key": key})
            self._conn.execute(story_vectors.insert(), row)
            self._own.index.add(key, vector.code, item.published.timestamp(), language)
            return
        self._rows.append(row)
        self._mine.append(_Mine(item, story_id, vector, language, item.title, body))

    def write(self) -> None:
        """Write the buffered rows (after the entries' and join rows)."""
        if not self._rows:
            return
        self._conn.execute(_DELETE, [{"k_key": r["entry_key"]} for r in self._rows])
        self._conn.execute(story_vectors.insert(), self._rows)
        self._rows = []

    def reset(self) -> None:
        """Stored stories changed (a merge, an update): the batch's own entries are read anew."""
        if self._rows:
            raise RuntimeError("reset with buffered vector rows: write them first")
        for m in self._mine:
            key = _entry_key(m.item)
            self._own.index.add(key, m.vector.code, m.item.published.timestamp(), m.language)
        self._mine = []


def meaning(item: Item, settings: NearDupSettings) -> Vector | None:
    """An entry's embedding, made where the sketch is (a parse worker); None in another language."""
    if language_of(item, settings) is None:
        return None
    from aggregator.stories import semantic

    text = semantic_text(item.title, neardup.body_text(item), settings)
    return semantic.load().embed([text])[0]


def _entry_key(item: Item) -> int:
    from aggregator.store.stories import entry_key

    return entry_key(item.source, item.identity)


def forget(conn: Connection, keys: list[int]) -> None:
    """Drop the vector rows of entries removed or re-indexed."""
    if keys:
        conn.execute(_DELETE, [{"k_key": k} for k in keys])
