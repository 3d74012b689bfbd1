"""OPML subscription lists: read them (safely) and write them.

Parsing uses the standard library's expat directly, with a guard: any entity
declaration in a DTD is refused (that is how "billion laughs" and external
entity attacks start, and OPML never needs one), parameter entities and
external DTDs are never loaded, and nothing touches the network. This keeps
lxml out of this module; the standard library is enough for OPML's flat
shape, and writing uses :mod:`xml.etree.ElementTree`, which only escapes.

Nesting carries categories: a feed outline inside ``<outline text="Tech">``
inside ``<outline text="News">`` gets ``categories=("News", "Tech")``; an
OPML 2.0 ``category="/a/b,/c"`` attribute adds ``"a/b"`` and ``"c"``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, replace
from xml.parsers import expat

from aggregator.errors import ParseError

__all__ = ["OpmlOutline", "parse_opml", "render_opml"]

# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class OpmlOutline:
    """One subscription read from (or written to) an OPML file."""

    #: display title (``title``, else ``text``, else the feed URL)
    title: str
    #: the feed's URL (``xmlUrl``)
    xml_url: str
    #: the site's URL (``htmlUrl``), when given
    html_url: str | None = None
    #: enclosing folder names, outermost first, plus ``category`` values
    categories: tuple[str, ...] = ()


class _Refused(Exception):
    """Raised from an expat handler to stop on a construct we do not accept."""


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def parse_opml(data: bytes, *, name: str) -> list[OpmlOutline]:
    """Read the feed outlines of an OPML document.

    Args:
        data: the document's bytes (any encoding expat or Python can decode).
        name: the file name or URL, used in error messages.

    Returns:
        One outline per distinct ``xmlUrl``, in document order; a feed listed
        in several folders appears once, with the categories of all of them.

    Raises:
        ParseError: the bytes are not well-formed XML, declare entities, or
            are not rooted in ``<opml>``.
    """
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse_entity(entity_name: str, *_args: object) -> None:
        raise _Refused(f"entity declaration {entity_name!r} refused (DTD entities are not allowed)")

    def refuse_external(*_args: object) -> int:
        raise _Refused("external entity refused")

    found: dict[str, OpmlOutline] = {}
    # One entry per open <outline>: its folder name, or None for feeds and
    # unnamed outlines (which add no category level).
    folders: list[str | None] = []
    depth = 0
    root: list[str] = []

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth == 1:
            root.append(tag)
            if tag.lower() != "opml":
                raise _Refused(f"not an OPML document (root element is <{tag}>)")
        if tag.lower() != "outline":
            return
        attrs = {k.lower(): v for k, v in attributes.items()}
        text = _clean(attrs.get("text")) or _clean(attrs.get("title"))
        xml_url = _clean(attrs.get("xmlurl"))
        if xml_url is None:
            folders.append(text)
            return
        folders.append(None)
        categories = [f for f in folders[:-1] if f]
        for item in (attrs.get("category") or "").split(","):
            category = item.strip().strip("/")
            if category:
                categories.append(category)
        outline = OpmlOutline(
            title=_clean(attrs.get("title")) or text or xml_url,
            xml_url=xml_url,
            html_url=_clean(attrs.get("htmlurl")),
            categories=tuple(dict.fromkeys(categories)),
        )
        earlier = found.get(xml_url)
        if earlier is None:
            found[xml_url] = outline
        else:
            merged = tuple(dict.fromkeys(earlier.categories + outline.categories))
            found[xml_url] = replace(earlier, categories=merged)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        if tag.lower() == "outline" and folders:
            folders.pop()

    parser.EntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ParseError(name, str(exc)) from exc
    except expat.ExpatError as exc:
        raise ParseError(name, f"not well-formed XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # an encoding Python cannot decode
        raise ParseError(name, f"cannot decode: {exc}") from exc
    if not root:
        raise ParseError(name, "empty document")
    return list(found.values())


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def render_opml(outlines: Iterable[OpmlOutline], *, title: str) -> bytes:
    """Write outlines as an OPML 2.0 document, nested by their categories.

    Args:
        outlines: the subscriptions; ``categories`` become nested folders, in
            order of first appearance.
        title: the document's ``<head><title>``.

    Returns:
        UTF-8 bytes with an XML declaration. ``parse_opml`` reads them back
        to the same outlines, grouped by folder (so possibly reordered).
    """
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}

    def folder(path: tuple[str, ...]) -> ET.Element:
        element = folders.get(path)
        if element is None:
            parent = folder(path[:-1])
            element = ET.SubElement(parent, "outline", text=_xml_text(path[-1]))
            folders[path] = element
        return element

    for outline in outlines:
        attributes = {
            "type": "rss",
            "text": _xml_text(outline.title),
            "title": _xml_text(outline.title),
            "xmlUrl": _xml_text(outline.xml_url),
        }
        if outline.html_url:
            attributes["htmlUrl"] = _xml_text(outline.html_url)
        ET.SubElement(folder(tuple(outline.categories)), "outline", attributes)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document + b"\n"
