"""Value types and helpers shared by the publish modules (no third-party imports).

The public names are re-exported from :mod:`aggregator.publish`.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol
from urllib.parse import urlsplit

from aggregator.model import Story, TopicSpec, utc
from aggregator.publish.paths import FeedFormat, PathKind, topic_path

__all__ = [
    "ATOM_TYPE",
    "EPOCH",
    "HTML_TYPE",
    "JSON_FEED_TYPE",
    "OPML_TYPE",
    "RSS_TYPE",
    "Document",
    "FeedRenderer",
    "Page",
    "Site",
    "TopicFeed",
    "TopicSummary",
    "TopicUrls",
    "also_reported_by",
    "body_html",
    "http_date",
    "make_document",
    "newest_updated",
    "paginate",
    "rfc3339",
    "story_anchor",
    "via_links",
    "xml_safe",
]

ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"

#: ``updated`` of a document without any story: a constant, never the build time,
#: so an empty topic renders byte-identically forever.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Characters XML 1.0 forbids (C0 controls except tab/newline/return, surrogates,
# U+FFFE/U+FFFF); lxml refuses them and readers choke on them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What no published URL may hold: spaces, C0 and C1 controls, and what XML cannot carry.
_UNFIT_IN_URL = re.compile("[\x00-\x20\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Token characters allowed in private paths: unreserved URL characters only, so a
# token is the same in a URL, a file name and an nginx location.
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]+")
# Schemes of identifiers (not links) a feed may name itself by: tag: (RFC 4151), urn:.
_ID_SCHEMES = ("http", "https", "tag", "urn")


@dataclass(frozen=True)
class Site:
    """Site-wide facts every published document needs."""

    #: absolute URL the documents are served under; ends with ``/``
    base_url: str
    title: str
    description: str = ""
    #: feed-level author, so every Atom entry has one
    author_name: str = "aggregator"
    author_email: str | None = None
    #: WebSub hub URL; feeds carry ``<link rel="hub">`` when set
    hub: str | None = None
    #: ``xml:lang`` / ``language`` of the feeds, e.g. ``en``
    language: str | None = None

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/") or "://" not in self.base_url:
            raise ValueError(
                f"Site.base_url must be an absolute URL ending with '/': {self.base_url!r}"
            )


@dataclass(frozen=True)
class TopicFeed:
    """One topic and all of its stories (any order)."""

    topic: TopicSpec
    stories: tuple[Story, ...] = field(default=())


@dataclass(frozen=True)
class TopicSummary:
    """What the index, the OPML and a topic's page say of a whole topic, without its stories."""

    topic: TopicSpec
    #: stories in the topic
    count: int
    #: the newest ``updated`` of its stories; None when it has none
    updated: datetime | None
    #: RFC 5005 archive pages
    archive_count: int

    @classmethod
    def of(cls, feed: TopicFeed) -> TopicSummary:
        """The summary of a topic given with all of its stories."""
        topic = feed.topic
        size = max(1, topic.max_items)
        return cls(
            topic=topic,
            count=len(feed.stories),
            updated=newest_updated(feed.stories) if feed.stories else None,
            archive_count=archive_count(len(feed.stories), size),
        )


def archive_count(count: int, size: int) -> int:
    """Archive pages of a topic of ``count`` stories, ``size`` a page (see :func:`paginate`)."""
    older = max(0, count - size)
    if not older:
        return 0
    return older // size + 1 if older % size == 0 else -(-older // size)


@dataclass(frozen=True)
class Document:
    """One published document, ready to serve or write.

    ``path`` is the URL path without the leading ``/`` (``""`` is the index).
    """

    path: str
    body: bytes
    content_type: str
    #: strong validator: a quoted hash of ``body``
    etag: str
    #: newest ``updated`` of the stories in the document (never the build time)
    last_modified: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "last_modified", utc(self.last_modified))


@dataclass(frozen=True)
class Page:
    """One feed document's worth of stories: the current feed or one archive page."""

    stories: tuple[Story, ...]
    #: 0 for the current (subscription) feed, 1.. for archive pages (1 = oldest)
    number: int
    #: number of archive pages of the topic
    archive_count: int

    @property
    def is_archive(self) -> bool:
        return self.number > 0


