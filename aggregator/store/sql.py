"""The SQL store: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from aggregator import dedup, neardup
from aggregator.dedup import Action
from aggregator.errors import StoreError
from aggregator.model import (
    Dateline,
    FileChange,
    FileRecord,
    Item,
    Origin,
    Outcome,
    Related,
    SourceSpec,
    SourceState,
    Story,
    Via,
    utc,
)
from aggregator.neardup import NearDupSettings
from aggregator.store import stories as story_index
from aggregator.store.schema import (
    entries,
    files,
    sources,
    stories,
    story_topics,
    tombstones,
    topics,
)
from aggregator.topics import tokens

__all__ = ["FileChange", "FileRecord", "IngestReport", "SQLStore", "TopicMatchers", "open_store"]

#: topic name -> predicate over a story's canonical item
TopicMatchers = Mapping[str, Callable[[Item], bool]]

_MIGRATIONS = Path(__file__).parent / "migrations"

# The per-entry statements of an ingest, built once: building a statement with
# its values inline costs more than executing it (profiled: SQLAlchemy's
# construction and cache-key work was about half of the store's time).
_ENTRY_KEY = (entries.c.source == sa.bindparam("k_source")) & (
    entries.c.identity == sa.bindparam("k_identity")
)
_SELECT_ENTRY = sa.select(entries.c.story_id, entries.c.content_hash).where(_ENTRY_KEY)
_TOUCH_ENTRY = entries.update().where(_ENTRY_KEY).values(last_seen=sa.bindparam("k_now"))
_SELECT_TOMBSTONE = sa.select(tombstones.c.story_id, tombstones.c.reason).where(
    (tombstones.c.source == sa.bindparam("k_source"))
    & (tombstones.c.identity == sa.bindparam("k_identity"))
)
_DELETE_TOMBSTONE = tombstones.delete().where(
    (tombstones.c.source == sa.bindparam("k_source"))
    & (tombstones.c.identity == sa.bindparam("k_identity"))
)
_STORY_BY_LINK = (
    sa.select(entries.c.story_id).where(entries.c.link_key == sa.bindparam("k_key")).limit(1)
)
_STORY_BY_CONTENT = (
    sa.select(entries.c.story_id).where(entries.c.content_key == sa.bindparam("k_key")).limit(1)
)
_STORY_TOPICS = sa.select(story_topics.c.topic).where(
    story_topics.c.story_id == sa.bindparam("k_story")
)


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


def open_store(url: str, *, near: NearDupSettings | None = None) -> SQLStore:
    """Open (and migrate) the store at a SQLAlchemy URL.

    Args:
        url: ``sqlite:///path/to/file.db``, ``sqlite://`` (in memory) or
            ``postgresql+psycopg://...``.
        near: near-duplicate settings (the ``dedup:`` config section).

    Raises:
        StoreError: the database cannot be opened or migrated.
    """
    try:
        if url.startswith("sqlite"):
            db = url.removeprefix("sqlite:///")
            if db and db != url and not db.startswith(":memory:"):
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=sa.pool.StaticPool
                if url in ("sqlite://", "sqlite:///:memory:")
                else None,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        _migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"{_safe_url(url)}: cannot open store: {exc.__class__.__name__}: {exc}"
        ) from exc
    except OSError as exc:
        raise StoreError(f"{_safe_url(url)}: cannot open store: {exc}") from exc
    return SQLStore(engine, near=near)


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web server read while an update writes; NORMAL sync is
    # durable across process crashes (only an OS crash can lose the last commit).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _migrate(engine: Engine) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _json_dateline(d: Dateline | None) -> dict[str, Any] | None:
    return None if d is None else {"place": d.place, "agency": d.agency}


def _json_origin(o: Origin | None) -> dict[str, Any] | None:
    return None if o is None else dataclasses.asdict(o)


def _entry_values(item: Item) -> dict[str, Any]:
    return {
        "title": item.title,
        "link": item.link,
        "content_html": item.content_html,
        "summary": item.summary,
        "published": item.published,
        "updated": item.updated,
        "authors": list(item.authors),
        "tags": list(item.tags),
        "language": item.language,
        "dateline": _json_dateline(item.dateline),
        "related": [{"title": r.title, "link": r.link} for r in item.related],
        "origin": _json_origin(item.origin),
        "content_hash": item.content_hash,
        "link_key": dedup.link_key(item),
        "content_key": dedup.content_key(item),
    }


def _item_from_row(row: Any) -> Item:
    m = row._mapping
    return Item(
        source=m["source"],
        identity=m["identity"],
        title=m["title"],
        link=m["link"],
        content_html=m["content_html"],
        summary=m["summary"],
        published=m["published"],
        updated=m["updated"],
        authors=tuple(m["authors"] or ()),
        tags=tuple(m["tags"] or ()),
        language=m["language"],
        dateline=Dateline(**m["dateline"]) if m["dateline"] else None,
        related=tuple(Related(r["title"], r.get("link")) for r in m["related"] or ()),
        origin=Origin(**m["origin"]) if m["origin"] else None,
        content_hash=m["content_hash"],
    )


class SQLStore:
    """The store. Thread-safe through SQLAlchemy's pool; one write at a time on SQLite."""

    def __init__(self, engine: Engine, *, near: NearDupSettings | None = None) -> None:
        self.engine = engine
        #: near-duplicate matching settings
        self.near = near or NearDupSettings()

    def close(self) -> None:
        self.engine.dispose()

    # -- sources -------------------------------------------------------------

    def sync_sources(self, specs: Sequence[SourceSpec], *, now: datetime) -> IngestReport:
        """Make the stored sources match the config.

        New sources get a state row; a source whose configured location
        changed starts over at the new location; a removed source's entries
        are removed (its stories leave the topic feeds).
        """
        now = utc(now)
        report = IngestReport()
        wanted = {s.name: s for s in specs}
        with self.engine.begin() as conn:
            stored = {
                r.name: r for r in conn.execute(sa.select(sources.c.name, sources.c.configured))
            }
            for name, spec in wanted.items():
                row = stored.get(name)
                if row is None:
                    conn.execute(
                        sources.insert().values(
                            name=name,
                            kind=spec.kind.value,
                            configured=spec.location,
                            location=spec.location,
                            consecutive_failures=0,
                            moved_seen=0,
                            url_history=[],
                            gone=False,
                        )
                    )
                elif row.configured != spec.location:
                    conn.execute(
                        sources.update()
                        .where(sources.c.name == name)
                        .values(
                            kind=spec.kind.value,
                            configured=spec.location,
                            location=spec.location,
                            etag=None,
                            last_modified=None,
                            next_due_at=None,
                            consecutive_failures=0,
                            moved_to=None,
                            moved_seen=0,
                            discovered_feed=None,
                            gone=False,
                        )
                    )
            for name in set(stored) - set(wanted):
                identities = conn.execute(
                    sa.select(entries.c.identity).where(entries.c.source == name)
                ).scalars()
                report += self._remove(conn, name, list(identities), now=now, reason="deleted")
                conn.execute(files.delete().where(files.c.source == name))
                conn.execute(sources.delete().where(sources.c.name == name))
        return report

    def get_state(self, name: str) -> SourceState | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.name == name)).first()
        return None if row is None else self._state(row)

    def states(self) -> list[SourceState]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(sources).order_by(sources.c.name)).all()
        return [self._state(r) for r in rows]

    @staticmethod
    def _state(row: Any) -> SourceState:
        m = dict(row._mapping)
        for key in ("kind", "configured"):
            m.pop(key)
        m["url_history"] = tuple(m["url_history"] or ())
        m["last_outcome"] = Outcome(m["last_outcome"]) if m["last_outcome"] else None
        return SourceState(**m)

    def save_state(self, state: SourceState) -> None:
        values = dataclasses.asdict(state)
        name = values.pop("name")
        values["url_history"] = list(state.url_history)
        values["last_outcome"] = state.last_outcome.value if state.last_outcome else None
        values = {k: v for k, v in values.items() if k in sources.c}
        with self.engine.begin() as conn:
            conn.execute(sources.update().where(sources.c.name == name).values(**values))

    def due_sources(self, now: datetime) -> list[str]:
        """Names of sources due at ``now`` (never polled, or next_due_at passed), soonest first."""
        query = (
            sa.select(sources.c.name)
            .where(sources.c.gone.is_(False))
            .where(sa.or_(sources.c.next_due_at.is_(None), sources.c.next_due_at <= now))
            .order_by(sources.c.next_due_at.is_not(None), sources.c.next_due_at, sources.c.name)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def entry_counts(self) -> dict[str, int]:
        """Stored entries per source."""
        query = sa.select(entries.c.source, sa.func.count()).group_by(entries.c.source)
        with self.engine.connect() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}

    # -- seed files ----------------------------------------------------------

    def file_records(self, source: str) -> dict[str, FileRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(files).where(files.c.source == source))
            return {
                r.relpath: FileRecord(
                    relpath=r.relpath,
                    size=r.size,
                    mtime_ns=r.mtime_ns,
                    content_hash=r.content_hash,
                    identities=tuple(r.identities or ()),
                    error=r.error,
                )
                for r in rows
            }

    def apply_files(
        self, source: str, changes: Sequence[FileChange], *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        """Ingest and remove seed files' entries together with their records, in one transaction.

        A crash leaves each file either fully applied (entries and record) or
        not at all, so the next pass re-reads exactly the files it must.
        New and changed files are applied before deletions, so a renamed file
        joins its story (by content) before the old name's entry leaves it.
        """
        now = utc(now)
        report = IngestReport()
        with self.engine.begin() as conn:
            for change in sorted(changes, key=lambda c: c.record is None):
                for item in change.items:
                    report += self._ingest_one(conn, item, now=now, matchers=matchers)
                if change.removed:
                    report += self._remove(
                        conn, source, change.removed, now=now, reason="deleted", matchers=matchers
                    )
                key = (files.c.source == source) & (files.c.relpath == change.relpath)
                conn.execute(files.delete().where(key))
                if change.record is not None:
                    rec = change.record
                    conn.execute(
                        files.insert().values(
                            source=source,
                            relpath=rec.relpath,
                            size=rec.size,
                            mtime_ns=rec.mtime_ns,
                            content_hash=rec.content_hash,
                            identities=list(rec.identities),
                            error=rec.error,
                        )
                    )
        return report

    # -- entries and stories -------------------------------------------------

    def ingest(
        self, items: Iterable[Item], *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        """Store entries, deduplicating them into stories, in one transaction.

        Args:
            items: normalised entries (any sources).
            now: the time of this update.
            matchers: the configured topics' predicates.

        Returns:
            Counts and the topics whose documents changed.
        """
        now = utc(now)
        report = IngestReport()
        with self.engine.begin() as conn:
            for item in items:
                report += self._ingest_one(conn, item, now=now, matchers=matchers)
        return report

    def _ingest_one(
        self, conn: Connection, item: Item, *, now: datetime, matchers: TopicMatchers
    ) -> IngestReport:
        key = (entries.c.source == item.source) & (entries.c.identity == item.identity)
        ident = {"k_source": item.source, "k_identity": item.identity}
        row = conn.execute(_SELECT_ENTRY, ident).first()
        existing = (row.story_id, row.content_hash) if row else None
        tomb = None
        link_match = content_match = None
        values = _entry_values(item)
        if existing is None:
            t = conn.execute(_SELECT_TOMBSTONE, ident).first()
            tomb = (t.story_id, t.reason) if t else None
            if values["link_key"]:
                link_match = conn.execute(_STORY_BY_LINK, {"k_key": values["link_key"]}).scalar()
            if link_match is None and values["content_key"]:
                content_match = conn.execute(
                    _STORY_BY_CONTENT, {"k_key": values["content_key"]}
                ).scalar()
        near = None
        sketch = None
        if existing is not None and existing[1] == item.content_hash:
            pass  # unchanged: nothing to sketch
        elif self.near.enabled:
            sketch = neardup.sketch(item, self.near)
            if existing is None and link_match is None and content_match is None and sketch:
                near = story_index.find_near(conn, item, sketch, self.near, now=now)
        decision = dedup.decide(
            item,
            existing=existing,
            tombstone=tomb,
            link_match=link_match,
            content_match=content_match,
            near_match=near.story_id if near else None,
        )
        story_id = decision.story_id
        if decision.action is Action.UNCHANGED:
            conn.execute(_TOUCH_ENTRY, {**ident, "k_now": now})
            return IngestReport(unchanged=1)
        if decision.action is Action.SKIP or story_id is None:
            return IngestReport(skipped=1)
        story_index.index_entry(conn, item, sketch)
        if decision.action is Action.UPDATE:
            conn.execute(entries.update().where(key).values(**values, last_seen=now))
            dirty = self._refresh_story(conn, story_id, now=now, matchers=matchers)
            return IngestReport(updated=1, dirty_topics=dirty)
        rule = (
            "new"
            if decision.action is Action.NEW
            else "link"
            if link_match
            else "content"
            if content_match
            else "near"
        )
        story_index.record_join(conn, item, story_id, rule, match=near, now=now)
        if decision.action is Action.NEW:
            conn.execute(
                stories.insert(),
                {
                    "id": story_id,
                    "canonical_source": item.source,
                    "canonical_identity": item.identity,
                    "published": item.published,
                    "updated": item.updated,
                    "first_seen": now,
                    "content_hash": item.content_hash,
                },
            )
        conn.execute(
            entries.insert(),
            {
                "source": item.source,
                "identity": item.identity,
                "story_id": story_id,
                "first_seen": now,
                "last_seen": now,
                **values,
            },
        )
        if tomb is not None:
            conn.execute(_DELETE_TOMBSTONE, ident)
        if decision.action is Action.JOIN:
            # Provenance is published with the story: its topics must be redone.
            dirty = frozenset(conn.execute(_STORY_TOPICS, {"k_story": story_id}).scalars())
            best = self._fullest_entry(conn, story_id)
            if best is not None:
                conn.execute(
                    stories.update()
                    .where(stories.c.id == story_id)
                    .values(canonical_source=best[0], canonical_identity=best[1])
                )
                dirty |= self._refresh_story(conn, story_id, now=now, matchers=matchers)
            return IngestReport(merged=1, dirty_topics=dirty)
        matched = frozenset(name for name, match in matchers.items() if match(item))
        if matched:
            conn.execute(
                story_topics.insert(),
                [{"topic": t, "story_id": story_id, "matched_at": now} for t in sorted(matched)],
            )
        return IngestReport(new=1, dirty_topics=matched)

    def _refresh_story(
        self, conn: Connection, story_id: str, *, now: datetime, matchers: TopicMatchers | None
    ) -> frozenset[str]:
        """Re-derive a story from its canonical entry after a change; return dirty topics.

        With ``matchers`` None, topic membership is kept as it is.
        """
        story = conn.execute(sa.select(stories).where(stories.c.id == story_id)).first()
        if story is None:
            return frozenset()
        old_topics = frozenset(
            conn.execute(
                sa.select(story_topics.c.topic).where(story_topics.c.story_id == story_id)
            ).scalars()
        )
        canonical = conn.execute(
            sa.select(entries).where(
                (entries.c.source == story.canonical_source)
                & (entries.c.identity == story.canonical_identity)
            )
        ).first()
        if canonical is None:
            # The canonical entry left: the next by the canonical rule takes over.
            best = self._fullest_entry(conn, story_id)
            if best is None:
                return old_topics
            canonical = conn.execute(
                sa.select(entries).where(
                    (entries.c.source == best[0]) & (entries.c.identity == best[1])
                )
            ).first()
            if canonical is None:
                return old_topics
        item = _item_from_row(canonical)
        changes: dict[str, Any] = {
            "canonical_source": item.source,
            "canonical_identity": item.identity,
        }
        if item.content_hash != story.content_hash:
            changes["content_hash"] = item.content_hash
            changes["updated"] = dedup.next_updated(story.updated, item.updated, now)
        conn.execute(stories.update().where(stories.c.id == story_id).values(**changes))
        if "content_hash" not in changes:
            return (
                old_topics if changes["canonical_source"] != story.canonical_source else frozenset()
            )
        if matchers is None:
            return old_topics
        new_topics = frozenset(name for name, match in matchers.items() if match(item))
        if old_topics - new_topics:
            conn.execute(
                story_topics.delete().where(
                    (story_topics.c.story_id == story_id)
                    & story_topics.c.topic.in_(sorted(old_topics - new_topics))
                )
            )
        if new_topics - old_topics:
            conn.execute(
                story_topics.insert(),
                [
                    {"topic": t, "story_id": story_id, "matched_at": now}
                    for t in sorted(new_topics - old_topics)
                ],
            )
        return old_topics | new_topics

    @staticmethod
    def _fullest_entry(conn: Connection, story_id: str) -> tuple[str, str] | None:
        """The story's canonical entry by rule: the fullest body text, then the earliest seen.

        Ties go to the earliest first seen, then source and identity, so the
        canonical entry changes only when a fuller telling arrives.
        """
        rows = conn.execute(
            sa.select(entries.c.source, entries.c.identity, entries.c.content_html)
            .where(entries.c.story_id == story_id)
            .order_by(entries.c.first_seen, entries.c.source, entries.c.identity)
        ).all()
        best: tuple[str, str] | None = None
        most = -1
        for row in rows:
            words = len(tokens(neardup.body_text_html(row.content_html)))
            if words > most:
                best, most = (row.source, row.identity), words
        return best

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
            reason: ``deleted`` (the source removed it; it may come back under
                the same story id) or ``pruned`` (retention; never re-imported).
            matchers: to re-match a story whose canonical entry changes; None
                keeps its topics.
        """
        now = utc(now)
        with self.engine.begin() as conn:
            return self._remove(conn, source, identities, now=now, reason=reason, matchers=matchers)

    def _remove(
        self,
        conn: Connection,
        source: str,
        identities: Sequence[str],
        *,
        now: datetime,
        reason: str,
        matchers: TopicMatchers | None = None,
    ) -> IngestReport:
        report = IngestReport()
        for identity in identities:
            key = (entries.c.source == source) & (entries.c.identity == identity)
            story_id = conn.execute(sa.select(entries.c.story_id).where(key)).scalar()
            if story_id is None:
                continue
            conn.execute(entries.delete().where(key))
            story_index.forget_entry(conn, source, identity)
            tomb_key = (tombstones.c.source == source) & (tombstones.c.identity == identity)
            conn.execute(tombstones.delete().where(tomb_key))
            conn.execute(
                tombstones.insert().values(
                    source=source,
                    identity=identity,
                    story_id=story_id,
                    reason=reason,
                    removed_at=now,
                )
            )
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(entries)
                .where(entries.c.story_id == story_id)
            ).scalar_one()
            if left:
                # Another source still carries the story: it stays, re-derived.
                dirty = self._refresh_story(conn, story_id, now=now, matchers=matchers)
                dirty |= frozenset(
                    conn.execute(
                        sa.select(story_topics.c.topic).where(story_topics.c.story_id == story_id)
                    ).scalars()
                )
                report += IngestReport(dirty_topics=dirty)
                continue
            dirty = frozenset(
                conn.execute(
                    sa.select(story_topics.c.topic).where(story_topics.c.story_id == story_id)
                ).scalars()
            )
            conn.execute(story_topics.delete().where(story_topics.c.story_id == story_id))
            conn.execute(stories.delete().where(stories.c.id == story_id))
            report += IngestReport(removed=1, dirty_topics=dirty)
        return report

    # -- topics --------------------------------------------------------------

    def sync_topics(
        self, queries: Mapping[str, str], matchers: TopicMatchers, *, now: datetime
    ) -> frozenset[str]:
        """Recompute membership of topics that are new or whose query changed.

        Args:
            queries: topic name -> query text, as configured.
            matchers: topic name -> predicate (same keys).

        Returns:
            Topics whose membership was recomputed or dropped.
        """
        now = utc(now)
        dirty: set[str] = set()
        with self.engine.begin() as conn:
            stored = {
                r.name: r.query for r in conn.execute(sa.select(topics.c.name, topics.c.query))
            }
            changed = [name for name, q in queries.items() if stored.get(name) != q]
            for name in set(stored) - set(queries):
                conn.execute(story_topics.delete().where(story_topics.c.topic == name))
                conn.execute(topics.delete().where(topics.c.name == name))
                dirty.add(name)
            if changed:
                conn.execute(story_topics.delete().where(story_topics.c.topic.in_(changed)))
                rows = conn.execute(
                    sa.select(entries, stories.c.id.label("sid")).join(
                        stories,
                        (stories.c.canonical_source == entries.c.source)
                        & (stories.c.canonical_identity == entries.c.identity),
                    )
                )
                batch: list[dict[str, Any]] = []
                for row in rows:
                    item = _item_from_row(row)
                    batch.extend(
                        {"topic": name, "story_id": row.sid, "matched_at": now}
                        for name in changed
                        if matchers[name](item)
                    )
                if batch:
                    conn.execute(story_topics.insert(), batch)
                for name in changed:
                    conn.execute(topics.delete().where(topics.c.name == name))
                    conn.execute(
                        topics.insert().values(name=name, query=queries[name], synced_at=now)
                    )
                dirty.update(changed)
        return frozenset(dirty)

    def topic_stories(self, topic: str) -> list[Story]:
        """Every story in a topic, newest first by (published, id)."""
        query = (
            sa.select(
                entries,
                stories.c.id.label("sid"),
                stories.c.published.label("s_published"),
                stories.c.updated.label("s_updated"),
                stories.c.first_seen.label("s_first_seen"),
            )
            .join(
                stories,
                (stories.c.canonical_source == entries.c.source)
                & (stories.c.canonical_identity == entries.c.identity),
            )
            .join(story_topics, story_topics.c.story_id == stories.c.id)
            .where(story_topics.c.topic == topic)
            .order_by(stories.c.published.desc(), stories.c.id.desc())
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            provenance = self._provenance(conn, [r.sid for r in rows])
            via = self._via(conn, [r.sid for r in rows])
        return [
            Story(
                id=r.sid,
                item=_item_from_row(r),
                published=r.s_published,
                updated=r.s_updated,
                first_seen=r.s_first_seen,
                provenance=provenance.get(r.sid, ()),
                via=via.get(r.sid, ()),
            )
            for r in rows
        ]

    @staticmethod
    def _via(conn: Connection, story_ids: Sequence[str]) -> dict[str, tuple[Via, ...]]:
        out: dict[str, list[Via]] = {}
        for chunk in _chunks(story_ids, 500):
            rows = conn.execute(
                sa.select(entries.c.story_id, entries.c.source, entries.c.link, entries.c.origin)
                .where(entries.c.story_id.in_(chunk))
                .order_by(
                    entries.c.story_id, entries.c.first_seen, entries.c.source, entries.c.identity
                )
            )
            for row in rows:
                title = (row.origin or {}).get("title")
                out.setdefault(row.story_id, []).append(Via(row.source, title, row.link))
        return {k: tuple(v) for k, v in out.items()}

    @staticmethod
    def _provenance(conn: Connection, story_ids: Sequence[str]) -> dict[str, tuple[Origin, ...]]:
        out: dict[str, list[Origin]] = {}
        for chunk in _chunks(story_ids, 500):
            rows = conn.execute(
                sa.select(entries.c.story_id, entries.c.source, entries.c.origin)
                .where(entries.c.story_id.in_(chunk))
                .order_by(
                    entries.c.story_id, entries.c.first_seen, entries.c.source, entries.c.identity
                )
            )
            for row in rows:
                origin = Origin(**row.origin) if row.origin else Origin(source=row.source)
                seen = out.setdefault(row.story_id, [])
                if origin not in seen:
                    seen.append(origin)
        return {k: tuple(v) for k, v in out.items()}

    def topic_counts(self) -> dict[str, int]:
        query = sa.select(story_topics.c.topic, sa.func.count()).group_by(story_topics.c.topic)
        with self.engine.connect() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}

    def old_entries(self, before: datetime) -> list[tuple[str, str, str]]:
        """Entries of stories published before ``before``: ``(source, identity, story_id)``.

        The retention job prunes these, except stories still in a topic's
        current feed.
        """
        query = (
            sa.select(entries.c.source, entries.c.identity, entries.c.story_id)
            .join(stories, stories.c.id == entries.c.story_id)
            .where(stories.c.published < utc(before))
            .order_by(entries.c.source, entries.c.identity)
        )
        with self.engine.connect() as conn:
            return [(r.source, r.identity, r.story_id) for r in conn.execute(query)]

    def stories(self, topic: str | None = None) -> list[dict[str, Any]]:
        """Every story (or a topic's) with its topics and entries, oldest first.

        Each entry names its source, identity (the guid or atom:id as the
        source published it), canonical link, origin and, for seed files,
        the file's path relative to its folder (``path``).
        """
        with self.engine.connect() as conn:
            rows = story_index.story_rows(conn, topic)
            paths: dict[tuple[str, str], str] = {}
            for rec in conn.execute(sa.select(files.c.source, files.c.relpath, files.c.identities)):
                for identity in rec.identities or ():
                    paths[(rec.source, identity)] = rec.relpath
        for story in rows:
            for entry in story["entries"]:
                entry["path"] = paths.get((entry["source"], entry["identity"]))
        return rows

    def story_joins(self, story_id: str) -> list[dict[str, Any]]:
        """How each entry of a story joined it: rule, matched entry, scores."""
        with self.engine.connect() as conn:
            return story_index.join_rows(conn, story_id)

    def story_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(stories.c.id)).scalars())


def _chunks(seq: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
