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

The replay is split by concern: :mod:`~aggregator.parse.fastnames` (the
element keys, by group, and feedparser's URI and author readings),
:mod:`~aggregator.parse.faststate` (its parser state and element stack),
:mod:`~aggregator.parse.faststart` and :mod:`~aggregator.parse.fastend` (its
start and end handlers); this module parses, checks the DOCTYPE and walks.

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
from typing import Any, TypeVar

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from aggregator.parse.fastend import _Ends
from aggregator.parse.fastnames import (
    _ATOM_NS,
    _FRAME_KEYS,
    _PEOPLE_KEYS,
    _RSS_NAMESPACES,
    _TERMS_KEYS,
    _TEXT_KEYS,
    Declined,
    Rules,
    _Decline,
)

__all__ = ["Declined", "Rules", "read_plain_feed"]


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


class _Reader(_Ends):
    """feedparser's handlers, replayed over an lxml tree for the elements it names."""

    def walk(self, element: Any, outer: Mapping[str | None, str] | None) -> None:
        """Replay the start of ``element``, its children, then its end.

        The start and end handlers are looked up by the element's key
        (:data:`_STARTS`, :data:`_ENDS`); an element without one is stored
        (``start_other``). ``outer`` is the parent's namespace map, or None when no element below
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


_Handler = TypeVar("_Handler")


def _by_key(
    frame: _Handler, text: _Handler, people: _Handler, terms: _Handler
) -> dict[str, _Handler]:
    """Each replayed key's handler of one kind (start or end): its group's."""
    groups = (
        (frame, _FRAME_KEYS),
        (text, _TEXT_KEYS),
        (people, _PEOPLE_KEYS),
        (terms, _TERMS_KEYS),
    )
    return {key: handler for handler, keys in groups for key in keys}


#: each replayed key's start handler, then its end handler (one lookup per element)
_STARTS: dict[str, Callable[[_Reader, str, dict[str, str]], bool | None]] = _by_key(
    _Reader._start_frame, _Reader._start_text, _Reader._start_people, _Reader._start_terms
)
_ENDS: dict[str, Callable[[_Reader, str], bool]] = _by_key(
    _Reader._end_frame, _Reader._end_text, _Reader._end_people, _Reader._end_terms
)


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
