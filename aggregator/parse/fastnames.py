"""feedparser's vocabulary as the fast path replays it: element keys, URI joins, authors.

What :mod:`aggregator.parse.fastfeed` reads and how feedparser names it: the
:class:`Rules` feedparser's own code decides (handed in by
:mod:`aggregator.parse.feeds`), the keys of the elements whose handlers are
replayed (by group), the keys stored under names we never read, and the two
readings feedparser makes of an element's text that are code of its own
(``_urljoin`` for relative URIs, ``_sync_author_detail`` for authors).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

_XML_NS = "http://www.w3.org/XML/1998/namespace"
_RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_ATOM_NS = "http://www.w3.org/2005/Atom"
_RSS_NAMESPACES = frozenset({"http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: a ``push_content`` element's type, once mapped, that the fast path reads
_TEXT_TYPES = frozenset({"text/plain", "text/html"})


@dataclass(frozen=True, slots=True)
class Rules:
    """feedparser's own decisions, handed in so the fast path makes the same ones."""

    #: lower-cased namespace URI -> feedparser's prefix for it ("" for RSS and Atom)
    namespaces: Mapping[str, str]
    #: the element keys (``title``, ``dc_creator``...) feedparser has a handler for
    handlers: frozenset[str]
    #: whether plain text in an RSS element is really HTML
    looks_like_html: Callable[[str], bool]
    #: the repairs feedparser makes to every element's text
    fix_text: Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Declined:
    """The document is not one the fast path reads exactly like feedparser."""

    #: a short reason from a bounded set (never text of the document: it
    #: labels the declines metric)
    reason: str


class _Decline(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# feedparser's own URI join: extra slashes after `scheme://` go, then urljoin.
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")


# An absolute http(s) URL that urljoin returns as it is, whatever the base: a
# lower-case scheme, a plain host, no empty query or fragment, no `;`, no
# whitespace or controls (urlsplit removes those).
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[^?#;\x00-\x20\x7f]*)?"
    r"(?:\?[^?#;\x00-\x20\x7f]+)?(?:#[^#\x00-\x20\x7f]+)?"
)


def _resolve(base: str, uri: str) -> str:
    if _PLAIN_URL.fullmatch(uri):
        return uri
    uri = _URI_FIXER.sub(r"\1\3", uri)
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


# feedparser's reading of ``email (Name)``, ``Name <email>`` and the like in a
# plain-text author (``_sync_author_detail``).
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"
    r"(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)


def _person(text: str) -> dict[str, str]:
    """A plain-text author split into name and email as feedparser splits it."""
    author = text
    found = _EMAIL.search(author)
    if not found:
        return {"name": author} if author else {}
    email = found.group(0)
    for junk in (email, "()", "<>", "&lt;&gt;"):
        author = author.replace(junk, "")
    author = author.strip()
    if author.startswith("("):
        author = author[1:]
    if author.endswith(")"):
        author = author[:-1]
    author = author.strip()
    return {"name": author, "email": email} if author else {"email": email}


#: feedparser's ``can_be_relative_uri``: these elements' text is resolved against the base
_URI_KEYS = frozenset({"id", "link", "href", "url", "comments", "docs", "icon", "logo"})
# The query-string repair feedparser makes to every `<link>` text.
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")

#: Element keys replayed here (feedparser's handler names, namespace prefix
#: joined with "_"). Text elements take text only; the others may hold elements.
_TITLE = frozenset({"title", "dc_title", "media_title"})
_SUMMARY = frozenset({"summary", "itunes_summary"})
_DESCRIPTION = frozenset({"description", "dc_description", "media_description"})
_PUBLISHED = frozenset({"pubdate", "published", "issued", "dcterms_issued"})
_UPDATED = frozenset({"updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"})
_CREATED = frozenset({"created", "dcterms_created"})
_AUTHOR = frozenset({"author", "dc_creator", "dc_author", "itunes_author", "managingeditor"})
_PUBLISHER = frozenset({"webmaster", "dc_publisher"})
_CATEGORY = frozenset({"category", "keywords", "dc_subject", "itunes_category", "media_category"})
_LANGUAGE = frozenset({"language", "dc_language"})
#: text constructs stored under a name we never read: element key -> that name
_OTHER_CONTENT = {
    "subtitle": "subtitle", "itunes_subtitle": "subtitle", "tagline": "subtitle",
    "rights": "rights", "copyright": "rights", "dc_rights": "rights",
    "info": "info", "feedburner_browserfriendly": "info",
}  # fmt: skip
#: the key a stored-only element's text is pushed under, where it is not its own
_STORED_AS = {
    "media_credit": "credit", "media_restriction": "restriction", "media_license": "license",
    "itunes_link": "itunes_image", "media_rating": "rating",
}  # fmt: skip
#: a content type as feedparser maps it (``push_content``), and a link's type
_CONTENT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html"}
_LINK_TYPES = {"text": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}
#: handlers that only store what we never read (their element's text under a key of its own)
_STORE_ONLY = frozenset(
    {
        "cloud", "docs", "generator", "height", "width", "icon", "logo", "ttl", "comments",
        "itunes_block", "itunes_explicit", "itunes_image", "itunes_link",
        "media_credit", "media_rating", "media_restriction", "media_license", "media_player",
        "media_content", "media_group", "media_thumbnail", "enclosure",
    }
)  # fmt: skip
#: keys a generic (handler-less) element would overwrite that the result is read for
_READ_KEYS = frozenset(
    {
        "title", "title_detail", "link", "links", "id", "content", "summary", "summary_detail",
        "authors", "author", "tags", "published", "updated", "created", "language", "ttl",
        "published_parsed", "updated_parsed", "created_parsed", "guidislink", "href",
    }
)  # fmt: skip


#: The keys the fast path replays a handler of, by the group of handlers
#: (``_start_<group>`` and ``_end_<group>``) that replays them.
_FRAME_KEYS = frozenset(
    {"rss", "rdf_rdf", "channel", "feed", "item", "entry", "image", "textinput"}
)
_TEXT_KEYS = (
    _TITLE | _DESCRIPTION | _SUMMARY
    | {"link", "guid", "id", "content", "content_encoded", "fullitem"}
)  # fmt: skip
_PEOPLE_KEYS = (
    _PUBLISHED | _UPDATED | _CREATED | _AUTHOR | _PUBLISHER
    | {
        "source", "contributor", "dc_contributor", "name", "email", "itunes_name",
        "itunes_email", "uri", "url", "homepage", "itunes_owner",
    }
)  # fmt: skip
_TERMS_KEYS = (
    _CATEGORY | _LANGUAGE | _OTHER_CONTENT.keys() | _STORE_ONLY
    | {"itunes_keywords", "media_keywords"}
)  # fmt: skip
#: every key the fast path replays a handler of
_REPLAYED = _FRAME_KEYS | _TEXT_KEYS | _PEOPLE_KEYS | _TERMS_KEYS
