"""SQLAlchemy Core tables. The Alembic migrations in ``migrations/`` create them.

A test compares these tables with a migrated database, so a change here
without a migration fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    true,
)

__all__ = [
    "counters",
    "entries",
    "files",
    "metadata",
    "poll_history",
    "source_rules",
    "sources",
    "stories",
    "story_edits",
    "story_index",
    "story_joins",
    "story_topics",
    "story_vectors",
    "tombstones",
    "topics",
    "webhook_cursors",
    "webhook_deliveries",
    "websub_subscriptions",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no zone type: values are stored as naive UTC and tagged UTC on
    the way out. A naive datetime is refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime not allowed: {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

#: fetch state of each configured source
sources = Table(
    "sources",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),
    #: location as configured
    Column("configured", Text, nullable=False),
    #: current location (after confirmed permanent redirects)
    Column("location", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_status", Integer),
    Column("last_outcome", String(20)),
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("next_due_at", UTCDateTime, index=True),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_error_class", String(100)),
    Column("last_error", Text),
    Column("retry_after", UTCDateTime),
    Column("moved_to", Text),
    Column("moved_seen", Integer, nullable=False, default=0),
    Column("url_history", JSON, nullable=False, default=list),
    Column("discovered_feed", Text),
    Column("gone", Boolean, nullable=False, default=False),
    #: hash of the last 200 body parsed, to skip parsing an unchanged one
    Column("body_hash", Text),
    #: the problems of the last read (JSON list of lines; NULL: none)
    Column("problems", JSON),
    #: the dispatcher running this source now (None: free)
    Column("claimed_by", String(200)),
    #: when that claim lapses if its holder never saves the state (it died)
    Column("claim_expires_at", UTCDateTime),
    #: the WebSub hub and topic (self URL) the feed named at its last read
    Column("hub", Text),
    Column("self_url", Text),
    #: false: ``enabled: false`` in the config (written by sync_sources); never due
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    #: when the current run of failed polls began
    Column("failing_since", UTCDateTime),
    #: put to rest (gone, or failing for ``disable_after``): never due until enabled
    Column("disabled_at", UTCDateTime),
    Column("disabled_reason", Text),
    #: ``aggregator remove --keep-stories``: when the config drops the source,
    #: its entries (and so its stories) stay
    Column("keep_stories", Boolean),
)

#: each source's rules as last applied, and what they dropped at ingest
source_rules = Table(
    "source_rules",
    metadata,
    Column("source", String(200), primary_key=True),
    #: ``SourceRules.signature`` of the rules the stored entries were checked with
    Column("signature", Text, nullable=False),
    #: entries dropped by ``block`` and by ``keep`` since the rules last changed
    Column("blocked", Integer, nullable=False, default=0),
    Column("unkept", Integer, nullable=False, default=0),
    #: the last few drops (JSON list of {at, rule, title, link, reason}), newest first
    Column("examples", JSON, nullable=False, default=list),
    Column("changed_at", UTCDateTime, nullable=False),
)

#: what was seen of each local seed file, for change detection
files = Table(
    "files",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("relpath", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("content_hash", String(64)),
    #: identities of the entries this file produced (a feed file yields several)
    Column("identities", JSON, nullable=False, default=list),
    #: why the file could not be ingested; retried when size/mtime change
    Column("error", Text),
)

#: the deduplicated unit that topics publish
stories = Table(
    "stories",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("canonical_source", String(200), nullable=False),
    Column("canonical_identity", Text, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    #: the store's change stamp (``counters``) when what the story publishes
    #: last changed (its entries, canonical entry, dates): publishing
    #: re-renders an archive page only when one of its stories' versions
    #: moved, and finds what moved since it last ran by this column
    Column(
        "version",
        BigInteger().with_variant(Integer(), "sqlite"),
        nullable=False,
        default=0,
        server_default="0",
        index=True,
    ),
)

#: one row per (source, entry identity)
entries = Table(
    "entries",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("identity", Text, primary_key=True),
    Column(
        "story_id",
        String(100),
        ForeignKey("stories.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("title", Text, nullable=False),
    Column("link", Text),
    Column("content_html", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("authors", JSON, nullable=False, default=list),
    Column("tags", JSON, nullable=False, default=list),
    Column("language", String(35)),
    Column("dateline", JSON),
    Column("related", JSON, nullable=False, default=list),
    Column("origin", JSON),
    Column("content_hash", String(64), nullable=False),
    Column("link_key", Text, index=True),
    Column("content_key", String(64), index=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    #: the link and the guid/id as the source wrote them (``link`` is canonical),
    #: as of the entry's last content change
    Column("link_as_published", Text),
    Column("guid", Text),
)

#: topic membership, filled at ingest and refilled when a query changes
story_topics = Table(
    "story_topics",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column(
        "story_id",
        String(100),
        ForeignKey("stories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("matched_at", UTCDateTime, nullable=False),
    #: the story's ``published`` (which never changes), so a topic's stories
    #: are read in published order, and counted above a point, from one index
    Column("published", UTCDateTime),
    #: the store's change stamp when the story joined the topic
    Column("seq", BigInteger, nullable=False, default=0, server_default="0"),
    Index(None, "story_id"),
    Index("ix_story_topics_order", "topic", "published", "story_id"),
    Index("ix_story_topics_seq", "topic", "seq"),
)

#: monotonic counters; ``change`` stamps every write transaction that changes
#: what a topic publishes (see :mod:`aggregator.store.stamps`)
counters = Table(
    "counters",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: the query each topic was last matched with, to notice query changes
topics = Table(
    "topics",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("query", Text, nullable=False),
    Column("synced_at", UTCDateTime, nullable=False),
)

#: entries that were removed: 'deleted' ones may come back under their old
#: story id; 'pruned' ones (retention) are not re-imported
tombstones = Table(
    "tombstones",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("identity", Text, primary_key=True),
    Column("story_id", String(100), nullable=False),
    Column("reason", String(20), nullable=False),
    Column("removed_at", UTCDateTime, nullable=False),
)

#: near-duplicate index: one row per LSH band of each entry's text, so a new
#: entry's candidates are an indexed equality lookup (see aggregator.stories.neardup)
story_index = Table(
    "story_index",
    metadata,
    Column("band", BigInteger, primary_key=True),
    #: story_joins.entry_key of the entry (a hash of source and identity)
    Column("entry_key", BigInteger, primary_key=True),
    Index(None, "entry_key"),
)

#: how each entry came to its story: the rule and the scores that joined it
story_joins = Table(
    "story_joins",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("identity", Text, primary_key=True),
    Column("entry_key", BigInteger, nullable=False, unique=True),
    Column("story_id", String(100), nullable=False, index=True),
    #: new, link, content, near (or rebuild)
    Column("rule", String(20), nullable=False),
    #: the entry it was compared with, for a near-duplicate join
    Column("matched_source", String(200)),
    Column("matched_identity", Text),
    Column("containment", Float),
    Column("resemblance", Float),
    Column("reason", Text),
    Column("joined_at", UTCDateTime, nullable=False),
    #: the cosine similarity of a semantic join (``dedup: {semantic: true}``)
    Column("similarity", Float),
)

#: each entry's embedding for the semantic signal: int8 components, their scale, sign bits
story_vectors = Table(
    "story_vectors",
    metadata,
    #: a rewrite of an entry's row takes a new seq: a process's index reads what is new
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("entry_key", BigInteger, nullable=False, unique=True),
    Column("published", UTCDateTime, nullable=False),
    Column("language", String(20), nullable=False),
    Column("scale", Float, nullable=False),
    Column("code", LargeBinary, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)

#: an editor's decisions over stories, applied in id order (and again after ``--rebuild``)
story_edits = Table(
    "story_edits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: split, merge, hide, pin
    Column("kind", String(10), nullable=False),
    Column("story_id", String(100), nullable=False, index=True),
    #: merge: the story merged into ``story_id``; split: the new story's id
    Column("other_story", String(100)),
    #: split: the entry taken out
    Column("source", String(200)),
    Column("identity", Text),
    #: hide (None: every topic) and pin
    Column("topic", String(200)),
    #: pin: until when
    Column("until", UTCDateTime),
    Column("made_at", UTCDateTime, nullable=False),
)

#: one row per poll of a source (the last POLLS_KEPT of each), for the status page
poll_history = Table(
    "poll_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    #: when the update began
    Column("at", UTCDateTime, nullable=False, index=True),
    #: ok, not-modified, error or gone
    Column("outcome", String(20), nullable=False),
    Column("status", Integer),
    #: fetch and parse time
    Column("seconds", Float, nullable=False),
    #: response bytes read
    Column("bytes", BigInteger, nullable=False),
    #: entries new to the store, and entries whose content changed
    Column("new", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("error_class", String(100)),
    Index(None, "source", "id"),
)

#: one row per source subscribed (or being subscribed) to its WebSub hub; a
#: removed source's row stays until the hub has been told to unsubscribe
websub_subscriptions = Table(
    "websub_subscriptions",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("hub", Text, nullable=False),
    Column("topic", Text, nullable=False),
    #: the unguessable last segment of the callback URL
    Column("callback", String(64), nullable=False, unique=True),
    #: the HMAC key the hub signs distributions with
    Column("secret", String(128), nullable=False),
    #: requested, active, unsubscribing or failed
    Column("state", String(20), nullable=False),
    #: the mode the hub's next verification must be for
    Column("mode", String(20), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("last_error", Text),
)

#: one row per new story of a topic per webhook target: its body, attempts and outcome
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("target", Text, nullable=False),
    Column("story_id", String(100), nullable=False),
    #: the JSON sent, fixed when the delivery was queued
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    #: None once delivered or given up
    Column("next_attempt_at", UTCDateTime, index=True),
    Column("delivered_at", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Index("ix_webhook_deliveries_key", "topic", "target", "story_id", unique=True),
)

#: per topic and webhook target, the membership stamp up to which stories were queued
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("target", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False),
)
