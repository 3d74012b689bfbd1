"""Every path the site publishes: built here, and parsed back here.

==============================================  =========================================
``""``                                          the index (``index.html`` in an export)
``topics.opml``                                 the OPML list of the public feeds
``topics/<name>``                               a topic's HTML page
``topics/<name>.atom`` ``.rss`` ``.json``       its current feeds
``topics/<name>/archive/<n>.atom``              an RFC 5005 archive page (1 = oldest)
``private/<token>/<a topic path>``              a private topic's copy for one token
==============================================  =========================================

A path has no leading ``/`` (the URL path is ``/`` + path). Topic names follow
the config's rule (``[a-z0-9][a-z0-9_.-]*``, never ending in ``.atom``, ``.rss``,
``.json`` or ``.opml``), so a topic's page never lies at another topic's feed path.

The feed formats come from one table (:data:`_FORMATS`, read with
:func:`feed_formats`): a format's row names its path suffix, media type, label
and renderer, and every part that lists formats (the paths here, the head
documents rendered, the HTML pages' links, the WebSub pings) reads the table.
A new format is one renderer and one row (:func:`register_format`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "INDEX_PATH",
    "OPML_PATH",
    "WEBSUB_CALLBACKS",
    "FeedFormat",
    "PathKind",
    "PublishedPath",
    "feed_format",
    "feed_formats",
    "parse_path",
    "private_prefix",
    "register_format",
    "topic_of",
    "topic_path",
]

INDEX_PATH = ""
OPML_PATH = "topics.opml"
#: where the WebSub subscriber's callbacks live (``websub/<callback>``); not a document
WEBSUB_CALLBACKS = "websub/"
_PRIVATE = "private/"
_TOPICS = "topics/"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
_ARCHIVE = re.compile(r"archive/([1-9][0-9]*)\.atom")
_SUFFIX = re.compile(r"[a-z][a-z0-9]{0,15}")


class _OpenKinds(type):
    """Iterating :class:`PathKind` lists every kind, the feed formats' from the table."""

    def __iter__(cls) -> Iterator[PathKind]:
        return iter(
            (
                PathKind.INDEX,
                PathKind.OPML,
                PathKind.PAGE,
                *(row.kind for row in _FORMATS.values()),
                PathKind.ARCHIVE,
            )
        )


@dataclass(frozen=True, slots=True)
class PathKind(metaclass=_OpenKinds):
    """What a published path holds: the index, the OPML list, a topic's page, one
    of its feeds (one kind per row of the formats table) or an archive page.

    Open, unlike an enum: a registered feed format brings its own kind.
    """

    #: the kind's name; a feed's is its path suffix (``atom`` for ``.atom``)
    value: str

    INDEX: ClassVar[PathKind]
    OPML: ClassVar[PathKind]
    PAGE: ClassVar[PathKind]
    ATOM: ClassVar[PathKind]
    RSS: ClassVar[PathKind]
    JSON: ClassVar[PathKind]
    ARCHIVE: ClassVar[PathKind]

    def __str__(self) -> str:
        return self.value


PathKind.INDEX = PathKind("index")
PathKind.OPML = PathKind("opml")
PathKind.PAGE = PathKind("page")
PathKind.ATOM = PathKind("atom")
PathKind.RSS = PathKind("rss")
PathKind.JSON = PathKind("json")
PathKind.ARCHIVE = PathKind("archive")