@dataclass(frozen=True)
class TopicUrls:
    """Where one rendering of a topic lives: public, or under one private token."""

    base_url: str
    name: str
    #: ``""`` for the public rendering, ``private/<token>/`` for a private one
    prefix: str

    @property
    def atom_path(self) -> str:
        return topic_path(self.name, PathKind.ATOM, prefix=self.prefix)

    @property
    def rss_path(self) -> str:
        return topic_path(self.name, PathKind.RSS, prefix=self.prefix)

    @property
    def json_path(self) -> str:
        return topic_path(self.name, PathKind.JSON, prefix=self.prefix)

    def feed_path(self, row: FeedFormat) -> str:
        """The path of the topic's feed in the format of ``row`` (a formats-table row)."""
        return topic_path(self.name, row.kind, prefix=self.prefix)

    @property
    def html_path(self) -> str:
        return topic_path(self.name, PathKind.PAGE, prefix=self.prefix)

    def archive_path(self, number: int) -> str:
        return topic_path(self.name, PathKind.ARCHIVE, number=number, prefix=self.prefix)

    def url(self, path: str) -> str:
        return self.base_url + path

    def story_url(self, story: Story) -> str:
        """The story's own link, or its place on the topic page when it has none.

        Seed articles have no web address; readers still need a link to open.
        """
        return story.item.link or f"{self.url(self.html_path)}#{story_anchor(story)}"

    @property
    def feed_id(self) -> str:
        # The id names the logical feed, so every private copy and every archive
        # page shares it (RFC 5005 section 4) and it never contains a token.
        return self.base_url + topic_path(self.name, PathKind.ATOM)


class FeedRenderer(Protocol):
    """What a row of the formats table names (:class:`~aggregator.publish.paths.FeedFormat`):
    renders one topic's subscription feed in one format (pure)."""

    def __call__(
        self,
        site: Site,
        topic_title: str,
        description: str,
        urls: TopicUrls,
        page: Page,
        *,
        public: bool = True,
    ) -> Document:
        """The document at ``urls.feed_path(row)``, of the row's content type.

        Args:
            site: site-wide facts.
            topic_title: the feed's title.
            description: the topic's description (may be empty).
            urls: where this rendering lives (public, or under a private token).
            page: the current feed's stories, newest first (page 0).
            public: False for private renderings (no hub link, nothing indexable).
        """
        ...


def story_anchor(story: Story) -> str:
    """The fragment id of a story on its topic page (stable: derived from the story id)."""
    return "s-" + re.sub(r"[^A-Za-z0-9_-]", "-", story.id.rsplit(":", 1)[-1])


def check_token(topic: str, token: str) -> str:
    """Return ``token`` if it is usable in a URL path and a file name.

    Raises:
        ValueError: the token is empty or holds characters outside ``[A-Za-z0-9._~-]``.
    """
    if not _TOKEN_RE.fullmatch(token) or token in {".", ".."}:
        raise ValueError(f"topic {topic!r}: a private token may only use A-Z a-z 0-9 . _ ~ -")
    return token


def xml_safe(text: str) -> str:
    """Drop characters that XML 1.0 cannot carry."""
    return _XML_INVALID.sub("", text)


def _scheme_of(value: str | None) -> str | None:
    """Lower-case scheme of a URL without spaces, controls or XML-invalid characters."""
    if not value or _UNFIT_IN_URL.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not parts.netloc:
        return None
    return scheme


