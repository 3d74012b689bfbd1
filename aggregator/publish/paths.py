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
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "INDEX_PATH",
    "OPML_PATH",
    "PathKind",
    "PublishedPath",
    "parse_path",
    "private_prefix",
    "topic_of",
    "topic_path",
]

INDEX_PATH = ""
OPML_PATH = "topics.opml"
_PRIVATE = "private/"
_TOPICS = "topics/"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
_ARCHIVE = re.compile(r"archive/([1-9][0-9]*)\.atom")


class PathKind(enum.StrEnum):
    """What a published path holds."""

    INDEX = "index"
    OPML = "opml"
    PAGE = "page"
    ATOM = "atom"
    RSS = "rss"
    JSON = "json"
    ARCHIVE = "archive"


_FEEDS = (PathKind.ATOM, PathKind.RSS, PathKind.JSON)


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
        if self.kind is PathKind.INDEX:
            return INDEX_PATH
        if self.kind is PathKind.OPML:
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
        kind: ``PAGE``, a feed (``ATOM``, ``RSS``, ``JSON``) or ``ARCHIVE``.
        number: the archive page (1 = oldest); ``ARCHIVE`` only.
        prefix: ``""`` for the public copy, :func:`private_prefix` for a private one.

    Returns:
        The path, without a leading ``/``.

    Raises:
        ValueError: ``kind`` is not a topic's document, or ``number`` does not fit it.
    """
    if (kind is PathKind.ARCHIVE) != (number is not None):
        raise ValueError(f"an archive page, and only one, needs a number: {kind} {number}")
    if kind is PathKind.PAGE:
        return f"{prefix}{_TOPICS}{name}"
    if kind in _FEEDS:
        return f"{prefix}{_TOPICS}{name}.{kind.value}"
    if kind is PathKind.ARCHIVE:
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
    for feed in _FEEDS:
        if name.endswith("." + feed.value):
            name, kind = name[: -len(feed.value) - 1], feed
            break
    if not _NAME.fullmatch(name):
        return None
    return PublishedPath(kind, name, token)


def topic_of(path: str) -> str | None:
    """The topic a published path belongs to (public or private copy), else None."""
    parsed = parse_path(path)
    return parsed.topic if parsed is not None else None