@dataclass(frozen=True, slots=True)
class FeedFormat:
    """One row of the formats table: a topic's subscription feed in one format."""

    #: its path kind; ``kind.value`` is the suffix (``topics/<name>.<suffix>``)
    kind: PathKind
    #: the media type, without parameters (``application/atom+xml``)
    media_type: str
    #: what the HTML pages call it (``Atom``, ``RSS``, ``JSON Feed``)
    label: str
    #: ``module:function`` of its renderer, imported when a topic is first rendered
    #: (so this table stays light); the function is a
    #: :class:`~aggregator.publish._base.FeedRenderer`
    renderer: str

    @property
    def name(self) -> str:
        return self.kind.value

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of its documents (UTF-8 text)."""
        return f"{self.media_type}; charset=utf-8"


#: The formats table, in publishing order (the HTML pages list them so).
_FORMATS: dict[str, FeedFormat] = {
    row.name: row
    for row in (
        FeedFormat(
            PathKind.ATOM, "application/atom+xml", "Atom", "aggregator.publish.atom:render_atom"
        ),
        FeedFormat(PathKind.RSS, "application/rss+xml", "RSS", "aggregator.publish.rss:render_rss"),
        FeedFormat(
            PathKind.JSON,
            "application/feed+json",
            "JSON Feed",
            "aggregator.publish.jsonfeed:render_json_feed",
        ),
    )
}


def feed_formats() -> tuple[FeedFormat, ...]:
    """Every row of the formats table, in publishing order."""
    return tuple(_FORMATS.values())


def feed_format(kind: PathKind) -> FeedFormat | None:
    """The format whose feeds have path kind ``kind``; None for a page, archive, index..."""
    row = _FORMATS.get(kind.value)
    return row if row is not None and row.kind == kind else None


def register_format(row: FeedFormat) -> None:
    """Add a row to the formats table: every topic is then published in it too.

    Raises:
        ValueError: the name is taken, or is not a lower-case word.
    """
    name = row.name
    if name in _FORMATS or name in {k.value for k in PathKind} or not _SUFFIX.fullmatch(name):
        raise ValueError(f"feed format {name!r}: the name is taken or not a lower-case word")
    _FORMATS[name] = row


@dataclass(frozen=True, slots=True)
class PublishedPath:
    """A published path, taken apart."""

    kind: PathKind
    #: the topic, for every kind but the index and the OPML list
    topic: str | None = None
    #: the token of a private copy, else None
    token: str | None = None
    #: the archive page number (1 = oldest), for ``ARCHIVE`` only
    number: int | None = None

    @property
    def path(self) -> str:
        """The path this names (the inverse of :func:`parse_path`)."""
        if self.kind == PathKind.INDEX:
            return INDEX_PATH
        if self.kind == PathKind.OPML:
            return OPML_PATH
        assert self.topic is not None
        prefix = private_prefix(self.token) if self.token is not None else ""
        return topic_path(self.topic, self.kind, number=self.number, prefix=prefix)


def private_prefix(token: str) -> str:
    """Path prefix of a private topic's copy for ``token``: ``private/<token>/``."""
    return f"{_PRIVATE}{token}/"


def topic_path(name: str, kind: PathKind, *, number: int | None = None, prefix: str = "") -> str:
    """The path of one of a topic's documents.

    Args:
        name: the topic's name.
        kind: ``PAGE``, a feed (``ATOM``, ``RSS``, ``JSON``, any row of the
            formats table) or ``ARCHIVE``.
        number: the archive page (1 = oldest); ``ARCHIVE`` only.
        prefix: ``""`` for the public copy, :func:`private_prefix` for a private one.

    Returns:
        The path, without a leading ``/``.

    Raises:
        ValueError: ``kind`` is not a topic's document, or ``number`` does not fit it.
    """
    if (kind == PathKind.ARCHIVE) != (number is not None):
        raise ValueError(f"an archive page, and only one, needs a number: {kind} {number}")
    if kind == PathKind.PAGE:
        return f"{prefix}{_TOPICS}{name}"
    if feed_format(kind) is not None:
        return f"{prefix}{_TOPICS}{name}.{kind.value}"
    if kind == PathKind.ARCHIVE:
        return f"{prefix}{_TOPICS}{name}/archive/{number}.atom"
    raise ValueError(f"not a topic's document: {kind}")


def parse_path(path: str) -> PublishedPath | None:
    """Take a published path apart.

    Args:
        path: a URL path without its leading ``/`` (not percent-decoded).

    Returns:
        What it names, or None when no published document can have that path.
    """
    if path == INDEX_PATH:
        return PublishedPath(PathKind.INDEX)
    if path == OPML_PATH:
        return PublishedPath(PathKind.OPML)
    token = None
    if path.startswith(_PRIVATE):
        token, _, path = path[len(_PRIVATE) :].partition("/")
        if not _TOKEN.fullmatch(token) or token in {".", ".."}:
            return None
    if not path.startswith(_TOPICS):
        return None
    name, slash, rest = path[len(_TOPICS) :].partition("/")
    if slash:
        archive = _ARCHIVE.fullmatch(rest)
        if archive is None or not _NAME.fullmatch(name):
            return None
        return PublishedPath(PathKind.ARCHIVE, name, token, int(archive.group(1)))
    kind = PathKind.PAGE
    for row in _FORMATS.values():
        if name.endswith("." + row.name):
            name, kind = name[: -len(row.name) - 1], row.kind
            break
    if not _NAME.fullmatch(name):
        return None
    return PublishedPath(kind, name, token)


def topic_of(path: str) -> str | None:
    """The topic a published path belongs to (public or private copy), else None."""
    parsed = parse_path(path)
    return parsed.topic if parsed is not None else None