def web_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL fit for any format, else None.

    Every link from a source's own fields (its home page, related links,
    authors) passes here before it is published: a ``javascript:`` or
    ``data:`` link would run in a reader that renders it, and a control
    character would make the XML unwritable.
    """
    return value if _scheme_of(value) in ("http", "https") else None


def feed_identifier(value: str | None) -> str | None:
    """``value`` when it is an http(s), ``tag:`` or ``urn:`` identifier fit for any format."""
    return value if _scheme_of(value) in _ID_SCHEMES else None


def rfc3339(value: datetime) -> str:
    """``2024-05-01T12:00:00Z``: RFC 3339 in UTC, as Atom and JSON Feed want."""
    value = utc(value)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def http_date(value: datetime) -> str:
    """RFC 9110 IMF-fixdate (also RFC 822 for RSS): ``Wed, 01 May 2024 12:00:00 GMT``."""
    return format_datetime(utc(value).replace(microsecond=0), usegmt=True)


def newest_updated(stories: Sequence[Story], default: datetime = EPOCH) -> datetime:
    """The newest ``updated`` among ``stories``, else ``default``."""
    return max((s.updated for s in stories), default=default)


def etag_of(body: bytes) -> str:
    """A strong ETag derived from the bytes only."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def make_document(path: str, body: bytes, content_type: str, last_modified: datetime) -> Document:
    """Build a :class:`Document` with its ETag computed from ``body``."""
    return Document(
        path=path,
        body=body,
        content_type=content_type,
        etag=etag_of(body),
        last_modified=last_modified,
    )


def sort_newest_first(stories: Sequence[Story], *, resurface: bool = False) -> list[Story]:
    """Newest first by ``(published, id)``: a total, deterministic order.

    With ``resurface``, by ``(updated, id)``: an updated story rises (a
    topic's ``updates: resurface``).
    """
    if resurface:
        return sorted(stories, key=lambda s: (s.updated, s.id), reverse=True)
    return sorted(stories, key=lambda s: (s.published, s.id), reverse=True)


def paginate(stories: Sequence[Story], max_items: int, *, resurface: bool = False) -> list[Page]:
    """Split a topic into the current feed and RFC 5005 archive pages.

    The current feed holds the newest ``max_items``. Older stories fill archive
    pages of ``max_items`` from the oldest (page 1) up, so appending a story
    only ever touches the newest page. A full page links ``next-archive`` to its
    successor at once (an empty page when needed), so once full it never
    changes while its stories stay.

    Returns:
        ``[current, archive 1, archive 2, ...]``, each page newest first.
    """
    size = max(1, max_items)
    ordered = sort_newest_first(stories, resurface=resurface)
    current = ordered[:size]
    older = ordered[size:][::-1]  # oldest first
    chunks = [older[i : i + size] for i in range(0, len(older), size)]
    if older and len(older) % size == 0:
        chunks.append([])
    count = len(chunks)
    pages = [Page(tuple(current), 0, count)]
    pages.extend(Page(tuple(chunk[::-1]), n, count) for n, chunk in enumerate(chunks, 1))
    return pages


def _dateline_text(story: Story) -> str | None:
    dateline = story.item.dateline
    if dateline is None:
        return None
    return f"{dateline.place} ({dateline.agency})" if dateline.agency else dateline.place


def body_html(story: Story) -> str:
    """The HTML content of a story as every format publishes it.

    The dateline leads as ``<p class="dateline">``, outside the body ``<div>``,
    so a reader (human or program) can tell it apart from the article text.
    Related headlines ("Read More:") are not part of the content: they are
    other stories, published as ``rel="related"`` links when they have one.
    Falls back to
    the summary when the story has no content. Returns ``""`` when there is
    nothing at all.
    """
    item = story.item
    parts: list[str] = []
    dateline = _dateline_text(story)
    if dateline:
        parts.append(f'<p class="dateline">{html.escape(dateline)}</p>')
    body = item.content_html.strip()
    if not body and item.summary.strip():
        body = f"<p>{html.escape(item.summary.strip())}</p>"
    if body:
        parts.append(f'<div class="body">{body}</div>')
    others = also_reported_by(story)
    if others:
        names = ", ".join(html.escape(name) for name in others)
        parts.append(f'<p class="via">Also reported by: {names}</p>')
    return xml_safe("".join(parts))


def also_reported_by(story: Story) -> list[str]:
    """The outlets besides the canonical entry's that carried a merged story, once each."""
    own = story.item.source
    names: list[str] = []
    for via in story.via:
        name = via.title or via.source
        if via.source != own and name not in names:
            names.append(name)
    return names


def via_links(story: Story) -> list[str]:
    """Each merged entry's canonical link, once each; only http(s) URLs leave the process."""
    links: list[str] = []
    for via in story.via:
        if via.link and via.link.startswith(("http://", "https://")) and via.link not in links:
            links.append(via.link)
    return links
