"""Frozen value types passed across module boundaries.

Every datetime here is timezone-aware and normalised to UTC at construction;
a naive datetime is a programming error and raises :class:`ValueError`.
Collections are tuples so values stay hashable and immutable.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "CLOCK_SKEW",
    "Dateline",
    "FeedInfo",
    "FileChange",
    "FileRecord",
    "FullContent",
    "Item",
    "NearDupSettings",
    "Origin",
    "Outcome",
    "ParsedDocument",
    "Poll",
    "RawEntry",
    "Related",
    "RuleDrop",
    "SourceKind",
    "SourceResult",
    "SourceRules",
    "SourceSpec",
    "SourceState",
    "Story",
    "TopicChange",
    "TopicOutline",
    "TopicSpec",
    "Vector",
    "Via",
    "WebhookTarget",
    "not_in_future",
    "utc",
]


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; raise ``ValueError`` for a naive datetime."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime not allowed: {value!r}")
    return value.astimezone(UTC)


#: how far a source's clock may run ahead of ours before its date counts as wrong
CLOCK_SKEW = timedelta(minutes=5)


def not_in_future(when: datetime | None, now: datetime) -> datetime | None:
    """The one rule for dates a source gives that lie ahead of ``now``.

    A date up to :data:`CLOCK_SKEW` ahead is the source's clock running fast:
    it is kept, but never later than ``now``. A date further ahead is wrong (a
    typo, a post scheduled for later, a time zone off by hours): it is dropped,
    so the caller falls back to what else it knows.

    Args:
        when: the source's date (aware), or None.
        now: the current time (aware).

    Returns:
        ``min(when, now)``, or None when ``when`` is None or later than
        ``now + CLOCK_SKEW``.
    """
    if when is None or when > now + CLOCK_SKEW:
        return None
    return min(when, now)


def _normalise_datetimes(obj: Any) -> None:
    """Convert every datetime field of a frozen dataclass to UTC, in place."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        # The fields typed as datetimes: no other field holds one.
        fields = dataclasses.fields(obj)
        names = tuple(f.name for f in fields if "datetime" in str(f.type))
        _FIELD_NAMES[type(obj)] = names
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, datetime) and value.tzinfo is not UTC:
            object.__setattr__(obj, name, utc(value))


#: each dataclass's datetime fields, found once (``fields`` costs more than the check)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class SourceKind(enum.StrEnum):
    """Where a source's bytes come from."""

    #: a folder of local seed files (``path:`` in the config)
    FILES = "files"
    #: a remote URL: a feed, or an HTML page whose feed is discovered
    URL = "url"


@dataclass(frozen=True, slots=True)
class FullContent:
    """A URL source's ``full_content``: fetch each new entry's page for its article."""

    #: CSS selector of the article body; None lets the article extractor find it
    selector: str | None = None
    #: pages one update fetches at most; the other new entries wait for the next poll
    max_pages: int = 50


@dataclass(frozen=True, slots=True)
class SourceRules:
    """A source's ``rules:``: queries in the topic language, applied to its entries at ingest."""

    #: entries this query matches are dropped
    block: str | None = None
    #: entries this query does not match are dropped
    keep: str | None = None

    @property
    def signature(self) -> str:
        """What the store compares to notice a changed rule (and re-apply it)."""
        return f"block={self.block or ''}\nkeep={self.keep or ''}"


