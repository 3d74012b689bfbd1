"""The fast path for feeds: lxml reads them as feedparser would, or declines.

feedparser is the reference reader and reads everything, but it costs about
30 ms for a feed of 60 entries: it runs a Python handler for every SAX event.
This module parses the document with lxml (in C) and walks the tree once,
replaying feedparser's own handlers for the elements real feeds use, with
their state (element depth, the first title, a second summary becoming the
content, ``xml:lang`` scoping, the guid standing in for the link...), and
builds the same result shape (``feed`` and ``entries`` dicts holding the keys
:mod:`aggregator.parse.feeds` reads). Whatever it cannot replay exactly, it
declines with a reason, and feedparser reads the document.
``tests/test_fastfeed.py`` checks over the feedparser corpus, our own minimal
documents and generated odd ones that both paths give the same items field
by field whenever the fast path accepts.

What feedparser decides with its own code is handed in as :class:`Rules` by
:mod:`aggregator.parse.feeds` (the one module that imports feedparser): its
namespace table, the names it has handlers for, its guess whether plain text
is HTML and its per-text repairs. The bytes come in as UTF-8, decoded there by
feedparser's rules (BOM, XML declaration, HTTP charset and their conflicts).

What it reads: RSS 0.9x/2.0, RSS 1.0 (RDF) and Atom 1.0/0.3 roots; the RSS,
Atom, Dublin Core (``dc:``, ``dcterms:``), ``content:encoded``, Media RSS and
iTunes elements feedparser handles and we read (titles, links, ids, summaries,
contents, dates, authors, categories, enclosures, sources, contributors),
``xml:lang`` and ``Content-Language``; elements of other vocabularies are
stored by feedparser under their own names, which we never read, so they are
skipped. It declines: ``xml:base``, Atom ``xhtml`` and base64 content, text
elements that hold elements, elements with a feedparser handler not replayed
here, DOCTYPE declarations feedparser would not keep, and documents that are
not well-formed (feedparser then reads them with its lenient parser, whose
result no strict reading matches: it keeps ``&amp;`` in a guid, for one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

__all__ = ["Declined", "Rules", "read_plain_feed"]

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


def _parser(*, resolve_entities: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=resolve_entities,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        recover=False,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
    )


# An internal entity feedparser keeps (``RE_SAFE_ENTITY_PATTERN``'s value).
_SAFE_ENTITY = re.compile(r'&#\w+;|[^&"]*')


def _is_safe_entity(entity: Any) -> bool:
    """An internal entity of a character or plain text: never external (no XXE), never nested."""
    return (
        entity.system_url is None
        and entity.orig is not None
        and _SAFE_ENTITY.fullmatch(entity.orig) is not None
    )


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


#: The keys :class:`_Reader` replays a handler of, by the group of handlers
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
#: every key :class:`_Reader` replays a handler of
_REPLAYED = _FRAME_KEYS | _TEXT_KEYS | _PEOPLE_KEYS | _TERMS_KEYS


@dataclass(slots=True)
class _Frame:
    """One open element: what feedparser pushed for it."""

    key: str
    expecting_text: bool
    pieces: list[str] = field(default_factory=list)


class _Reader:
    """feedparser's handlers, replayed over an lxml tree for the elements listed above."""

    def __init__(self, rules: Rules, base: str, language: str | None) -> None:
        self.rules = rules
        self.base = base
        self.version = ""
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.depths: list[dict[str, int]] = []
        self.lang = language
        if language:
            self.feed["language"] = language.replace("_", "-")
        self.depth = 0
        self.infeed = self.inentry = self.inimage = self.intextinput = False
        self.inauthor = self.inpublisher = self.incontributor = self.insource = False
        self.source: dict[str, Any] = {}
        self.incontent = 0
        self.has_content = False
        self.title_depth = -1
        self.guidislink = False
        self.summary_key: str | None = None
        self.params: dict[str, Any] = {}
        self.stack: list[_Frame] = []
        self.prefixes: dict[str | None, str] = {}
        self.keys: dict[str, str] = {}

    # --- the walk ---------------------------------------------------------

    def key(self, element: Any) -> str:
        """feedparser's name for an element: its namespace's prefix, "_", its lower-cased name."""
        tag = element.tag
        if not isinstance(tag, str):
            raise _Decline("entity reference")
        namespace, _, local = tag[1:].rpartition("}") if tag[0] == "{" else ("", "", tag)
        lowered = namespace.lower()
        if "backend.userland.com/rss" in lowered:
            lowered = "http://backend.userland.com/rss"
        prefix = self.rules.namespaces.get(lowered)
        known = prefix is not None
        if prefix is None:
            prefix = element.prefix or ""  # the document's own: not cached
        # feedparser maps a prefix again through every declaration it has seen
        # that binds a prefix of that name to a namespace it knows.
        prefix = self.prefixes.get(prefix, prefix)
        key = f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()
        if known:
            self.keys[tag] = key
        return key

    def attributes(self, items: list[tuple[str, str]]) -> dict[str, str]:
        """Attributes as feedparser sees them: names lower-cased, ``rel``/``type`` values too."""
        found: dict[str, str] = {}
        for name, value in items:
            if name[0] == "{":
                namespace, _, local = name[1:].partition("}")
                if namespace == _XML_NS and local == "lang":
                    found["xml:lang"] = value
                    continue
                if namespace == _RDF_NS and local in ("about", "resource"):
                    found[f"rdf:{local}"] = value
                    continue
                raise _Decline("namespaced attribute")
            key = name.lower()
            found[key] = value.lower() if key in ("rel", "type") else value
        return found

    def walk(self, element: Any, outer: Mapping[str | None, str] | None) -> None:
        """Replay the start of ``element``, its children, then its end.

        ``outer`` is the parent's namespace map, or None when no element below
        the root declares a namespace (most feeds: mapping each is costly).
        """
        namespaces = element.nsmap if outer is not None else None
        declares = namespaces != outer
        if namespaces is not None and declares:
            self.track(namespaces)
        tag = element.tag
        key = self.keys.get(tag)
        if key is None:
            key = self.key(element)
        self.depth += 1
        outer_lang = self.lang
        items = element.items()
        attrs = self.attributes(items) if items else {}
        if attrs:
            if "base" in attrs:
                raise _Decline("xml:base")
            lang = attrs.get("xml:lang", attrs.get("lang"))
            if lang is not None:  # else inherited
                self.lang = lang or None  # an empty one unsets it
                if lang and key in ("feed", "rss"):
                    self.feed["language"] = lang.replace("_", "-")
        start = _STARTS.get(key)
        if start is None:
            text_only = self.start_other(key, attrs, element, declares=declares)
        else:
            text_only = start(self, key, attrs) is True
        if text_only and len(element):
            raise _Decline(f"{key} holds elements")
        stack = self.stack
        text = element.text
        if text and stack:
            stack[-1].pieces.append(text)
        for child in element:
            self.walk(child, namespaces)
            tail = child.tail
            if tail and stack:
                stack[-1].pieces.append(tail)
        end = _ENDS.get(key)
        if end is None:
            self.pop(key)  # a stored element (one stored as its attributes pushed nothing)
        else:
            end(self, key)
        self.lang = outer_lang
        self.depth -= 1

    def track(self, namespaces: Mapping[str | None, str]) -> None:
        """Note which prefixes name namespaces feedparser knows (its ``namespacemap``)."""
        for prefix, uri in namespaces.items():
            known = self.rules.namespaces.get(uri.lower())
            if known is not None and prefix is not None and self.prefixes.get(prefix) != known:
                self.prefixes[prefix] = known
                self.keys.clear()  # an element's key may change with the map

    # --- feedparser's stack -------------------------------------------------

    def push(self, key: str, expecting_text: bool) -> None:
        self.stack.append(_Frame(key, expecting_text))

    def context(self) -> dict[str, Any]:
        if self.insource:
            return self.source
        if self.inimage and "image" in self.feed:
            image: dict[str, Any] = self.feed["image"]
            return image
        if self.intextinput:
            textinput: dict[str, Any] = self.feed["textinput"]
            return textinput
        if self.inentry:
            return self.entries[-1]
        return self.feed

    def push_content(self, key: str, attrs: Mapping[str, str], default: str) -> None:
        self.incontent += 1
        if self.lang:
            self.lang = self.lang.replace("_", "-")
        kind = attrs.get("type", default).lower()
        kind = _CONTENT_TYPES.get(kind, kind)
        if kind not in _TEXT_TYPES or attrs.get("mode") == "base64":
            raise _Decline(f"{key} of type {'xhtml' if 'xhtml' in kind else 'other'}")
        self.params = {"type": kind, "language": self.lang, "base": self.base}
        self.push(key, True)

    def pop(self, key: str) -> str | None:
        if not self.stack or self.stack[-1].key != key:
            return None
        frame = self.stack.pop()
        output = "".join(frame.pieces).strip()
        if not frame.expecting_text:
            return output
        if key in _URI_KEYS and output and (key != "id" or self.guidislink):
            output = _resolve(self.base, output)
        if (
            self.params.get("type") == "text/plain"
            and not self.version.startswith("atom")
            and self.rules.looks_like_html(output)
        ):
            self.params["type"] = "text/html"
        if not output.isascii():
            output = self.rules.fix_text(output)
        if key in ("category", "itunes_keywords", "media_keywords"):
            return output
        if key == "title" and -1 < self.title_depth <= self.depth:
            return output
        if self.inentry and not self.insource:
            self.store_in_entry(key, output)
        elif self.infeed or self.insource:
            self.store_in_feed(key, output)
        return output

    def store_in_entry(self, key: str, output: str) -> None:
        entry = self.entries[-1]
        if key == "content":
            entry.setdefault("content", []).append({**self.params, "value": output})
        elif key == "link":
            if not self.inimage:
                output = output.replace("&amp;", "&")
                if "&" in output:
                    output = _LINK_ENTITY.sub(r"&\g<1>", output)
                entry["link"] = output
                if output:
                    entry["links"][-1]["href"] = output
        else:
            if key == "description":
                key = "summary"
            depths = self.depths[-1]
            old = depths.get(key)
            if old is None or self.depth <= old:
                depths[key] = self.depth
                entry[key] = output
            if self.incontent:
                entry[f"{key}_detail"] = {**self.params, "value": output}

    def store_in_feed(self, key: str, output: str) -> None:
        context = self.context()
        if key == "description":
            key = "subtitle"
        context[key] = output
        if key == "link":
            output = _LINK_ENTITY.sub(r"&\g<1>", output)
            context[key] = output
            context["links"][-1]["href"] = output
        elif self.incontent:
            context[f"{key}_detail"] = {**self.params, "value": output}

    def pop_content(self, key: str) -> str | None:
        value = self.pop(key)
        self.incontent -= 1
        self.params = {}
        return value

    def save(self, key: str, value: Any, *, overwrite: bool = False) -> None:
        if overwrite:
            self.context()[key] = value
        else:
            self.context().setdefault(key, value)

    def sync_author(self, key: str = "author") -> None:
        context = self.context()
        details = context.get(f"{key}s", [{}])
        detail = details[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                context[key] = f"{name} ({email})"
            elif name or email:
                context[key] = name or email
            return
        author = context.get(key)
        if not author:
            return
        person = _person(author)
        if person:
            context.setdefault(f"{key}_detail", detail)
        detail.update(person)

    def save_author(self, key: str, value: str | None, prefix: str = "author") -> None:
        context = self.context()
        context.setdefault(f"{prefix}_detail", {})[key] = value
        self.sync_author()
        context.setdefault("authors", [{}])
        context["authors"][-1][key] = value

    def add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self.context().setdefault("tags", [])
        if not (term or scheme or label):
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

    # --- start and end handlers ---------------------------------------------

    def _start_frame(self, key: str, attrs: dict[str, str]) -> bool | None:
        """The feed, its entries, images and text inputs: the frames others fill.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key == "rss":
            version = attrs.get("version", "")
            self.version = {
                "0.91": "rss091u",
                "0.92": "rss092",
                "0.93": "rss093",
                "0.94": "rss094",
            }.get(version) or ("rss20" if version.startswith("2.") else "rss")
        elif key in ("channel", "feed"):
            if self.infeed or self.inentry:
                raise _Decline(f"nested {key}")
            self.infeed = True
            if key == "channel" and ("lastmod" in attrs or "href" in attrs):
                raise _Decline("channel attributes")
        elif key == "rdf_rdf":
            if self.depth != 1:
                raise _Decline("nested rdf:RDF")
        elif key in ("item", "entry"):
            if self.inentry:
                raise _Decline(f"nested {key}")
            if "lastmod" in attrs or "href" in attrs:
                raise _Decline(f"{key} attributes")
            self.entries.append({})
            self.depths.append({})
            self.push("item", False)
            self.inentry = True
            self.guidislink = False
            self.title_depth = -1
            if attrs.get("rdf:about"):
                self.entries[-1]["id"] = attrs["rdf:about"]
        elif key in ("image", "textinput"):
            if self.inentry or self.inimage or self.intextinput:
                raise _Decline(f"{key} in an entry")
            self.context().setdefault(key, {})
            if key == "image":
                self.inimage = True
            else:
                self.intextinput = True
            self.title_depth = -1
            self.push(key, False)
        else:
            return None
        return False

    def _start_text(self, key: str, attrs: dict[str, str]) -> bool | None:
        """Titles, links, ids, summaries and contents.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key in _TITLE:
            self.push_content("title", attrs, "text/plain")
            return True
        elif key == "link":
            return self.start_link(attrs)
        elif key in ("guid", "id"):
            self.guidislink = attrs.get("ispermalink", "true") == "true"
            self.push("id", True)
            return True
        elif key in _DESCRIPTION:
            if "summary" in self.context() and not self.has_content:
                self.summary_key = "content"
                self.start_content(attrs, "text/plain")
            else:
                self.push_content("description", attrs, "text/html")
            return True
        elif key in _SUMMARY:
            if "summary" in self.context() and not self.has_content:
                self.summary_key = "content"
                self.start_content(attrs, "text/plain")
            else:
                self.summary_key = "summary"
                self.push_content("summary", attrs, "text/plain")
            return True
        elif key == "content":
            if "src" in attrs:
                raise _Decline("content with src")
            self.start_content(attrs, "text/plain")
            self.push("content", True)
            return True
        elif key in ("content_encoded", "fullitem"):
            self.start_content(attrs, "text/html")
            return True
        else:
            return None
        return False

    def _start_people(self, key: str, attrs: dict[str, str]) -> bool | None:
        """Sources, contributors, dates, authors and publishers.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key == "source":
            if self.insource:
                raise _Decline("nested source")
            if "url" in attrs:
                self.source["href"] = attrs["url"]
            self.push("source", True)
            self.insource = True
            self.title_depth = -1
            return False
        elif key == "contributor":
            self.incontributor = True
            self.context().setdefault("contributors", []).append({})
            self.push("contributor", False)
        elif key == "dc_contributor":
            self.incontributor = True
            self.context().setdefault("contributors", []).append({})
            self.push("name", False)
            return True
        elif key in _PUBLISHED or key in _UPDATED or key in _CREATED:
            self.push(self.date_key(key), True)
            return True
        elif key in _AUTHOR:
            if self.inauthor:
                raise _Decline("nested author")
            self.inauthor = True
            self.push("author", True)
            self.context().setdefault("authors", []).append({})
            return key != "author"
        elif key in _PUBLISHER:
            self.push("publisher", True)
            return True
        elif key in ("name", "email", "itunes_name", "itunes_email"):
            self.push(key.removeprefix("itunes_"), False)
            return True
        elif key in ("uri", "url", "homepage"):
            self.push("href", True)
            return True
        elif key == "itunes_owner":
            if self.inentry:
                raise _Decline("itunes:owner in an entry")
            self.inpublisher = True
            self.push("publisher", False)
        else:
            return None
        return False

    def _start_terms(self, key: str, attrs: dict[str, str]) -> bool | None:
        """Categories, keywords, languages, other contents and stored-only elements.

        True when the element may hold text only; None when ``key`` is not one of these.
        """
        if key in _CATEGORY:
            term = attrs.get("text") if key == "itunes_category" else attrs.get("term")
            scheme = attrs.get("scheme", attrs.get("domain"))
            if key == "itunes_category":
                scheme = "http://www.itunes.com/"
            elif key == "media_category":
                scheme = attrs.get("scheme", "http://search.yahoo.com/mrss/category_schema")
            self.add_tag(term, scheme, None if key == "itunes_category" else attrs.get("label"))
            self.push("category", True)
            return key != "itunes_category"
        elif key in ("itunes_keywords", "media_keywords"):
            if attrs:
                raise _Decline(f"{key} with attributes")
            self.push(key, True)
            return True
        elif key in _LANGUAGE:
            self.push("language", True)
            return True
        elif key in _OTHER_CONTENT:
            self.push_content(_OTHER_CONTENT[key], attrs, "text/plain")
            return True
        elif key in _STORE_ONLY:
            return self.start_store_only(key, attrs)
        else:
            return None
        return False

    def start_other(self, key: str, attrs: dict[str, str], element: Any, *, declares: bool) -> bool:
        """An element not replayed: declined when feedparser has a handler, else stored."""
        if key in self.rules.handlers or key in _READ_KEYS:
            raise _Decline(f"element {key}")
        if attrs or declares:
            # Stored as its attributes (namespace declarations count); any text
            # it holds would go to the element open around it.
            if (element.text or "").strip() or len(element):
                raise _Decline("unknown element with attributes and content")
            self.context()[key] = attrs
        else:
            self.push(key, True)
        return False

    def start_link(self, attrs: dict[str, str]) -> bool:
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = href
        if "href" in attrs:
            attrs["href"] = _resolve(self.base, attrs["href"])  # an empty one: the base
        context = self.context()
        links = context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            links.append({k: v for k, v in attrs.items() if k not in ("xml:lang", "lang")} | {})
        if "href" in attrs:
            kind = attrs.get("type", "")
            kind = _LINK_TYPES.get(kind, kind)
            if attrs.get("rel") == "alternate" and kind in _HTML_TYPES:
                context["link"] = attrs["href"]
        else:
            self.push("link", bool(self.infeed or self.inentry))
        return True

    def start_content(self, attrs: Mapping[str, str], default: str) -> None:
        self.has_content = True
        self.push_content("content", attrs, default)

    def start_store_only(self, key: str, attrs: dict[str, str]) -> bool:
        if key == "enclosure":
            href = attrs.get("url", attrs.get("uri", attrs.get("href")))
            if href:
                attrs.pop("url", None)
                attrs.pop("uri", None)
                attrs["href"] = href
            self.context().setdefault("links", []).append({**attrs, "rel": "enclosure"})
            return True
        if key in ("media_group", "media_content"):
            return False  # containers of media elements, nothing pushed
        if key == "media_thumbnail":
            self.push("url", True)
            return True
        if key == "cloud":
            return True  # feedparser stores its attributes
        self.push(_STORED_AS.get(key, key), True)
        return True

    def date_key(self, key: str) -> str:
        if key in _PUBLISHED:
            return "published"
        return "updated" if key in _UPDATED else "created"

    def _end_frame(self, key: str) -> bool:
        """The feed, its entries, images and text inputs. False when ``key`` is not one of these."""
        if key in ("channel", "feed"):
            self.infeed = False
        elif key in ("item", "entry"):
            self.pop("item")
            self.inentry = False
            self.has_content = False
        elif key in ("image", "textinput"):
            self.pop(key)
            if key == "image":
                self.inimage = False
            else:
                self.intextinput = False
        else:
            return False
        return True

    def _end_text(self, key: str) -> bool:
        """Titles, links, ids, summaries and contents. False when ``key`` is not one of these."""
        if key in _TITLE:
            title_depth = self.title_depth
            value = self.pop_content("title")
            if value:
                self.title_depth = self.depth
            if key == "media_title":
                self.title_depth = title_depth
        elif key == "link":
            self.pop("link")
        elif key in ("guid", "id"):
            value = self.pop("id")
            self.save("guidislink", self.guidislink and "link" not in self.context())
            if self.guidislink:
                self.save("link", value)
        elif key in _DESCRIPTION:
            if self.summary_key == "content":
                self.end_content()
            else:
                self.pop_content("description")
            self.summary_key = None
        elif key in _SUMMARY:
            if self.summary_key == "content":
                self.end_content()
            else:
                self.pop_content(self.summary_key or "summary")
            self.summary_key = None
        elif key in ("content", "content_encoded", "fullitem"):
            self.end_content()
        else:
            return False
        return True

    def _end_people(self, key: str) -> bool:
        """Sources, contributors, dates, authors, publishers; False for any other key."""
        if key == "source":
            self.insource = False
            value = self.pop("source")
            if value:
                self.source["title"] = value
            self.context()["source"] = dict(self.source)
            self.source = {}
        elif key == "contributor":
            self.pop("contributor")
            self.incontributor = False
        elif key == "dc_contributor":
            self.pop("name")  # feedparser's contributor name: never read
            self.incontributor = False
        elif key in _PUBLISHED or key in _UPDATED or key in _CREATED:
            name = self.date_key(key)
            # The document's string: parse.feeds reads it with feedparser's date reader.
            self.save(f"{name}_raw", self.pop(name), overwrite=True)
        elif key in _AUTHOR:
            self.pop("author")
            self.inauthor = False
            self.sync_author()
        elif key in _PUBLISHER:
            self.pop("publisher")
            self.sync_author("publisher")
        elif key in ("name", "email", "itunes_name", "itunes_email"):
            name = key.removeprefix("itunes_")
            value = self.pop(name)
            if self.inpublisher:
                self.save_author(name, value, "publisher")
            elif self.inauthor:
                self.save_author(name, value)
            elif self.incontributor:
                self.context().setdefault("contributors", [{}])[-1][name] = value
            elif self.intextinput and name == "name":
                self.context()["name"] = value
        elif key in ("uri", "url", "homepage"):
            value = self.pop("href")
            if self.inauthor:
                self.save_author("href", value)
            elif self.incontributor:
                self.context().setdefault("contributors", [{}])[-1]["href"] = value
        elif key == "itunes_owner":
            self.pop("publisher")
            self.inpublisher = False
            self.sync_author("publisher")
        else:
            return False
        return True

    def _end_terms(self, key: str) -> bool:
        """Categories, keywords, languages, other and stored-only elements; False otherwise."""
        if key in _CATEGORY:
            self.end_category()
        elif key in ("itunes_keywords", "media_keywords"):
            value = self.pop(key) or ""
            scheme = "http://www.itunes.com/" if key == "itunes_keywords" else None
            for term in value.split(","):
                if term.strip():
                    self.add_tag(term.strip(), scheme, None)
        elif key in _LANGUAGE:
            self.lang = self.pop("language")
        elif key in _OTHER_CONTENT:
            self.pop_content(_OTHER_CONTENT[key])
        elif key == "media_thumbnail":
            self.pop("url")
        elif key in _STORE_ONLY:
            if key not in ("enclosure", "media_group", "media_content", "cloud"):
                self.pop(_STORED_AS.get(key, key))
        else:
            return False
        return True

    def end_content(self) -> None:
        copy_to_summary = self.params.get("type") in _TEXT_TYPES | _HTML_TYPES
        value = self.pop_content("content")
        if copy_to_summary:
            self.save("summary", value)

    def end_category(self) -> None:
        value = self.pop("category")
        if not value:
            return
        tags = self.context()["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self.add_tag(value, None, None)


#: each replayed key's start and end handlers, by the group that has them
_STARTS: dict[str, Callable[[_Reader, str, dict[str, str]], bool | None]] = {
    key: start
    for start, keys in (
        (_Reader._start_terms, _TERMS_KEYS),
        (_Reader._start_people, _PEOPLE_KEYS),
        (_Reader._start_text, _TEXT_KEYS),
        (_Reader._start_frame, _FRAME_KEYS),
    )
    for key in keys
}
_ENDS: dict[str, Callable[[_Reader, str], bool]] = {
    key: end
    for end, keys in (
        (_Reader._end_terms, _TERMS_KEYS),
        (_Reader._end_people, _PEOPLE_KEYS),
        (_Reader._end_text, _TEXT_KEYS),
        (_Reader._end_frame, _FRAME_KEYS),
    )
    for key in keys
}


def read_plain_feed(
    data: bytes,
    *,
    url: str | None,
    headers: Mapping[str, str] | None,
    rules: Rules,
) -> dict[str, Any] | Declined:
    """Read an RSS or Atom feed the way feedparser would.

    Args:
        data: the document as UTF-8 bytes (decoded by feedparser's rules, its
            DOCTYPE replaced as feedparser replaces it).
        url: the final URL (feedparser's base for the document).
        headers: the response headers, names lower-case.
        rules: feedparser's own decisions (:class:`Rules`).

    Returns:
        feedparser's result shape (``version``, ``feed``, ``entries``; dates
        left as the document's strings under ``published_raw``,
        ``updated_raw`` and ``created_raw``), or why the fast path declines.
    """
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        return Declined("undefined entity" if "Entity" in str(exc) else "not well-formed")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None:
        # What feedparser keeps of a DOCTYPE: entities standing for a character
        # or plain text, which its parser expands (and nothing else).
        if dtd.elements() or not all(_is_safe_entity(e) for e in dtd.entities()):
            return Declined("DOCTYPE declarations")
        if dtd.entities():
            try:
                root = etree.fromstring(data, _parser(resolve_entities=True))
            except (etree.XMLSyntaxError, ValueError):
                return Declined("undefined entity")
    language = (headers or {}).get("content-language")
    reader = _Reader(rules, url or "", language)
    root_key = reader.key(root)
    if root_key == "rdf_rdf":
        uris = {uri.lower() for uri in root.nsmap.values()}
        if _ATOM_NS.lower() in uris:
            return Declined("RDF declaring Atom")
        if not uris & _RSS_NAMESPACES:
            return Declined("RDF of another vocabulary")
        reader.version = "rss10"  # or rss090: both read alike
    elif root_key == "feed":
        if any(uri.lower() in _RSS_NAMESPACES for uri in root.nsmap.values()):
            return Declined("Atom declaring RSS")  # feedparser's version is the first declared
        # Atom 1.0, 0.3 (or no namespace) read alike here: any "atom" version
        # keeps plain text plain; xhtml, which they treat apart, is declined.
        reader.version = "atom10" if root.tag == f"{{{_ATOM_NS}}}feed" else "atom"
    elif root_key != "rss":
        return Declined("root not RSS, RDF or Atom")
    # Only the root declares namespaces (its own count of `xmlns`): the walk
    # skips looking for declarations below it.
    below = None if data.count(b"xmlns") <= len(root.nsmap) else root.nsmap
    try:
        if below is None:
            reader.track(root.nsmap)
        reader.walk(root, {} if below is not None else None)
    except _Decline as exc:
        return Declined(exc.reason)
    return {"version": reader.version, "feed": reader.feed, "entries": reader.entries}