@dataclass(frozen=True, slots=True)
class RuleDrop:
    """An entry a source's rule dropped at ingest (what ``sources`` and ``explain`` show)."""

    #: ``block`` (its query matched) or ``keep`` (its query did not)
    rule: str
    title: str
    link: str | None
    #: the clauses that decided, e.g. ``title contains "video"``
    reason: str


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One configured source, as validated from the YAML."""

    #: unique name, used in logs, CLI output and provenance
    name: str
    kind: SourceKind
    #: absolute folder path (FILES) or absolute http(s) URL (URL)
    location: str
    #: how often to poll
    interval: timedelta
    #: overall deadline of one fetch
    timeout: timedelta
    #: size cap of one document (after decompression)
    max_bytes: int
    #: tags added to every item of this source (matchable as ``tag:``)
    tags: tuple[str, ...] = ()
    #: extra HTTP request headers
    headers: tuple[tuple[str, str], ...] = ()
    #: display title; defaults to the feed's own title
    title: str | None = None
    #: fetch each new entry's page for its full article (URL sources only)
    full_content: FullContent | None = None
    #: ``enabled: false`` in the config: never polled, its stories kept
    enabled: bool = True
    #: a URL source failing every poll this long is put to rest; None: never
    disable_after: timedelta | None = timedelta(days=30)
    #: ``block``/``keep`` queries applied to its entries at ingest; None: no rules
    rules: SourceRules | None = None
    #: ``interval: auto``: the interval follows the source's rhythm (``interval`` is its base)
    adaptive: bool = False
    #: subscribe to the WebSub hub the feed names (``websub: false`` turns it off)
    websub: bool = True


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One of a topic's ``notify:`` targets: new stories are POSTed to it, signed."""

    url: str
    #: the HMAC key of ``X-Aggregator-Signature``
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One published topic, as validated from the YAML."""

    #: URL-safe name: ``/topics/<name>.atom``
    name: str
    title: str
    #: query in the topic language (see :mod:`aggregator.topics`)
    query: str
    description: str = ""
    #: newest stories kept in the topic feed itself; older ones go to archives
    max_items: int = 50
    #: private topics need a token and are absent from the index and OPML
    private: bool = False
    tokens: tuple[str, ...] = ()
    #: ``Cache-Control: max-age`` for this topic's documents
    cache_max_age: timedelta = timedelta(minutes=5)
    #: configured source names a story must come from (``tag:`` groups
    #: resolved at load); empty: every source
    sources: tuple[str, ...] = ()
    #: stories published longer ago than this are left out; None: any age
    max_age: timedelta | None = None
    #: language tags a story must have (``en`` admits ``en-GB``); empty: any
    lang: tuple[str, ...] = ()
    #: an updated story: ``replace`` keeps its place (feeds are ordered by
    #: published); ``resurface`` moves it up by its new ``updated``
    updates: str = "replace"
    #: webhooks told of each new story of the topic
    notify: tuple[WebhookTarget, ...] = ()


@dataclass(frozen=True, slots=True)
class NearDupSettings:
    """How near is near enough: the ``dedup:`` config section.

    Read by :mod:`aggregator.stories.neardup`.
    """

    #: near-duplicate matching on or off (exact repeats always merge)
    enabled: bool = True
    #: bodies shorter than this (words) are only merged when exactly equal
    min_words: int = 25
    #: shared shingles over the smaller text's shingles, to join a story
    containment: float = 0.5
    #: above this containment, numbers may differ (a later version updates a toll)
    strict_containment: float = 0.8
    #: words per shingle
    shingle_words: int = 2
    #: LSH bands and rows per band (bands * rows MinHash permutations)
    bands: int = 16
    rows: int = 3
    #: a candidate story must be published, or last seen, within this time
    window: timedelta = timedelta(days=14)
    #: words of the lead searched for numbers by the follow-up guard
    lead_words: int = 60
    #: paraphrases: the semantic signal finds candidates, the specifics decide
    semantic: bool = False
    #: cosine similarity of title and lead a candidate needs
    similarity: float = 0.78
    #: a semantic candidate must be published within this time of the new entry
    semantic_window: timedelta = timedelta(hours=36)
    #: languages the model knows (an entry in another keeps the other rules)
    semantic_languages: tuple[str, ...] = ("en",)
    #: join a paraphrase in another of those languages
    cross_language: bool = False


@dataclass(frozen=True, slots=True)
class Vector:
    """One text's embedding as stored: int8 components times ``scale``, and its sign bits.

    Made by :mod:`aggregator.stories.semantic` (in a parse worker, or wherever the model is
    loaded); read here without numpy, so the daemon's own process needs no model.
    """

    #: DIM int8 values
    values: bytes
    scale: float
    #: DIM / 8 bytes: bit i set when component i is positive
    code: bytes

    def cosine(self, other: Vector) -> float:
        """The cosine similarity with another stored vector, in plain Python."""
        dot: int = sum(map(operator.mul, array("b", self.values), array("b", other.values)))
        return dot * self.scale * other.scale


@dataclass(frozen=True, slots=True)
class Dateline:
    """The dateline of a news article: ``Qom (IP): ...``."""

    place: str
    #: agency code in parentheses, e.g. ``IP``, ``AFP``; None when absent
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class Related:
    """A related headline kept apart from the body ("Read More:", "See also:")."""

    title: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """The document an entry came from; published as ``atom:source``."""

    #: the configured source's name
    source: str
    #: the feed's (or seed file's) title
    title: str | None = None
    #: the feed's alternate (HTML) link, when it has one
    link: str | None = None
    #: the feed's own id (Atom id, RSS channel link) when it has one
    feed_id: str | None = None


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as a parser read it: lenient, possibly incomplete.

    ``normalise`` turns it into an :class:`Item`. Text fields may hold HTML
    or entities; links may be relative to ``base_url``.
    """

    #: the document's own id for the entry (guid, Atom id, seed hash); None → derived
    identity: str | None = None
    title: str | None = None
    link: str | None = None
    #: full content; HTML unless ``content_is_html`` is False
    content: str | None = None
    content_is_html: bool = True
    #: short description; HTML unless ``summary_is_html`` is False
    summary: str | None = None
    summary_is_html: bool = True
    published: datetime | None = None
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None
    dateline: Dateline | None = None
    related: tuple[Related, ...] = ()
    #: base for resolving relative links in ``link`` and ``content``
    base_url: str | None = None
    #: when the parser fell back to a guessed date (file mtime), True
    date_is_guess: bool = False
    #: False when the document says the title is plain text (Atom ``type="text"``):
    #: a literal ``<b>`` in it is text, kept and escaped on output
    title_is_html: bool = True

    def __post_init__(self) -> None:
        _normalise_datetimes(self)


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """Document-level facts a parser found."""

    title: str | None = None
    link: str | None = None
    feed_id: str | None = None
    language: str | None = None
    #: RSS ``<ttl>``, a hint for the scheduler
    ttl: timedelta | None = None
    #: WebSub hub the feed advertises
    hub: str | None = None
    #: the feed's own URL (``rel="self"``, JSON Feed ``feed_url``): the WebSub topic
    self_url: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser returns for one document."""

    entries: tuple[RawEntry, ...]
    feed: FeedInfo = field(default_factory=FeedInfo)
    #: lenient-edge notes: entries skipped, encoding guessed... (one line each)
    warnings: tuple[str, ...] = ()
    #: an XML feed's fast path: "taken", or why it declined (feedparser read it);
    #: None when it was not tried
    fast_path: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """A normalised entry: complete, valid, ready to store and publish.

    Invariants: ``title`` is non-empty plain text; ``content_html`` is
    sanitised; ``link`` is absolute and canonical or None; dates are UTC.
    """

    #: configured source name
    source: str
    #: identity within the source (guid, link, seed hash or content hash)
    identity: str
    title: str
    link: str | None
    content_html: str
    #: plain-text summary
    summary: str
    published: datetime
    updated: datetime
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None
    dateline: Dateline | None = None
    related: tuple[Related, ...] = ()
    origin: Origin | None = None
    #: hash of the normalised title, link and content: changes iff content changes
    content_hash: str = ""
    #: the entry's link as the source wrote it (``link`` is canonical), None when absent
    link_as_published: str | None = None
    #: the guid, Atom id or JSON Feed id as the source wrote it, None when absent
    guid: str | None = None

    def __post_init__(self) -> None:
        _normalise_datetimes(self)
        if not self.title.strip():
            raise ValueError(f"{self.source}: {self.identity}: Item needs a title")


@dataclass(frozen=True, slots=True)
class Via:
    """One entry merged into a story, as its published provenance names it."""

    #: the configured source's name
    source: str
    #: the source's (feed's) title
    title: str | None = None
    #: the entry's canonical link, when it has one
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Story:
    """The deduplicated unit that topics publish.

    ``id`` is minted once and never changes. ``item`` is the canonical entry;
    ``provenance`` lists every source that carried the story.
    """

    id: str
    item: Item
    published: datetime
    #: moves only when the canonical content really changes
    updated: datetime
    first_seen: datetime
    provenance: tuple[Origin, ...] = ()
    #: every entry merged into the story, in the order they were first seen
    via: tuple[Via, ...] = ()

    def __post_init__(self) -> None:
        _normalise_datetimes(self)


@dataclass(frozen=True, slots=True)
class TopicOutline:
    """A topic's stories without their texts: what publishing pages by.

    ``ids`` and ``versions`` are parallel and in the topic's published order
    (newest first); a story's version moves whenever what it publishes may
    have changed.
    """

    ids: tuple[str, ...]
    versions: tuple[int, ...]
    #: the newest ``updated`` of the topic's stories; None for an empty topic
    updated: datetime | None

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.versions):
            raise ValueError("TopicOutline: ids and versions differ in length")
        if self.updated is not None:
            object.__setattr__(self, "updated", utc(self.updated))


@dataclass(frozen=True, slots=True)
class TopicChange:
    """A story of a topic stamped after a given change stamp (see ``stories.version``)."""

    id: str
    version: int
    published: datetime
    updated: datetime
    #: it joined the topic after that stamp (else it was in it and changed)
    joined: bool

    def __post_init__(self) -> None:
        _normalise_datetimes(self)


class Outcome(enum.StrEnum):
    """How one update of one source ended."""

    OK = "ok"
    NOT_MODIFIED = "not-modified"
    ERROR = "error"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class SourceState:
    """Fetch state of one source, persisted between runs."""

    name: str
    #: current URL (after permanent redirects) or folder
    location: str
    etag: str | None = None
    last_modified: str | None = None
    last_status: int | None = None
    last_outcome: Outcome | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    next_due_at: datetime | None = None
    consecutive_failures: int = 0
    last_error_class: str | None = None
    last_error: str | None = None
    retry_after: datetime | None = None
    #: target of a permanent redirect seen but not yet confirmed
    moved_to: str | None = None
    #: how many consecutive polls saw the same permanent redirect
    moved_seen: int = 0
    #: earlier URLs of this source, oldest first
    url_history: tuple[str, ...] = ()
    #: the feed chosen by HTML autodiscovery, when the URL is a page
    discovered_feed: str | None = None
    #: 410 Gone: polling stopped
    gone: bool = False
    #: hash of the last 200 body parsed; an equal body is not parsed again
    body_hash: str | None = None
    #: the problems of the last read (one line each: a seed file that is empty,
    #: a feed read leniently), kept until the source or the file is read again
    problems: tuple[str, ...] = ()
    #: the WebSub hub and topic (the feed's self URL) its last read named
    hub: str | None = None
    self_url: str | None = None
    #: when the current run of failed polls began (None: the last poll succeeded)
    failing_since: datetime | None = None
    #: when the source was put to rest (gone, or failing too long): never polled
    #: until ``aggregator enable``; None: active
    disabled_at: datetime | None = None
    #: why it was put to rest, one line
    disabled_reason: str | None = None

    def __post_init__(self) -> None:
        _normalise_datetimes(self)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """The result of ``update_source``: a failure is a value, never an exception."""

    source: str
    outcome: Outcome
    #: entries not seen before (new stories and entries that joined one)
    new: int = 0
    #: of ``new``, entries that joined an existing story (same link or text)
    merged: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    #: one-line problems that did not fail the source (a bad seed file, a skipped entry)
    problems: tuple[str, ...] = ()
    error_class: str | None = None
    #: one-line error when ``outcome`` is ERROR or GONE
    error: str | None = None
    http_status: int | None = None
    #: seconds of the update's own work (fetch, parse, save), without its waits for a
    #: connection slot of its host or a parse worker
    duration: float = 0.0
    #: response bytes read (the page and its discovered feed, when discovered)
    received: int = 0
    #: topics whose membership or content changed
    dirty_topics: frozenset[str] = frozenset()
    #: a feed's fast parser: "taken", or why it declined (None: not tried)
    fast_path: str | None = None
    #: why this update put the source to rest (gone, or failing too long): it is
    #: not polled again until enabled; None: it was not
    put_to_rest: str | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    """One update of one source, as the poll history keeps it."""

    source: str
    #: when the update began
    at: datetime
    outcome: Outcome
    #: the HTTP status of the response used (None: a seed folder, or no response)
    status: int | None = None
    #: fetch and parse time (neither the wait for a slot of its host nor the write
    #: that stores the poll is included)
    seconds: float = 0.0
    #: response bytes read
    received: int = 0
    #: entries not seen before, and entries whose content changed
    new: int = 0
    updated: int = 0
    error_class: str | None = None

    def __post_init__(self) -> None:
        # One datetime field: checked directly (the store reads thousands of polls at once).
        object.__setattr__(self, "at", utc(self.at))


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
